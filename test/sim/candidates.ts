// The candidates of a simulated run: our LeaderElector, unchanged, on a simulated clock and lock,
// with work written in each of the styles users write; and peers that run client-go's algorithm
// as documented, sharing the Lease with ours.
import { LockError, type LossPolicy, type Term } from 'nestjs-lease-election';
import { LeaderElector, type CoordinatedOptions, type LeaseRecord, type LeaseSnapshot } from 'nestjs-lease-election/core';
import type { SimApiserver, SimLeaseLock } from './apiserver.ts';
import type { SimCandidacy, SimCoordination } from './coordination.ts';
import type { Checker, SimTerm, WorkStyle } from './checker.ts';
import { SimClock, type Owner, type SimEvent, type SimWorld } from './world.ts';

/** How a term's work winds down once its signal aborts. */
export type Settling = { kind: 'prompt' } | { kind: 'slow'; ms: number } | { kind: 'never' };

export interface Timings {
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
}

export interface OurCandidateSpec {
  identity: string;
  timings: Timings;
  lossPolicy: LossPolicy;
  settleTimeout: number;
  style: Exclude<WorkStyle, 'context'>;
  settling: Settling;
  /** Milliseconds between two steps of work. */
  stepMs: number;
  /** Chance that a term's work calls stepDown() synchronously as it starts. */
  stepDownAtStart: number;
  /** Coordinated leader election: the versions its LeaseCandidate announces. */
  versions?: Required<CoordinatedOptions>;
  /** Its wall clock's skew, when the world picks it (coordinated worlds keep most small); else up to an hour. */
  wallSkewMs?: number;
}

interface Common {
  readonly owner: Owner;
  readonly key: string;
  readonly identity: string;
  /** Whether this process could lead right now if the world let it (for the progress invariant). */
  healthy(): boolean;
  leads(): boolean;
  kill(): void;
}

export class ProcessOwner implements Owner {
  paused = false;
  dead = false;
  resumedAt = -Infinity;
  parked: SimEvent[] = [];
  constructor(readonly name: string) {}
}

export class OurCandidate implements Common {
  readonly owner: ProcessOwner;
  readonly key: string;
  readonly elector: LeaderElector;
  readonly lock: SimLeaseLock;
  /** The elector's timers, apart from the work's, so a leak check can tell them apart. */
  readonly electorClock: SimClock;
  private readonly workClock: SimClock;
  readonly terms: SimTerm[] = [];
  stopping: Promise<void> | undefined;
  stopped = false;
  private readonly jitterLateMs: number;
  exited = false;
  private readonly holdLost = new Set<number>();
  readonly candidacy: SimCandidacy | undefined;

  constructor(
    private readonly world: SimWorld,
    server: SimApiserver,
    private readonly checker: Checker,
    readonly spec: OurCandidateSpec,
    jitter: { earlyMs: number; lateMs: number },
    private readonly onExit: (candidate: OurCandidate) => void,
    coordination?: SimCoordination,
  ) {
    this.jitterLateMs = jitter.lateMs;
    this.key = world.processKey(spec.identity);
    this.owner = new ProcessOwner(this.key);
    const rng = world.rng;
    const rate = 1 + rng.between(-1e-4, 1e-4);
    const offset = rng.between(0, 1e6);
    const drawn = rng.between(-3_600_000, 3_600_000);
    const skew = spec.wallSkewMs ?? drawn;
    this.electorClock = new SimClock(world, this.owner, jitter, rate, offset, skew);
    this.workClock = new SimClock(world, this.owner, jitter, rate, offset, skew);
    this.lock = server.lockFor(this.owner, this.key, (line) => world.log(`${this.key} ${line}`));
    this.candidacy = coordination && spec.versions ? coordination.candidacyFor(this.owner, spec.identity, this.electorClock, spec.versions) : undefined;
    const log = (level: string) => (message: string): void => world.log(`${this.key} ${level}: ${message}`);
    this.elector = new LeaderElector(
      { leaseName: server.name, namespace: server.namespace, identity: spec.identity, ...spec.timings, lossPolicy: spec.lossPolicy, settleTimeout: spec.settleTimeout },
      {
        lock: this.lock,
        clock: this.electorClock,
        random: () => rng.next(),
        logger: { log: log('log'), warn: (message) => this.warn(message, log('warn')), error: log('error') },
        ...this.candidacy ? { candidacy: this.candidacy } : {},
        exit: (code) => {
          world.log(`${this.key} EXITS with code ${code}`);
          this.exited = true;
          this.kill();
          this.onExit(this);
        },
      },
    );
  }

