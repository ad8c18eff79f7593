// One simulated run of an election set from one seed. The seed picks 2–6 elections and 1–4 members,
// each a real ElectionSet (its member elector and one LeaderElector per election, unchanged) on a
// simulated clock, with every Lease on a simulated apiserver of its own (apiserver.ts: latency, hung
// and failed requests, outages, watches that lag, drop or break, hand edits), and work in the styles
// users write. Faults: members join, leave gracefully, crash and come back, pause; outages, bad
// networks, broken watches, step-downs, hand edits of election and member Leases. Then everything
// heals, and every election must be led by the member the plan names for the members alive; then
// every member stops and must leave nothing behind. Each election has its own Checker: no two terms
// of one election may act at once, and its fencing tokens grow. Same seed, same run.
import { assignElections, ElectionSet, type LeaseDirectory, type LeaseSnapshot, type LossPolicy } from 'nestjs-lease-election/core';
import { CALM, clientRequest, describe, SimApiserver, type NetworkProfile, type SimLeaseLock } from './apiserver.ts';
import { holdLostToken, ProcessOwner, runWork, type Settling, type Timings } from './candidates.ts';
import { Checker, type SimTerm, type WorkStyle } from './checker.ts';
import { STYLES, TIMING_PRESETS } from './simulation.ts';
import type { SweepResult } from './sweep.ts';
import { SimClock, SimWorld, type Owner } from './world.ts';

export interface SetSimResult extends SweepResult {
  acts: number;
}

const SET = 'set';

/** Every Lease of the run, each on a simulated apiserver of its own; faults of "the apiserver" hit them all. */
class Cluster {
  readonly servers = new Map<string, SimApiserver>();
  network: NetworkProfile = CALM;
  up = true;

  constructor(private readonly world: SimWorld, private readonly onCreate: (server: SimApiserver) => void) {}

  server(name: string): SimApiserver {
    let server = this.servers.get(name);
    if (!server) {
      server = new SimApiserver(this.world, name);
      server.network = this.network;
      server.up = this.up;
      this.servers.set(name, server);
      this.onCreate(server);
    }
    return server;
  }

  setNetwork(network: NetworkProfile): void {
    this.network = network;
    for (const server of this.servers.values()) server.network = network;
  }

  crash(): void {
    this.up = false;
    for (const server of this.servers.values()) server.crash();
  }

  restart(): void {
    this.up = true;
    for (const server of this.servers.values()) server.up = true;
  }

  /** The member Leases that exist now. */
  members(): SimApiserver[] {
    return [...this.servers.values()].filter((server) => server.name.startsWith(`${SET}-member-`) && server.snapshot() !== undefined);
  }
}

/** The set's member Leases, listed as one request crosses the simulated network (no watch: members poll). */
class SimDirectory implements LeaseDirectory {
  readonly description = `the member Leases of set "${SET}"`;
  inFlight = 0;

  constructor(private readonly world: SimWorld, private readonly cluster: Cluster, private readonly owner: Owner) {}

  delete(name: string, resourceVersion: string, signal: AbortSignal): Promise<void> {
    const { world, cluster } = this;
    const network = cluster.network;
    return clientRequest(this, signal, (finish, resolve, reject) => {
      world.after(world.rng.between(network.minLatency, network.maxLatency), () => {
        let answer: () => void;
        const server = cluster.servers.get(name);
        if (!cluster.up) {
          answer = () => reject(new Error('delete failed: 503'));
        } else {
          if (server?.snapshot()?.resourceVersion === resourceVersion) server.store(undefined, undefined, undefined, true);
          answer = () => resolve();
        }
        world.after(world.rng.between(network.minLatency, network.maxLatency), () => finish(answer), this.owner);
      });
    });
  }

