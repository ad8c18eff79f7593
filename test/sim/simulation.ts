// One simulated run from one seed: the seed picks the candidates, their timings and work, and a
// schedule of faults; the run then heals everything and checks that someone leads again, stops
// every candidate and checks that nothing was left behind. Same seed, same run.
import { CALM, describe, SimApiserver, type NetworkProfile } from './apiserver.ts';
import { ClientGoCandidate, OurCandidate, type Candidate, type Settling, type Timings } from './candidates.ts';
import { HANDOVER_ANNOTATION, type LeaseSnapshot } from 'nestjs-lease-election/core';
import { Checker, type WorkStyle } from './checker.ts';
import { SimCoordination } from './coordination.ts';
import { Rng, SimWorld } from './world.ts';

export interface SimulationResult {
  seed: number;
  violations: string[];
  trace: string[];
  summary: string;
  /** Simulated seconds. */
  simulated: number;
  excusedOverlaps: number;
  clientGoOverlaps: number;
  terms: number;
  acts: number;
}

export const TIMING_PRESETS: Timings[] = [
  { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 },
  { leaseDuration: 4_000, renewDeadline: 3_000, retryPeriod: 500 },
  { leaseDuration: 2_000, renewDeadline: 1_500, retryPeriod: 250 },
  { leaseDuration: 1_000, renewDeadline: 900, retryPeriod: 300 },
];

export const STYLES: Array<Exclude<WorkStyle, 'context'>> = ['signal', 'throw', 'valid', 'leader'];

function ourTimings(world: SimWorld): Timings {
  const rng = world.rng;
  if (rng.chance(0.7)) return rng.pick(TIMING_PRESETS);
  const leaseDuration = rng.int(1, 20) * 1000;
  // A gap of at least 50 ms between the deadline and the lease covers the simulated clock drift.
  const renewDeadline = Math.round(rng.between(0.3, 0.95) * (leaseDuration - 50));
  const retryPeriod = Math.round(rng.between(0.05, 0.8) * renewDeadline / 1.2);
  return { leaseDuration, renewDeadline, retryPeriod: Math.max(10, retryPeriod) };
}

/** client-go peers keep their own margin: retryPeriod + renewDeadline + latency within leaseDuration. */
function clientGoTimings(world: SimWorld): Timings {
  const rng = world.rng;
  if (rng.chance(0.1)) return { leaseDuration: 7_200_000, renewDeadline: 3_600_000, retryPeriod: 600_000 };
  if (rng.chance(0.5)) return { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 };
  const leaseDuration = rng.int(3, 30) * 1000;
  const renewDeadline = Math.round(leaseDuration * rng.between(0.4, 0.6));
  return { leaseDuration, renewDeadline, retryPeriod: Math.round(renewDeadline * rng.between(0.1, 0.3)) };
}

function settling(world: SimWorld, settleTimeout: number): Settling {
  const rng = world.rng;
  const roll = rng.next();
  if (roll < 0.6) return { kind: 'prompt' };
  if (roll < 0.9) return { kind: 'slow', ms: rng.between(0, 2 * settleTimeout) };
  return { kind: 'never' };
}

/** Whether `after` is `before`'s holder handing its term over (its marker names that term), as the elector writes it. */
function isHandover(after: LeaseSnapshot, before: LeaseSnapshot): boolean {
  const marker = after.annotations[HANDOVER_ANNOTATION];
  if (marker === undefined) return false;
  const { from, term } = JSON.parse(marker) as { from?: string; term?: number };
  return from === before.record.holderIdentity && term === before.record.leaseTransitions && after.record.leaseTransitions === term + 1 &&
    after.record.holderIdentity !== from;
}