  get identity(): string {
    return this.spec.identity;
  }

  private warn(message: string, log: (message: string) => void): void {
    const token = holdLostToken(message);
    if (token !== undefined) this.holdLost.add(token);
    log(message);
  }

  start(): void {
    this.world.log(`${this.key} starts (${this.spec.style}, ${this.spec.settling.kind}, ${this.spec.lossPolicy}, ${JSON.stringify(this.spec.timings)})`);
    this.elector.start((term) => this.work(term));
  }

  healthy(): boolean {
    return !this.owner.dead && !this.owner.paused && !this.stopping && this.terms.every((term) => term.settled || this.leads());
  }

  /** Asking a paused process would run its code while frozen: it does not lead now, whatever it will find on resume. */
  leads(): boolean {
    return !this.owner.dead && !this.owner.paused && this.elector.isLeader();
  }

  kill(): void {
    if (this.owner.dead) return;
    this.world.log(`${this.key} is killed`);
    this.owner.dead = true;
    for (const term of this.terms) term.settled = true; // its work died with it
  }

  stop(): Promise<void> {
    this.stopping ??= this.elector.stop().then(() => {
      this.stopped = true;
      this.world.log(`${this.key} stopped`);
    }, (error: unknown) => {
      this.world.errors.push(`${this.key}: stop() failed: ${error instanceof Error ? error.stack : String(error)}`);
    });
    return this.stopping;
  }

  private work(term: Term): Promise<void> {
    return runWork({
      world: this.world, checker: this.checker, key: this.key, identity: this.identity, owner: this.owner, elector: this.elector,
      electorClock: this.electorClock, workClock: this.workClock, jitterLateMs: this.jitterLateMs, spec: this.spec, terms: this.terms,
      holdLost: this.holdLost,
    }, term);
  }
}

/** What a term's simulated work needs of its process. */
export interface WorkContext {
  world: SimWorld;
  checker: Checker;
  key: string;
  identity: string;
  owner: Owner;
  elector: LeaderElector;
  electorClock: SimClock;
  workClock: SimClock;
  jitterLateMs: number;
  spec: Pick<OurCandidateSpec, 'style' | 'stepMs' | 'settling' | 'stepDownAtStart' | 'timings'>;
  /** The process's terms, to which this one is added. */
  terms: SimTerm[];
  /** Fencing tokens of terms whose lease the elector said it could not keep while their work settled. */
  holdLost: Set<number>;
}

/** The elector's warning that it could not keep an ended term's lease while the work settles: the term's token. */
export function holdLostToken(message: string): number | undefined {
  const match = /could not keep .* while the work of its term (\d+) settles/.exec(message);
  return match ? Number(match[1]) : undefined;
}

/**
 * Listeners (an abort listener, `leadership$`) learn of a deadline from its timer: unless the
 * process was paused across the deadline, the signal must abort within the timers' lateness of it.
 */
function watchAbortTimeliness(ctx: WorkContext, term: Term): void {
  const { elector, electorClock, owner, checker, world } = ctx;
  const renewedAt = elector.lastRenewedAt!;
  let lastRenewal = renewedAt;
  const subscription = elector.events$.subscribe((event) => {
    if (event.type === 'renewed') lastRenewal = elector.lastRenewedAt ?? lastRenewal;
  });
  term.signal.addEventListener('abort', () => {
    subscription.unsubscribe();
    const reason = (term.signal.reason as { reason?: string } | undefined)?.reason;
    if (reason !== 'renew-deadline' || owner.dead || owner.paused) return;
    const deadline = lastRenewal + ctx.spec.timings.renewDeadline;
    const late = electorClock.now() - deadline;
    const resumedSinceDeadline = owner.resumedAt * electorClock.rate + electorClock.offset >= deadline - 1;
    if (late > ctx.jitterLateMs + 1 && !resumedSinceDeadline) {
      checker.violations.push(`at ${(world.now / 1000).toFixed(4)}s: ${ctx.key}'s term ${term.fencingToken} signal aborted ${late.toFixed(1)} ms after its deadline, without a pause`);
    }
  }, { once: true });
}