  list(signal: AbortSignal): Promise<Map<string, LeaseSnapshot>> {
    const { world, cluster } = this;
    const network = cluster.network;
    return clientRequest(this, signal, (finish, resolve, reject) => {
      const hang = world.rng.chance(network.hang);
      world.after(world.rng.between(network.minLatency, network.maxLatency), () => {
        if (hang) return;
        let answer: () => void;
        if (!cluster.up || world.rng.chance(network.fail)) {
          answer = () => reject(new Error('list failed: 503'));
        } else {
          const leases = new Map(cluster.members().map((server) => [server.name, server.snapshot()!]));
          answer = () => resolve(leases);
        }
        world.after(world.rng.between(network.minLatency, network.maxLatency), () => finish(answer), this.owner);
      });
    });
  }
}

interface MemberSpec {
  identity: string;
  lossPolicy: LossPolicy;
  settleTimeout: number;
  style: Exclude<WorkStyle, 'context'>;
  settling: Settling;
  stepMs: number;
  stepDownAtStart: number;
}

class Member {
  readonly owner: ProcessOwner;
  readonly key: string;
  readonly set: ElectionSet;
  readonly electorClock: SimClock;
  readonly directory: SimDirectory;
  readonly locks: SimLeaseLock[] = [];
  readonly terms: SimTerm[] = [];
  stopping: Promise<void> | undefined;
  stopped = false;
  exited = false;
  private readonly work: (election: string, term: Parameters<typeof runWork>[1]) => Promise<void>;
  /** Per election, the terms whose lease could not be kept while their work settled. */
  private readonly holdLost: Map<string, Set<number>>;

  constructor(
    private readonly world: SimWorld,
    private readonly cluster: Cluster,
    private readonly checkers: Map<string, Checker>,
    readonly spec: MemberSpec,
    timings: Timings,
    elections: string[],
    jitter: { earlyMs: number; lateMs: number },
    onExit: (member: Member) => void,
  ) {
    const rng = world.rng;
    this.key = world.processKey(spec.identity);
    this.owner = new ProcessOwner(this.key);
    const rate = 1 + rng.between(-1e-4, 1e-4);
    const offset = rng.between(0, 1e6);
    const skew = rng.between(-3_600_000, 3_600_000);
    this.electorClock = new SimClock(world, this.owner, jitter, rate, offset, skew);
    const workClock = new SimClock(world, this.owner, jitter, rate, offset, skew);
    this.holdLost = new Map(elections.map((election) => [election, new Set()]));
    this.directory = new SimDirectory(world, cluster, this.owner);
    const log = (level: string) => (message: string): void => world.log(`${this.key} ${level}: ${message}`);
    this.set = new ElectionSet(
      { name: SET, elections, namespace: 'default', identity: spec.identity, ...timings, lossPolicy: spec.lossPolicy, settleTimeout: spec.settleTimeout },
      {
        lockFor: (name) => {
          const lock = cluster.server(name).lockFor(this.owner, this.key, (line) => world.log(`${this.key} ${name} ${line}`));
          this.locks.push(lock);
          return lock;
        },
        directory: this.directory,
        clock: this.electorClock,
        random: () => rng.next(),
        logger: {
          log: log('log'),
          error: log('error'),
          warn: (message) => {
            // Tokens are per election: which one is in the message's lease name.
            const token = holdLostToken(message);
            const election = /lease default\/set-(\w+)/.exec(message)?.[1];
            if (token !== undefined && election !== undefined) this.holdLost.get(election)?.add(token);
            log('warn')(message);
          },
        },
        exit: (code) => {
          world.log(`${this.key} EXITS with code ${code}`);
          this.exited = true;
          this.kill();
          onExit(this);
        },
      },
    );
    this.work = (election, term) => runWork({
      world, checker: checkers.get(election)!, key: this.key, identity: spec.identity, owner: this.owner,
      elector: this.set.electors.get(election)!, electorClock: this.electorClock, workClock, jitterLateMs: jitter.lateMs,
      spec: { ...spec, timings }, terms: this.terms, holdLost: this.holdLost.get(election)!,
    }, term);
  }

  get identity(): string {
    return this.spec.identity;
  }

  start(): void {
    this.world.log(`${this.key} starts (${this.spec.style}, ${this.spec.settling.kind}, ${this.spec.lossPolicy})`);
    this.set.start(this.work);
  }

  /** The elections this process leads now (a paused one leads none: asking would run its code while frozen). */
  leading(): string[] {
    return this.owner.dead || this.owner.paused ? [] : this.set.leading();
  }