export async function simulate(seed: number): Promise<SimulationResult> {
  const world = new SimWorld(seed);
  const rng = world.rng;
  const server = new SimApiserver(world);
  // A third of the worlds run coordinated leader election: the apiserver's controller names the leader.
  // Decided, with the versions and skews, on a stream of their own, so the other worlds run as they always did.
  const coordinationRng = new Rng(seed ^ 0x2f6b_c0de);
  const coordination = coordinationRng.chance(1 / 3) ? new SimCoordination(world, server) : undefined;
  /** Coordinated worlds give most processes NTP-close wall clocks; one whose clock is off makes the controller misjudge expiry. */
  const wallSkew = (): number => (coordinationRng.chance(0.95) ? coordinationRng.between(-50, 50) : coordinationRng.between(-8_000, 8_000));
  const versions = (): { binaryVersion: string; emulationVersion: string; strategy: string } => {
    const binary = coordinationRng.int(30, 36);
    const emulated = binary - (coordinationRng.chance(0.3) ? 1 : 0);
    return { binaryVersion: `1.${binary}.0`, emulationVersion: `1.${emulated}.0`, strategy: 'OldestEmulationVersion' };
  };
  let skewed = false;
  const candidates: Candidate[] = [];
  const ownerOf = new Map<string, Candidate>();
  const checker = new Checker(() => world.now, (line) => world.log(line),
    (process, term) => server.wasShown(ownerOf.get(process)!.owner, term.identity, term.fencingToken),
    (process, snapshot) => server.wasShownVersion(ownerOf.get(process)!.owner, snapshot));
  const jitter = { earlyMs: rng.between(0, 3), lateMs: rng.between(0, 5) };
  const ours = rng.int(1, 7);
  const drawnClientGo = rng.chance(0.3) ? rng.int(1, 2) : 0;
  // client-go peers campaign on their own: coordinated worlds have none.
  const clientGo = coordination ? 0 : drawnClientGo;
  /** The longest lease any record claimed: the progress bound depends on it. */
  let longestLease = 0;
  let longestSettle = 0;
  let longestRetry = 0;
  /** spec.preferredHolder was set: a leader may hand over after healing, which costs a settling and, to a candidate that never takes it, a lease. */
  let preferenceSet = false;

  server.onWrite = ({ by, before, after }) => {
    const duration = after?.record.leaseDurationSeconds;
    if (duration !== undefined && after?.record.holderIdentity) longestLease = Math.max(longestLease, duration * 1000);
    // A release, or a handover (stepDown({ to })): either gives the term up, so only after its work settled.
    if (by && before?.record.holderIdentity && (after?.record.holderIdentity === '' || (after && isHandover(after, before)))) checker.released(by, before);
    if (by && after?.record.holderIdentity && !(before && before.record.holderIdentity === after.record.holderIdentity &&
      before.record.leaseTransitions === after.record.leaseTransitions)) checker.termWritten(by, after.record);
    world.log(`apiserver: ${describe(before)} -> ${describe(after)}${by ? ` by ${by}` : ''}`);
    coordination?.leaseChanged();
  };

  const restartLater = (candidate: Candidate): void => {
    world.after(rng.between(100, 1000), () => {
      if (candidate instanceof OurCandidate) spawn(candidate.identity, candidate.spec);
      else spawn(candidate.identity, undefined, candidate.spec);
    });
  };
  const spawn = (identity: string, like?: OurCandidate['spec'], clientGoLike?: ClientGoCandidate['spec']): Candidate => {
    let candidate: Candidate;
    if (clientGoLike) {
      candidate = new ClientGoCandidate(world, server, checker, clientGoLike, restartLater);
    } else {
      const timings = like?.timings ?? ourTimings(world);
      const settleTimeout = like?.settleTimeout ?? Math.round(rng.between(100, 10_000));
      longestSettle = Math.max(longestSettle, settleTimeout);
      longestRetry = Math.max(longestRetry, timings.retryPeriod * 2.2);
      candidate = new OurCandidate(world, server, checker, like ?? {
        identity,
        timings,
        lossPolicy: rng.chance(0.5) ? 'exit' : 'rejoin',
        settleTimeout,
        style: rng.pick(STYLES),
        settling: settling(world, settleTimeout),
        stepMs: rng.between(Math.min(20, timings.renewDeadline / 4), Math.min(500, timings.renewDeadline / 2)),
        stepDownAtStart: rng.chance(0.2) ? 0.3 : 0,
        ...coordination ? { versions: versions(), wallSkewMs: wallSkew() } : {},
      }, jitter, (exited) => restartLater(exited), coordination);
      if (coordination && Math.abs(candidate.spec.wallSkewMs!) > 100) skewed = true;
    }
    candidates.push(candidate);
    ownerOf.set(candidate.key, candidate);
    candidate.start();
    return candidate;
  };

  for (let i = 0; i < ours; i++) spawn(`ours-${i}`);
  for (let i = 0; i < clientGo; i++) {
    const timings = clientGoTimings(world);
    longestRetry = Math.max(longestRetry, timings.retryPeriod * 2.2);
    spawn(`go-${i}`, undefined, { identity: `go-${i}`, timings, stepMs: rng.between(20, 500) });
  }

  const alive = (): Candidate[] => candidates.filter((candidate) => !candidate.owner.dead && !(candidate instanceof OurCandidate && candidate.stopping));
  const aliveOurs = (): OurCandidate[] => alive().filter((candidate): candidate is OurCandidate => candidate instanceof OurCandidate);
  const leader = (): Candidate | undefined => alive().find((candidate) => candidate.leads());
  const baseLease = Math.max(...aliveOurs().map((candidate) => candidate.spec.timings.leaseDuration), 1000);

  // ---- faults ----
  const faults: Record<string, number> = {};
  const fault = (name: string, action: () => void): void => {
    faults[name] = (faults[name] ?? 0) + 1;
    world.log(`FAULT ${name}`);
    action();
  };
  const faultCatalogue: Array<[number, string, () => void]> = [
    [3, 'pause-leader', () => {
      const target = leader() ?? rng.pick(alive());
      if (!target || target instanceof ClientGoCandidate) return;
      target.owner.paused = true;
      world.log(`${target.key} paused`);
      world.after(rng.between(0.2, 3) * baseLease, () => world.resume(target.owner));
    }],
    [2, 'pause-mid-request', () => {
      // Wait (a little) for the leader to have a request in flight, then freeze it there.
      const target = (leader() ?? rng.pick(alive())) as Candidate | undefined;
      if (!target || target instanceof ClientGoCandidate) return;
      let tries = 0;
      const tryPause = (): void => {
        if (target.owner.dead || world.now >= faultPhase) return;
        if (target.lock.inFlight === 0 && tries++ < 200) {
          world.after(rng.between(0.1, 5), tryPause);
          return;
        }
        world.log(`${target.key} paused with ${target.lock.inFlight} request(s) in flight`);
        target.owner.paused = true;
        world.after(rng.between(0.5, 3) * baseLease, () => world.resume(target.owner));
      };
      tryPause();
    }],
    [1, 'pause-any', () => {
      const target = rng.pick(aliveOurs());
      if (!target) return;
      target.owner.paused = true;
      world.after(rng.between(1, 2_000), () => world.resume(target.owner));
    }],
    [2, 'kill', () => {
      const target = rng.chance(0.7) ? leader() : rng.pick(alive());
      if (!target) return;
      target.kill();
      restartLater(target);
    }],
    [1, 'identity-reuse', () => {
      const target = rng.pick(aliveOurs());
      if (!target) return;
      const twin = spawn(target.identity, target.spec);
      // One of them dies later, but still within the fault phase: the healed phase has no faults.
      world.at(Math.min(world.now + rng.between(1, 4) * baseLease, faultPhase), () => {
        const victim = rng.chance(0.5) ? twin : target;
        victim.kill();
      });
    }],
    [2, 'step-down', () => {
      const target = leader();
      if (target instanceof OurCandidate) void target.elector.stepDown();
    }],
    [1, 'prefer', () => {
      // An operator (or the coordinated-leader-election controller) sets spec.preferredHolder.
      const current = server.snapshot();
      if (!current?.object.spec) return;
      const to = rng.chance(0.8) ? rng.pick(candidates)?.identity ?? 'ghost' : 'ghost';
      world.log(`operator: spec.preferredHolder = ${to}`);
      preferenceSet = true;
      server.store({ ...current.object.spec, preferredHolder: to }, { ...current.annotations }, undefined);
    }],
    [2, 'handover', () => {
      // To a live candidate, a dead or paused one, or one that never existed.
      const target = leader();
      if (!(target instanceof OurCandidate)) return;
      const to = rng.chance(0.8) ? rng.pick(candidates.filter((candidate) => candidate.identity !== target.identity))?.identity ?? 'ghost' : 'ghost';
      world.log(`${target.key} hands over to ${to}`);
      target.elector.stepDown({ to }).catch((error: unknown) => world.log(`${target.key} handover refused: ${(error as Error).message}`));
    }],
    [1, 'stop-and-restart', () => {
      const target = rng.chance(0.7) ? leader() : rng.pick(alive());
      if (!(target instanceof OurCandidate)) return;
      const both = rng.chance(0.5);
      if (both) void target.elector.stepDown();
      const stop = (): void => {
        void target.stop().then(() => {
          checkNothingLeft(target);
          target.kill();
          restartLater(target);
        });
      };
      if (both && rng.chance(0.5)) world.after(rng.between(0, 50), stop, target.owner);
      else stop();
    }],
    [1, 'apiserver-restart', () => {
      server.crash();
      world.after(rng.between(0, 2) * baseLease, () => {
        server.up = true;
        world.log('apiserver: back up');
      });
    }],
    [2, 'bad-network', () => {
      const profile: NetworkProfile = {
        minLatency: rng.between(0, 20),
        maxLatency: rng.between(20, rng.chance(0.3) ? 3_000 : 300),
        hang: rng.chance(0.5) ? rng.between(0, 0.3) : 0,
        fail: rng.chance(0.5) ? rng.between(0, 0.3) : 0,
        dropEvent: rng.chance(0.5) ? rng.between(0, 0.5) : 0,
      };
      server.network = profile;
      world.after(rng.between(0.2, 3) * baseLease, () => {
        server.network = CALM;
      });
    }],
    [1, 'watch-stall', () => {
      const target = rng.pick(alive());
      if (!target) return;
      server.stallWatch(target.owner, rng.chance(0.5) ? Infinity : world.now + rng.between(0, 2) * baseLease);
    }],
    [1, 'watch-break', () => {
      const target = rng.pick(alive());
      if (target) server.breakWatch(target.owner);
    }],
    [1, 'etcd-restore', () => {
      checker.historyBreak('etcd restored from a backup');
      const before = server.snapshot();
      server.restore();
      checker.override(server.snapshot()?.free ? 'release' : 'erase', 'etcd restored from a backup', before);
    }],
    [1, 'hand-edit', () => {
      const current = server.snapshot();
      const transitions = current?.record.leaseTransitions ?? 0;
      const roll = rng.next();
      if (roll < 0.3) {
        server.touch();
      } else if (roll < 0.5) {
        checker.historyBreak('Lease deleted');
        checker.override('erase', 'Lease deleted', current);
        server.store(undefined, undefined, undefined, true);
      } else if (roll < 0.75) {
        const seconds = rng.int(1, 60);
        checker.override('erase', `holder overwritten by a ghost with a ${seconds} s lease`, current);
        server.store({ holderIdentity: 'ghost', leaseDurationSeconds: seconds, leaseTransitions: transitions + 1 }, undefined, undefined);
      } else {
        checker.historyBreak('Lease edited into nonsense');
        const edited = server.store(rng.pick([
          {}, { holderIdentity: 42 }, { holderIdentity: 'ghost', leaseDurationSeconds: -5 }, { holderIdentity: 'ghost', leaseDurationSeconds: '15' },
          { holderIdentity: '', leaseTransitions: -3 }, { holderIdentity: 'ghost', leaseDurationSeconds: 2 ** 31 }, { holderIdentity: 'ghost', renewTime: 'yesterday' },
        ]), undefined, undefined);
        checker.override(edited?.free ? 'release' : 'erase', 'Lease edited into nonsense', current);
      }
    }],
  ];
  if (coordination) {
    faultCatalogue.push(
      [2, 'candidate-joins', () => {
        // A new candidate, perhaps of an older version the controller prefers: leadership moves to it by preferredHolder.
        spawn(`joiner-${candidates.length}`);
      }],
      [2, 'controller-clock-ahead', () => {
        // The controller judges expiry by its wall clock against the renewTime the holder wrote: ahead, it names a successor while the holder still renews.
        coordination.clockAheadMs = rng.between(0.2, 2) * baseLease;
        world.log(`controller's clock runs ${Math.round(coordination.clockAheadMs)} ms ahead`);
        world.after(rng.between(0.5, 3) * baseLease, () => {
          coordination.clockAheadMs = 0;
        });
      }],
      [1, 'controller-stall', () => {
        coordination.owner.paused = true;
        world.log('controller paused');
        world.after(rng.between(0.2, 3) * baseLease, () => world.resume(coordination.owner));
      }],
    );
  }
  const weights = faultCatalogue.reduce((sum, [weight]) => sum + weight, 0);
  const pickFault = (): [string, () => void] => {
    let roll = rng.next() * weights;
    for (const [weight, name, action] of faultCatalogue) {
      roll -= weight;
      if (roll < 0) return [name, action];
    }
    return [faultCatalogue[0]![1], faultCatalogue[0]![2]];
  };

  // ---- the checks that run outside events ----
  const checkNothingLeft = (candidate: OurCandidate): void => {
    if (candidate.exited) return; // the process is gone, and whatever it had open with it
    const timers = candidate.electorClock.timers.size;
    const watches = server.watchesOf(candidate.owner);
    const requests = candidate.lock.inFlight + (candidate.candidacy?.inFlight ?? 0);
    if (timers + watches + requests > 0) {
      checker.violations.push(`${candidate.key} left ${timers} timer(s), ${watches} watch(es) and ${requests} request(s) behind after stop()`);
    }
  };

  const faultPhase = rng.between(5, 20) * baseLease;
  const faultCount = rng.int(0, 25);
  for (let i = 0; i < faultCount; i++) {
    const [name, action] = pickFault();
    world.at(rng.between(0, faultPhase), () => fault(name, action));
  }
  const check = (): boolean => checker.violations.length === 0 && world.errors.length === 0;
  let ok = await world.runUntil(faultPhase, check);

  // ---- heal, then someone must lead within the stated bound ----
  let progressBound = 0;
  if (ok) {
    world.log('HEAL: apiserver up, network calm, watches healthy, nobody paused');
    world.healed = true;
    server.up = true;
    server.network = CALM;
    for (const candidate of candidates) if (candidate.owner.paused) world.resume(candidate.owner);
    if (coordination) {
      world.resume(coordination.owner);
      coordination.clockAheadMs = 0;
    }
    for (const candidate of alive()) server.healWatches(candidate.owner);
    // A candidate whose earlier work never settled may not campaign: make sure one healthy one exists.
    if (!alive().some((candidate) => candidate.healthy())) spawn(`ours-fresh`);
    const requestTimeout = Math.max(...aliveOurs().map((candidate) => Math.max(1000, candidate.spec.timings.renewDeadline / 2)), 1000);
    // Bound: the longest lease any record claimed (waited out from the last change seen), plus the
    // longest settleTimeout a loser may wait for its work, plus a jittered retry and a hung request
    // on each side, plus a restart after an exit.
    const settleNeeded = aliveOurs().some((candidate) => candidate.terms.some((term) => !term.settled)) ? longestSettle : 0;
    progressBound = Math.max(longestLease, baseLease) + settleNeeded + 2 * longestRetry + 2 * requestTimeout + 1000 + 100 +
      (preferenceSet ? longestSettle + Math.max(longestLease, baseLease) + 2 * longestRetry + requestTimeout : 0) +
      // Coordinated: the controller's requeue, its wait for answers to pings, the lease it names with, and
      // the successor waiting out the holder it replaced on its own clock, around a step-down's sit-out.
      (coordination ? 3 * 5_000 + 5_000 + 2 * Math.max(longestLease, baseLease) + 2 * longestRetry + 2 * requestTimeout : 0);
    const healedAt = world.now;
    ok = await world.runUntil(healedAt + progressBound, check);
    if (ok && skewed && !alive().some((candidate) => candidate.leads())) {
      // A wall clock off by seconds makes the controller see a live lease as expired, again and again: safety holds, progress may not.
      world.log('no leader after healing, with a skewed wall clock in a coordinated world: progress is not required');
    } else if (ok && !alive().some((candidate) => candidate.leads())) {
      checker.violations.push(`no leader ${(progressBound / 1000).toFixed(3)} s after healing (leases up to ${longestLease / 1000} s); ${describe(server.snapshot())}`);
      ok = false;
    }
  }

  // ---- stop everyone: releases only after work settled, and nothing left behind ----
  if (ok) {
    world.log('STOP: every candidate stops');
    const ourAlive = aliveOurs();
    for (const candidate of alive()) if (candidate instanceof ClientGoCandidate) candidate.kill();
    for (const candidate of ourAlive) void candidate.stop();
    await world.runUntil(world.now + longestSettle + 4 * longestRetry + 20_000, check);
    for (const candidate of ourAlive) {
      // A process that exited while stopping (its work outlived settleTimeout) is gone: its stop() never returns.
      if (!candidate.stopped && !candidate.exited) checker.violations.push(`${candidate.key}: stop() did not finish`);
      else checkNothingLeft(candidate);
    }
  }
  for (const candidate of candidates) candidate.kill();
  const violations = [...checker.violations, ...world.errors];
  const summary = `seed ${seed}: ${ours} ours${clientGo ? ` + ${clientGo} client-go` : ''}` +
    `${coordination ? `, coordinated (the controller named ${coordination.named}, preferred ${coordination.preferred}${skewed ? ', clocks skewed' : ''})` : ''}, ${faultCount} faults over ${(faultPhase / 1000).toFixed(1)} s ` +
    `(${Object.entries(faults).map(([name, count]) => `${name}×${count}`).join(', ') || 'none'}), ${checker.terms.length} terms, ${checker.acts} acts`;
  return {
    seed, violations, trace: world.trace, summary, simulated: world.now / 1000, terms: checker.terms.length, acts: checker.acts,
    excusedOverlaps: checker.excusedOverlaps, clientGoOverlaps: checker.clientGoOverlaps,
  };
}