/** Work in the context's style: act, sleep, until its check says the term is over; then wind down. */
export async function runWork(ctx: WorkContext, term: Term): Promise<void> {
  const { elector, world, checker, owner, workClock } = ctx;
  const style = ctx.spec.style;
  const voluntary = (): boolean => ['stepped-down', 'stopped'].includes((term.signal.reason as { reason?: string } | undefined)?.reason ?? '');
  const simTerm: SimTerm = {
    process: ctx.key,
    identity: ctx.identity,
    implementation: 'ours',
    fencingToken: term.fencingToken,
    acquireTime: term.acquiredAt.getTime(),
    style,
    settled: false,
    begunAt: 0,
    frozen: () => owner.paused,
    heldWhileSettling: () => term.signal.aborted && voluntary() && !ctx.holdLost.has(term.fencingToken),
    canAct: () => {
      if (owner.dead) return false;
      switch (style) {
        case 'signal': return !term.signal.aborted;
        case 'valid': return term.isValid();
        case 'leader': return elector.isLeader();
        case 'throw':
          try {
            term.signal.throwIfAborted();
            return true;
          } catch {
            return false;
          }
      }
    },
  };
  ctx.terms.push(simTerm);
  checker.termBegan(simTerm);
  watchAbortTimeliness(ctx, term);
  if (!world.healed && world.rng.chance(ctx.spec.stepDownAtStart)) {
    world.log(`${ctx.key} work calls stepDown() as it starts`);
    void elector.stepDown();
  }
  try {
    while (simTerm.canAct()) {
      checker.act(simTerm);
      await workClock.sleep(ctx.spec.stepMs, style === 'leader' ? undefined : term.signal);
    }
  } catch {
    // the signal aborted a sleep
  }
  const settling = ctx.spec.settling;
  if (settling.kind === 'slow') await workClock.sleep(settling.ms);
  if (settling.kind === 'never') await new Promise(() => {});
  simTerm.settled = true;
  world.log(`${ctx.key} work of term ${term.fencingToken} settled`);
}

export interface ClientGoSpec {
  identity: string;
  timings: Timings;
  stepMs: number;
}

/**
 * client-go's tools/leaderelection as documented: jittered acquire polling, a renew loop whose
 * cycle gives up after renewDeadline, expiry judged by the local time a record was first seen,
 * a fast path that writes the cached object, and a core component's exit when leadership ends.
 */
export class ClientGoCandidate implements Common {
  readonly owner: ProcessOwner;
  readonly key: string;
  private readonly clock: SimClock;
  readonly lock: SimLeaseLock;
  private observedRecord: string | undefined;
  private observed: LeaseSnapshot | undefined;
  private observedTime = 0;
  private leading: AbortController | undefined;
  private term: SimTerm | undefined;

  constructor(
    private readonly world: SimWorld,
    server: SimApiserver,
    private readonly checker: Checker,
    readonly spec: ClientGoSpec,
    private readonly onExit: (candidate: ClientGoCandidate) => void,
  ) {
    this.key = world.processKey(spec.identity);
    this.owner = new ProcessOwner(this.key);
    // Go's timers never fire early.
    this.clock = new SimClock(world, this.owner, { earlyMs: 0, lateMs: 1 }, 1 + world.rng.between(-1e-4, 1e-4), world.rng.between(0, 1e6), world.rng.between(-3_600_000, 3_600_000));
    this.lock = server.lockFor(this.owner, this.key, (line) => world.log(`${this.key} ${line}`));
  }

  get identity(): string {
    return this.spec.identity;
  }

  healthy(): boolean {
    return !this.owner.dead && !this.owner.paused;
  }

  leads(): boolean {
    return !this.owner.dead && this.leading !== undefined && !this.leading.signal.aborted;
  }

  kill(): void {
    if (this.owner.dead) return;
    this.world.log(`${this.key} is killed`);
    this.owner.dead = true;
    if (this.term) this.term.settled = true;
  }

  start(): void {
    this.world.log(`${this.key} starts (client-go, ${JSON.stringify(this.spec.timings)})`);
    void this.run();
  }