  kill(): void {
    if (this.owner.dead) return;
    this.world.log(`${this.key} is killed`);
    this.owner.dead = true;
    for (const term of this.terms) term.settled = true;
  }

  stop(): Promise<void> {
    this.stopping ??= this.set.stop().then(() => {
      this.stopped = true;
      this.world.log(`${this.key} stopped`);
    }, (error: unknown) => {
      this.world.errors.push(`${this.key}: stop() failed: ${error instanceof Error ? error.stack : String(error)}`);
    });
    return this.stopping;
  }

  /** What stop() must not leave behind: timers, watches, requests in flight. */
  leftovers(): string | undefined {
    const timers = this.electorClock.timers.size;
    const watches = [...this.cluster.servers.values()].reduce((sum, server) => sum + server.watchesOf(this.owner), 0);
    const requests = this.locks.reduce((sum, lock) => sum + lock.inFlight, 0) + this.directory.inFlight;
    return timers + watches + requests > 0 ? `${timers} timer(s), ${watches} watch(es) and ${requests} request(s)` : undefined;
  }
}

/**
 * How a term's work winds down. Work that never settles is left out: a set cannot move an election
 * off a member still running its last term. Work that outlives settleTimeout makes its process exit
 * on every move (as a step-down does), and the exit is a membership change that moves more: in
 * seeds with such work only safety is checked, not that the set settles on its plan.
 */
function settling(world: SimWorld, settleTimeout: number, withinTimeout: boolean): Settling {
  const roll = world.rng.next();
  if (roll < 0.65) return { kind: 'prompt' };
  return { kind: 'slow', ms: world.rng.between(0, (withinTimeout ? 0.9 : 2) * settleTimeout) };
}