  private async run(): Promise<void> {
    const { retryPeriod, renewDeadline } = this.spec.timings;
    while (!(await this.tryAcquireOrRenew())) {
      await this.clock.sleep(retryPeriod * (1 + this.world.rng.next() * 1.2));
    }
    this.beginLeading();
    // wait.Until with a sliding period: each cycle starts retryPeriod after the last one ended.
    for (;;) {
      await this.clock.sleep(retryPeriod);
      const cycleStart = this.clock.now();
      let renewed = false;
      while (this.clock.now() - cycleStart < renewDeadline) {
        const timeLeft = renewDeadline - (this.clock.now() - cycleStart);
        if (await this.tryAcquireOrRenew(timeLeft)) {
          renewed = true;
          break;
        }
        if (this.clock.now() - cycleStart + retryPeriod >= renewDeadline) break;
        await this.clock.sleep(retryPeriod);
      }
      if (!renewed) break;
    }
    this.world.log(`${this.key} failed to renew within renewDeadline: stops leading and exits`);
    this.leading?.abort();
    this.kill();
    this.onExit(this);
  }

  private beginLeading(): void {
    this.leading = new AbortController();
    const signal = this.leading.signal;
    const term: SimTerm = {
      process: this.key,
      identity: this.identity,
      implementation: 'client-go',
      fencingToken: this.observed!.record.leaseTransitions,
      acquireTime: undefined,
      style: 'context',
      settled: false,
      begunAt: 0,
      frozen: () => this.owner.paused,
      canAct: () => !this.owner.dead && !signal.aborted,
    };
    this.term = term;
    this.checker.termBegan(term);
    void (async () => {
      try {
        while (term.canAct()) {
          this.checker.act(term);
          await this.clock.sleep(this.spec.stepMs, signal);
        }
      } catch {
        // cancelled
      }
      term.settled = true;
    })();
  }

  private isLeader(): boolean {
    return this.observed?.record.holderIdentity === this.identity;
  }

  /** One attempt; the request timeout is max(1 s, renewDeadline / 2), capped by the cycle's time left. */
  private async tryAcquireOrRenew(timeLeft = Infinity): Promise<boolean> {
    const { leaseDuration, renewDeadline } = this.spec.timings;
    const controller = new AbortController();
    const timer = this.clock.setTimeout(() => controller.abort(new LockError('timeout', 'client timeout')), Math.min(timeLeft, Math.max(1000, renewDeadline / 2)));
    const signal = controller.signal;
    const now = new Date(this.clock.wallNow());
    const seconds = Math.ceil(leaseDuration / 1000);
    try {
      if (this.isLeader() && this.observed && this.observedTime + seconds * 1000 > this.clock.now()) {
        const record: LeaseRecord = { ...this.observed.record, renewTime: now, leaseDurationSeconds: seconds };
        try {
          this.setObserved(await this.lock.update(record, this.observed, signal));
          return true;
        } catch {
          // fall through to the slow path
        }
      }
      let current = await this.lock.get(signal);
      if (!current) {
        current = await this.lock.create({ holderIdentity: this.identity, leaseDurationSeconds: seconds, acquireTime: now, renewTime: now, leaseTransitions: 0 }, signal);
        this.setObserved(current);
        return true;
      }
      const raw = JSON.stringify(current.record);
      if (raw !== this.observedRecord) {
        this.observedRecord = raw;
        this.observedTime = this.clock.now();
      }
      this.observed = current;
      const record = current.record;
      const duration = (record.leaseDurationSeconds ?? seconds) * 1000;
      if (record.holderIdentity !== '' && record.holderIdentity !== this.identity && this.observedTime + duration > this.clock.now()) return false;
      const mine = record.holderIdentity === this.identity;
      const next: LeaseRecord = {
        holderIdentity: this.identity,
        leaseDurationSeconds: seconds,
        acquireTime: mine ? record.acquireTime : now,
        renewTime: now,
        leaseTransitions: mine ? record.leaseTransitions : record.leaseTransitions + 1,
      };
      this.setObserved(await this.lock.update(next, current, signal));
      return true;
    } catch {
      return false;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private setObserved(snapshot: LeaseSnapshot): void {
    this.observed = snapshot;
    this.observedRecord = JSON.stringify(snapshot.record);
    this.observedTime = this.clock.now();
  }
}

export type Candidate = OurCandidate | ClientGoCandidate;