export async function simulateSet(seed: number): Promise<SetSimResult> {
  const world = new SimWorld(seed);
  const rng = world.rng;
  const elections = Array.from({ length: rng.int(2, 6) }, (_, i) => `e${i}`);
  const timings = rng.pick(TIMING_PRESETS);
  const members: Member[] = [];
  const ownerOf = new Map<string, Member>();
  const checkers = new Map<string, Checker>();
  let longestLease = timings.leaseDuration;
  let longestSettle = 0;
  const cluster = new Cluster(world, (server) => {
    const election = server.name.slice(SET.length + 1);
    const checker = checkers.get(election);
    server.onWrite = ({ by, before, after }) => {
      world.log(`apiserver ${server.name}: ${describe(before)} -> ${describe(after)}${by ? ` by ${by}` : ''}`);
      if (!checker) return;
      const duration = after?.record.leaseDurationSeconds;
      if (duration !== undefined && after?.record.holderIdentity) longestLease = Math.max(longestLease, duration * 1000);
      if (by && before?.record.holderIdentity && after?.record.holderIdentity === '') checker.released(by, before);
      if (by && after?.record.holderIdentity && !(before && before.record.holderIdentity === after.record.holderIdentity &&
        before.record.leaseTransitions === after.record.leaseTransitions)) checker.termWritten(by, after.record);
    };
  });
  for (const election of elections) {
    const server = (): SimApiserver => cluster.server(`${SET}-${election}`);
    checkers.set(election, new Checker(() => world.now, (line) => world.log(`[${election}] ${line}`),
      (process, term) => server().wasShown(ownerOf.get(process)!.owner, term.identity, term.fencingToken),
      (process, snapshot) => server().wasShownVersion(ownerOf.get(process)!.owner, snapshot)));
    cluster.server(`${SET}-${election}`);
  }
  const jitter = { earlyMs: rng.between(0, 3), lateMs: rng.between(0, 5) };
  /** Every term's work settles within settleTimeout: the set must then settle on its plan after healing. */
  const wellBehaved = rng.chance(0.8);
  let nextIdentity = 0;

  const restartLater = (member: Member): void => {
    world.after(rng.between(100, 1000), () => spawn(member.spec));
  };
  const spawn = (like?: MemberSpec): Member => {
    const settleTimeout = like?.settleTimeout ?? Math.round(rng.between(100, 10_000));
    longestSettle = Math.max(longestSettle, settleTimeout);
    const member = new Member(world, cluster, checkers, like ?? {
      identity: `m${nextIdentity++}`,
      lossPolicy: rng.chance(0.5) ? 'exit' : 'rejoin',
      settleTimeout,
      style: rng.pick(STYLES),
      settling: settling(world, settleTimeout, wellBehaved),
      stepMs: rng.between(Math.min(20, timings.renewDeadline / 4), Math.min(500, timings.renewDeadline / 2)),
      stepDownAtStart: rng.chance(0.2) ? 0.3 : 0,
    }, timings, elections, jitter, restartLater);
    members.push(member);
    ownerOf.set(member.key, member);
    member.start();
    return member;
  };
  const initial = rng.int(1, 4);
  for (let i = 0; i < initial; i++) spawn();

  const alive = (): Member[] => members.filter((member) => !member.owner.dead && !member.stopping);
  /** Violations of the set as a whole (each election's own are in its checker). */
  const setViolations: string[] = [];
  const checkNothingLeft = (member: Member): void => {
    if (member.exited) return;
    const left = member.leftovers();
    if (left) setViolations.push(`${member.key} left ${left} behind after stop()`);
  };

  // ---- faults ----
  const lease = timings.leaseDuration;
  const faultPhase = rng.between(5, 20) * lease;
  const faults: Record<string, number> = {};
  const catalogue: Array<[number, string, () => void]> = [
    [3, 'join', () => spawn()],
    [2, 'leave', () => {
      if (alive().length < 2) return;
      const target = rng.pick(alive());
      void target.stop().then(() => {
        checkNothingLeft(target);
        target.kill();
      });
    }],
    [2, 'stop-and-restart', () => {
      const target = rng.pick(alive());
      if (!target) return;
      void target.stop().then(() => {
        checkNothingLeft(target);
        target.kill();
        restartLater(target);
      });
    }],
    [2, 'kill', () => {
      const target = rng.pick(alive());
      if (!target) return;
      target.kill();
      restartLater(target);
    }],
    [3, 'pause', () => {
      const target = rng.pick(alive());
      if (!target) return;
      target.owner.paused = true;
      world.log(`${target.key} paused`);
      world.after(rng.between(0.2, 3) * lease, () => world.resume(target.owner));
    }],
    [2, 'step-down', () => {
      const target = rng.pick(alive());
      const election = target && rng.pick(target.leading());
      if (election) void target.set.electors.get(election)!.stepDown();
    }],
    [1, 'apiserver-restart', () => {
      cluster.crash();
      world.after(rng.between(0, 2) * lease, () => {
        cluster.restart();
        world.log('apiserver: back up');
      });
    }],
    [2, 'bad-network', () => {
      cluster.setNetwork({
        minLatency: rng.between(0, 20),
        maxLatency: rng.between(20, rng.chance(0.3) ? 3_000 : 300),
        hang: rng.chance(0.5) ? rng.between(0, 0.3) : 0,
        fail: rng.chance(0.5) ? rng.between(0, 0.3) : 0,
        dropEvent: rng.chance(0.5) ? rng.between(0, 0.5) : 0,
      });
      world.after(rng.between(0.2, 3) * lease, () => cluster.setNetwork(CALM));
    }],
    [1, 'watch-break', () => {
      const target = rng.pick(alive());
      if (target) for (const server of cluster.servers.values()) server.breakWatch(target.owner);
    }],
    [1, 'delete-member-lease', () => {
      const server = rng.pick(cluster.members());
      if (server) server.store(undefined, undefined, undefined, true);
    }],
    [1, 'hand-edit', () => {
      const election = rng.pick(elections);
      const server = cluster.server(`${SET}-${election}`);
      const checker = checkers.get(election)!;
      const current = server.snapshot();
      const roll = rng.next();
      if (roll < 0.4) {
        server.touch();
      } else if (roll < 0.7) {
        checker.historyBreak('Lease deleted');
        checker.override('erase', 'Lease deleted', current);
        server.store(undefined, undefined, undefined, true);
      } else {
        const seconds = rng.int(1, 30);
        checker.override('erase', `holder overwritten by a ghost with a ${seconds} s lease`, current);
        server.store({ holderIdentity: 'ghost', leaseDurationSeconds: seconds, leaseTransitions: (current?.record.leaseTransitions ?? 0) + 1 }, undefined, undefined);
      }
    }],
  ];
  const weights = catalogue.reduce((sum, [weight]) => sum + weight, 0);
  const faultCount = rng.int(0, 20);
  for (let i = 0; i < faultCount; i++) {
    let roll = rng.next() * weights;
    const [, name, action] = catalogue.find(([weight]) => (roll -= weight) < 0) ?? catalogue[0]!;
    world.at(rng.between(0, faultPhase), () => {
      faults[name] = (faults[name] ?? 0) + 1;
      world.log(`FAULT ${name}`);
      action();
    });
  }
  const violations = (): string[] => [...[...checkers.values()].flatMap((checker) => checker.violations), ...setViolations, ...world.errors];
  const check = (): boolean => violations().length === 0;
  let ok = await world.runUntil(faultPhase, check);

  // ---- heal: then every election must be led by the member the plan names for the members alive ----
  if (ok) {
    world.log('HEAL: apiserver up, network calm, watches healthy, nobody paused');
    world.healed = true;
    cluster.restart();
    cluster.setNetwork(CALM);
    for (const member of members) if (member.owner.paused) world.resume(member.owner);
    for (const member of alive()) for (const server of cluster.servers.values()) server.healWatches(member.owner);
    if (alive().length === 0) spawn();
    const retry = timings.retryPeriod * 2.2;
    const requestTimeout = Math.max(1000, timings.renewDeadline / 2);
    // A dead member's Lease, then a restarted twin's wait for its own old member Lease, then a move's
    // settling (up to settleTimeout) twice over, each with retries and a hung request.
    const bound = 3 * longestLease + 2 * longestSettle + 6 * retry + 2 * requestTimeout + 2_000;
    ok = await world.runUntil(world.now + bound, check);
    if (ok && wellBehaved) {
      const identities = [...new Set(alive().map((member) => member.identity))];
      const plan = assignElections(SET, elections, identities);
      for (const election of elections) {
        const leaders = alive().filter((member) => member.leading().includes(election)).map((member) => member.key);
        const expected = plan.get(election);
        if (leaders.length !== 1 || !alive().some((member) => member.key === leaders[0] && member.identity === expected)) {
          setViolations.push(`${(bound / 1000).toFixed(1)} s after healing, election ${election} is led by ` +
            `[${leaders.join(', ')}], not by ${expected} as planned for members ${identities.join(', ')}; ${describe(cluster.server(`${SET}-${election}`).snapshot())}`);
        }
      }
      ok = check();
    }
  }

  // ---- stop everyone: releases only after work settled, and nothing left behind ----
  if (ok) {
    world.log('STOP: every member stops');
    const stopping = alive();
    for (const member of stopping) void member.stop();
    await world.runUntil(world.now + 2 * longestSettle + 4 * timings.retryPeriod * 2.2 + 20_000, check);
    for (const member of stopping) {
      if (!member.stopped && !member.exited) setViolations.push(`${member.key}: stop() did not finish`);
      else checkNothingLeft(member);
    }
  }
  for (const member of members) member.kill();
  const terms = [...checkers.values()].reduce((sum, checker) => sum + checker.terms.length, 0);
  const acts = [...checkers.values()].reduce((sum, checker) => sum + checker.acts, 0);
  const summary = `seed ${seed}: ${elections.length} elections, ${initial} members${wellBehaved ? '' : ' (work outliving settleTimeout: safety only)'} (${members.length} processes in all), ${faultCount} faults over ` +
    `${(faultPhase / 1000).toFixed(1)} s (${Object.entries(faults).map(([name, count]) => `${name}×${count}`).join(', ') || 'none'}), ${terms} terms, ${acts} acts`;
  return { seed, violations: violations(), trace: world.trace, summary, simulated: world.now / 1000, terms, acts };
}
