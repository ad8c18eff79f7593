// One simulated run of leader-only scheduled jobs from one seed. The seed picks 2–4 instances, each a
// real LeaderElector on its own InMemoryLeaseLock to one shared InMemoryLeaseStore, each with a real
// LeaderScheduler whose runTerm is its elector's work; two jobs (a cron job every second, an interval
// job every 1.5 s) with random policies, waitForCompletion, maxCatchUp, handler style and run
// durations; the record mode; and a schedule of faults: stepDown, stop and restart (graceful), and,
// unless the seed is a graceful one, crashes, an apiserver outage for one instance, and pauses. Every
// process has its own simulated clock (world.ts: timers a little early or late, slight drift, a
// wall clock a few ms off) and its own network path to the store (latency both ways; answers wait
// while the process is paused and never reach a dead one). Every run goes into a ledger that
// schedule-checker.ts checks at the end. Same seed, same run: no Math.random, no real timers.
import { LeaderElector, LockError, type AnnotationChanges, type LeaseLock, type LeaseRecord, type LeaseSnapshot, type LossPolicy, type Term } from 'nestjs-lease-election/core';
import { LeaderScheduler, type ScheduleEvent } from '../../libs/leader-election/src/schedule/leader-scheduler.ts';
import type { RunContext } from '../../libs/leader-election/src/schedule/run-context.ts';
import { parseScheduleRecord } from '../../libs/leader-election/src/schedule/schedule-record.ts';
import { cronTimetable, intervalTimetable, type Timetable } from '../../libs/leader-election/src/schedule/timetable.ts';
import { InMemoryLeaseLock, InMemoryLeaseStore } from '../../libs/leader-election/src/testing/in-memory-lease-lock.ts';
import { checkSchedule, fmtTick, ScheduleLedger, type HandlerStyle, type RunRecord, type SimJob, type TermRecord } from './schedule-checker.ts';
import { clientRequest } from './apiserver.ts';
import { SimClock, SimWorld, type Owner, type SimEvent } from './world.ts';

export interface ScheduleSimResult {
  seed: number;
  violations: string[];
  /** Ticks lost because a term found no record of their job, none having landed yet (6F: documented, counted apart). */
  freshStartLosses: string[];
  trace: string[];
  summary: string;
  /** Simulated seconds. */
  simulated: number;
  terms: number;
  runs: number;
  /** Ticks run more than once (each excused by the checker, or reported). */
  repeats: number;
  /** Ticks done (completed or failed) more than once: after a loss, under 'catch-up', when not recorded. */
  doneTwice: number;
  graceful: boolean;
}

interface Timings { leaseDuration: number; renewDeadline: number; retryPeriod: number }

const PRESETS: Timings[] = [
  { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 },
  { leaseDuration: 4_000, renewDeadline: 3_000, retryPeriod: 500 },
  { leaseDuration: 2_000, renewDeadline: 1_500, retryPeriod: 250 },
  { leaseDuration: 3_000, renewDeadline: 1_500, retryPeriod: 400 },
  { leaseDuration: 1_000, renewDeadline: 900, retryPeriod: 300 },
];

const ANNOTATION_KEY = 'example.com/leader-jobs';
/** Wall clocks of the instances differ by at most this (much less than any handover's gap). */
const MAX_WALL_SKEW_MS = 10;

/** A handler's own failure, while its term is valid: the run 'failed', the tick is settled. */
class AppError extends Error {}
/** Style (b) found term.isValid() false between steps. */
class TermOver extends Error {}

/** One network path to the store: latency both ways, outages, and nothing more after a crash. */
class NetLock implements LeaseLock {
  readonly description: string;
  readonly inner: InMemoryLeaseLock;
  inFlight = 0;
  /** Chance that a request fails with a 5xx: half before the store applied it, half after (the answer is lost). */
  flaky = 0;
  private crashed = false;
  /** After the crash, requests already sent still land (the seed decides). */
  private landAfterCrash = false;
  private readonly watches = new Set<() => void>();

  constructor(
    private readonly world: SimWorld,
    private readonly owner: Owner,
    store: InMemoryLeaseStore,
    private readonly latency: { min: number; max: number },
    private readonly landed: (verb: string, basedOn: LeaseSnapshot | undefined, result: LeaseSnapshot) => void,
  ) {
    this.inner = new InMemoryLeaseLock(store);
    this.description = this.inner.description;
  }

  private delay(): number {
    return this.world.rng.between(this.latency.min, this.latency.max);
  }

  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    return this.request('get', signal, (server) => this.inner.get(server));
  }

  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    return this.request('create', signal, (server) => this.inner.create(record, server));
  }

  update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot> {
    return this.request('update', signal, (server) => this.inner.update(record, basedOn, server, annotations), basedOn);
  }

  /**
   * The request reaches the store after a latency (whatever the client does meanwhile) and the
   * answer comes back as an event of the process: it waits while the process is paused and is
   * dropped once it is dead. The caller's signal rejects it at once.
   */
  private request<T>(verb: string, signal: AbortSignal, send: (server: AbortSignal) => Promise<T>, basedOn?: LeaseSnapshot): Promise<T> {
    return clientRequest<T>(this, signal, (finish, resolve, reject, server) => {
      this.world.after(this.delay(), () => {
        if (this.crashed && !this.landAfterCrash) return;
        const rng = this.world.rng;
        if (rng.chance(this.flaky / 2)) {
          this.world.after(this.delay(), () => finish(() => reject(new LockError('unavailable', `${verb}: 503 before applying`))), this.owner);
          return;
        }
        const lost = rng.chance(this.flaky / 2);
        send(server).then((result) => {
          if (verb !== 'get') this.landed(verb, basedOn, result as LeaseSnapshot);
          this.world.after(this.delay(), () => finish(lost ? () => reject(new LockError('unavailable', `${verb}: connection reset after applying`)) : () => resolve(result)), this.owner);
        }, (error: unknown) => {
          this.world.after(this.delay(), () => finish(() => reject(error as Error)), this.owner);
        });
      });
    });
  }


  get watch(): LeaseLock['watch'] {
    const open = this.inner.watch;
    if (!open) return undefined;
    return (handlers) => {
      let active = true;
      let last = 0;
      // In order, after a latency, as events of the process.
      const deliver = (action: () => void): void => {
        const at = Math.max(this.world.now + this.delay(), last);
        last = at;
        this.world.at(at, () => {
          if (active) action();
        }, this.owner);
      };
      const stopInner = open({
        onChange: (snapshot) => deliver(() => handlers.onChange(snapshot)),
        onOpen: () => deliver(() => handlers.onOpen()),
        onClose: (error) => deliver(() => {
          active = false;
          handlers.onClose(error);
        }),
      });
      const stop = (): void => {
        active = false;
        stopInner();
        this.watches.delete(stop);
      };
      this.watches.add(stop);
      return stop;
    };
  }

  /** The apiserver unreachable for this instance: every request fails, or hangs until its timeout. */
  outage(kind: 'unavailable' | 'hang' | undefined): void {
    this.inner.failure = kind === 'unavailable' ? 'unavailable' : undefined;
    this.inner.hang = kind === 'hang';
    this.inner.watchBroken = kind === 'hang';
    if (kind) this.inner.breakWatch();
  }

  crash(landInFlight: boolean): void {
    this.crashed = true;
    this.landAfterCrash = landInFlight;
    // Deleting the current element while iterating a Set is safe.
    for (const stop of this.watches) stop();
  }
}

class Proc implements Owner {
  paused = false;
  dead = false;
  parked: SimEvent[] = [];
  resumedAt = -Infinity;
  clock!: SimClock;
  /** The handlers' timers, apart from the elector's and the scheduler's. */
  workClock!: SimClock;
  lock!: NetLock;
  elector!: LeaderElector;
  scheduler!: LeaderScheduler;
  term: TermRecord | undefined;
  readonly inFlight = new Set<RunRecord>();
  stopping = false;
  stopped = false;

  constructor(readonly name: string, readonly slot: number, readonly identity: string) {}
}

const runKey = (term: string, job: string, tick: number): string => `${term}|${job}|${tick}`;

/** A record as the trace shows it: "cron ≤03:04:12.999+03:04:14.000 interval ≤03:04:11.999". */
function describeRecord(value: string | undefined): string {
  if (value === undefined) return 'none';
  const { jobs: records } = parseScheduleRecord(value);
  return [...records].map(([name, entry]) => `${name} ≤${fmtTick(entry.done.getTime())}${entry.also.length ? `+${entry.also.map((tick) => fmtTick(tick.getTime())).join('+')}` : ''}`).join(' ') || 'empty';
}

/** How many ticks appear more than once among these runs. */
function repeatedTicks(runs: RunRecord[]): number {
  const byTick = new Map<string, number>();
  for (const run of runs) byTick.set(`${run.job}@${run.tick}`, (byTick.get(`${run.job}@${run.tick}`) ?? 0) + 1);
  return [...byTick.values()].filter((times) => times > 1).length;
}

export async function simulateSchedule(seed: number): Promise<ScheduleSimResult> {
  const world = new SimWorld(seed);
  const rng = world.rng;
  const ledger = new ScheduleLedger();
  const store = new InMemoryLeaseStore('jobs', 'default');

  // ---- the seed's world ----
  const timings = rng.pick(PRESETS);
  const margin = timings.leaseDuration - timings.renewDeadline;
  const record = rng.chance(0.5) ? 'on-completion' as const : 'on-renewal' as const;
  const latency = rng.chance(0.7) ? { min: 0.3, max: 4 } : { min: 1, max: rng.between(10, 40) };
  const jitter = { earlyMs: rng.between(0, 3), lateMs: rng.between(0, 5) };
  const slots = rng.int(2, 4);
  const makeJob = (name: string, timetable: Timetable, period: number): SimJob => {
    const style = rng.pick<HandlerStyle>(['signal', 'valid', 'ignore']);
    return {
      name, timetable, period, style,
      policy: rng.chance(0.5) ? 'catch-up' : 'skip',
      maxCatchUp: rng.pick([1, 2, 5, 100]),
      waitForCompletion: rng.chance(0.5),
      failRate: style !== 'ignore' && rng.chance(0.3) ? 0.1 : 0,
    };
  };
  const jobs = [
    makeJob('cron', cronTimetable({ cronTime: '* * * * * *', timeZone: 'UTC' }), 1000),
    makeJob('interval', intervalTimetable(1500), 1500),
  ];
  // Work must stop "well within leaseDuration − renewDeadline" of its term's end (README's safety
  // model): a run that ignores the signal lasts at most 0.7 of that, and style (b) steps 0.4 of it.
  const ignoreMax = 0.7 * margin;
  const stepMax = Math.min(400, 0.4 * margin);
  const settleNeeded = Math.max(50, ...jobs.map((job) => job.style === 'ignore' ? ignoreMax + 100 : job.style === 'valid' ? stepMax + 20 : 0));
  const graceful = rng.chance(0.35);
  // A paused handler that ignores the signal acts on resume, after its successor began: outside the
  // documented assumption, so a process is never paused while such a run is in flight.
  const pausesAllowed = !graceful;

  // ---- processes ----
  const procs: Proc[] = [];
  const pendingRestart = new Set<number>();
  const runIndex = new Map<string, RunRecord[]>();
  let runSeq = 0;
  let restarts = 0;

  let lastRecordValue: string | undefined;
  const onLanded = (proc: Proc) => (verb: string, basedOn: LeaseSnapshot | undefined, result: LeaseSnapshot): void => {
    const release = result.record.holderIdentity === '' && basedOn?.record.holderIdentity === proc.identity;
    const token = result.record.leaseTransitions;
    const value = result.annotations[ANNOTATION_KEY];
    const term = `${proc.name}/${token}`;
    ledger.writes.push({ proc: proc.name, term, at: world.now, release, records: value === undefined ? undefined : parseScheduleRecord(value).jobs });
    if (result.record.holderIdentity === proc.identity && (verb === 'create' || basedOn?.record.holderIdentity !== proc.identity ||
      basedOn.record.leaseTransitions !== token)) ledger.acquired.add(term);
    if (release) {
      const released = ledger.terms.get(term);
      if (released) released.released = true;
    }
    // Renewals that change nothing stay out of the trace.
    const changed = value !== lastRecordValue;
    lastRecordValue = value;
    if (release || verb === 'create' || result.record.holderIdentity !== basedOn?.record.holderIdentity || changed) {
      world.log(`store: ${verb} by ${proc.name} -> rv ${result.resourceVersion} holder ${JSON.stringify(result.record.holderIdentity)} token ${token} record ${describeRecord(value)}`);
    }
  };

  const handler = async (proc: Proc, job: SimJob, context: RunContext): Promise<void> => {
    const validAtStart = context.term.isValid();
    const run: RunRecord = {
      seq: runSeq++, proc: proc.name, term: `${proc.name}/${context.fencingToken}`, token: context.fencingToken, job: job.name,
      tick: context.tick.scheduledAt.getTime(), kind: context.tick.kind, startedAt: world.now, startedWall: proc.clock.wallNow().getTime(),
      effects: [], outcome: 'in-flight', validAtStart,
    };
    ledger.runs.push(run);
    const key = runKey(run.term, run.job, run.tick);
    runIndex.set(key, [...runIndex.get(key) ?? [], run]);
    proc.inFlight.add(run);
    // The plan: some runs shorter than the period, some longer.
    const duration = job.style === 'ignore' ? rng.between(0.05, 1) * ignoreMax
      : rng.chance(0.5) ? rng.between(0.05, 0.8) * job.period : rng.between(0.8, 2.5) * job.period;
    const longestStep = job.style === 'valid' ? stepMax : job.style === 'signal' ? rng.between(50, 400) : 200;
    const steps = Math.max(1, Math.ceil(duration / longestStep));
    const step = duration / steps;
    const failAt = rng.chance(job.failRate) ? rng.int(0, steps - 1) : -1;
    world.log(`${run.term} RUN ${job.name}@${fmtTick(run.tick)} starts (${run.kind}, ${job.style}, ${Math.round(duration)} ms${failAt >= 0 ? `, fails at step ${failAt}` : ''})${validAtStart ? '' : ' IN AN INVALID TERM'}`);
    const act = (): void => {
      if (!proc.dead && !proc.paused) run.effects.push(world.now);
    };
    const check = (): void => {
      if (job.style === 'signal' && context.signal.aborted) throw context.signal.reason;
      if (job.style === 'valid' && !context.term.isValid()) throw new TermOver('term over');
    };
    try {
      check();
      act();
      for (let i = 0; i < steps; i++) {
        if (job.style === 'signal') await proc.workClock.sleep(step, context.signal);
        else await proc.workClock.sleep(step);
        check();
        if (i === failAt) throw new AppError(`${job.name} failed on purpose`);
        act();
      }
      if (!proc.dead) {
        run.outcome = 'completed';
        run.endedAt = world.now;
      }
    } catch (error) {
      if (!proc.dead) {
        run.outcome = error instanceof AppError ? 'failed' : 'aborted';
        run.endedAt = world.now;
      }
      throw error;
    } finally {
      proc.inFlight.delete(run);
      if (!proc.dead) world.log(`${run.term} RUN ${job.name}@${fmtTick(run.tick)} ${run.outcome}`);
    }
  };

  const onScheduleEvent = (proc: Proc, event: ScheduleEvent): void => {
    if (proc.dead) return;
    const term = proc.term?.key;
    switch (event.type) {
      case 'run-settled': {
        const runs = runIndex.get(runKey(`${proc.name}/${event.fencingToken}`, event.tick.job, event.tick.scheduledAt.getTime())) ?? [];
        const run = runs.find((candidate) => candidate.scheduled === undefined);
        if (run) run.scheduled = event.outcome;
        else ledger.harness.push(`run-settled for ${event.tick.id} of ${proc.name}/${event.fencingToken} without a run of its handler`);
        break;
      }
      case 'tick-recorded': {
        const runs = runIndex.get(runKey(`${proc.name}/${event.fencingToken}`, event.tick.job, event.tick.scheduledAt.getTime())) ?? [];
        for (const run of runs) run.recordedAt ??= world.now;
        break;
      }
      case 'ticks-skipped':
        ledger.skips.push({ proc: proc.name, term, job: event.job, reason: event.reason, ticks: event.ticks.map((tick) => tick.getTime()), at: world.now });
        world.log(`${term} SKIPS ${event.job} ${event.ticks.map((tick) => fmtTick(tick.getTime())).join(' ')} (${event.reason})`);
        break;
      case 'ticks-caught-up':
        ledger.catchUps.push({ proc: proc.name, term, job: event.job, reason: event.reason, ticks: event.ticks.map((tick) => tick.getTime()), at: world.now });
        world.log(`${term} CATCHES UP ${event.job} ${event.ticks.map((tick) => fmtTick(tick.getTime())).join(' ')}`);
        break;
      case 'run-started':
        break;
    }
  };

  const work = (proc: Proc, term: Term): Promise<void> => {
    const annotations = proc.elector.annotationsAtStart(term);
    const { jobs: records } = parseScheduleRecord(annotations[ANNOTATION_KEY]);
    const termRecord: TermRecord = {
      key: `${proc.name}/${term.fencingToken}`, proc: proc.name, token: term.fencingToken, beganAt: world.now,
      beganWall: proc.clock.wallNow().getTime(), start: new Map(jobs.map((job) => [job.name, records.get(job.name)])),
      released: false, crashed: false, unsettled: false, releaseFailed: false,
    };
    ledger.terms.set(termRecord.key, termRecord);
    proc.term = termRecord;
    world.log(`${termRecord.key} TERM BEGINS at wall ${fmtTick(termRecord.beganWall)}; record ${describeRecord(annotations[ANNOTATION_KEY])}`);
    return proc.scheduler.runTerm(term);
  };

  const kill = (proc: Proc, why: 'crash' | 'exit'): void => {
    if (proc.dead) return;
    world.log(`${proc.name} ${why === 'crash' ? 'CRASHES' : 'EXITS'} (${proc.inFlight.size} runs in flight)`);
    proc.dead = true;
    for (const run of proc.inFlight) {
      run.outcome = 'crashed';
      run.endedAt = world.now;
    }
    proc.inFlight.clear();
    if (proc.term) {
      proc.term.crashed = true;
      if (proc.term.endedAt === undefined) {
        proc.term.endedAt = world.now;
        proc.term.reason = why;
      }
    }
    proc.lock.crash(rng.chance(0.5));
  };

  const spawn = (slot: number, identity: string): Proc => {
    pendingRestart.delete(slot);
    const name = world.processKey(identity);
    const proc = new Proc(name, slot, identity);
    const rate = 1 + rng.between(-1e-4, 1e-4);
    const offset = rng.between(0, 1e6);
    const skew = rng.between(-MAX_WALL_SKEW_MS / 2, MAX_WALL_SKEW_MS / 2);
    proc.clock = new SimClock(world, proc, jitter, rate, offset, skew);
    proc.workClock = new SimClock(world, proc, jitter, rate, offset, skew);
    proc.lock = new NetLock(world, proc, store, latency, onLanded(proc));
    const lossPolicy: LossPolicy = rng.chance(0.5) ? 'exit' : 'rejoin';
    const settleTimeout = Math.round(rng.chance(0.8) ? settleNeeded + rng.between(100, 2000) : rng.between(10, settleNeeded));
    const log = (level: string) => (message: string): void => world.log(`${name} ${level}: ${message}`);
    const logger = {
      log: log('log'),
      warn: log('warn'),
      error: (message: string): void => {
        log('error')(message);
        // The elector's own word that a term's work outlived settleTimeout: that term ends with a loss.
        const token = message.match(/'s term (\d+) did not settle within/)?.[1];
        const term = token === undefined ? undefined : ledger.terms.get(`${name}/${token}`);
        if (term) term.unsettled = true;
      },
    };
    proc.elector = new LeaderElector(
      { leaseName: 'jobs', namespace: 'default', identity, ...timings, lossPolicy, settleTimeout },
      {
        lock: proc.lock,
        clock: proc.clock,
        random: () => rng.next(),
        logger,
        exit: () => {
          kill(proc, 'exit');
          restartLater(slot, identity);
        },
      },
    );
    proc.scheduler = new LeaderScheduler(proc.elector, proc.clock, { annotationKey: ANNOTATION_KEY, record }, logger);
    for (const job of jobs) {
      proc.scheduler.add({
        name: job.name, timetable: job.timetable, waitForCompletion: job.waitForCompletion, missed: job.policy, maxCatchUp: job.maxCatchUp,
        run: (context) => handler(proc, job, context),
      });
    }
    proc.scheduler.events$.subscribe((event) => onScheduleEvent(proc, event));
    proc.elector.events$.subscribe((event) => {
      // A release failed before any release of the term landed (one that landed and only lost its answer
      // is a release): the term's last record went with it, even if a later stop() releases the lease.
      if (event.type === 'error' && event.during === 'release' && proc.term && !proc.term.released && !proc.dead) proc.term.releaseFailed = true;
      if (event.type !== 'lost' || proc.dead || !proc.term || proc.term.endedAt !== undefined) return;
      proc.term.endedAt = world.now;
      proc.term.reason = event.reason;
      world.log(`${proc.term.key} TERM ENDS: ${event.reason}`);
    });
    procs.push(proc);
    world.log(`${name} starts (slot ${slot}, ${lossPolicy}, settleTimeout ${settleTimeout} ms)`);
    proc.elector.start((term) => work(proc, term));
    return proc;
  };

  let stoppingAll = false;
  const restartLater = (slot: number, identity: string): void => {
    pendingRestart.add(slot);
    world.after(rng.between(100, 3000), () => {
      // A stop-restart whose stop outlasted the final STOP (its work was slow to settle) restarts nothing.
      if (stoppingAll) return;
      restarts++;
      spawn(slot, identity);
    });
  };

  const alive = (): Proc[] => procs.filter((proc) => !proc.dead && !proc.stopping);
  const leader = (): Proc | undefined => alive().find((proc) => !proc.paused && proc.elector.isLeader());
  const target = (leaderChance: number): Proc | undefined => (rng.chance(leaderChance) ? leader() : undefined) ?? (alive().length ? rng.pick(alive()) : undefined);

  /**
   * SIGTERM: stop(), then the process exits (work that outlived settleTimeout dies with it). Run as
   * an event of the process, so a paused one handles it on resume.
   */
  const stop = (proc: Proc): Promise<void> => {
    proc.stopping = true;
    return new Promise<void>((resolve) => world.after(0, () => resolve(proc.elector.stop()), proc)).then(() => {
      proc.stopped = true;
      world.log(`${proc.name} stopped and exits (${proc.inFlight.size} runs still in flight die with it)`);
      if (proc.clock.timers.size > 0 || proc.lock.inFlight > 0) {
        ledger.harness.push(`${proc.name} left ${proc.clock.timers.size} timer(s) and ${proc.lock.inFlight} request(s) behind after stop()`);
      }
      for (const run of proc.inFlight) {
        run.outcome = 'crashed';
        run.endedAt = world.now;
      }
      proc.inFlight.clear();
      proc.dead = true;
    }, (error: unknown) => {
      ledger.harness.push(`${proc.name}: stop() failed: ${String(error)}`);
    });
  };

  // ---- faults ----
  const faults: Record<string, number> = {};
  const catalogue: Array<[number, string, () => void]> = [
    [graceful ? 3 : 2, 'step-down', () => {
      const proc = leader();
      if (proc) world.after(0, () => void proc.elector.stepDown(), proc);
    }],
    [graceful ? 2 : 1, 'stop-restart', () => {
      const proc = target(0.7);
      if (!proc) return;
      const identity = rng.chance(0.7) ? proc.identity : `node-${proc.slot}-r${restarts + 1}`;
      pendingRestart.add(proc.slot);
      void stop(proc).then(() => restartLater(proc.slot, identity));
    }],
    ...graceful ? [] : [
      [3, 'crash', () => {
        const proc = target(0.7);
        if (!proc) return;
        ledger.lossyFaults++;
        kill(proc, 'crash');
        restartLater(proc.slot, proc.identity);
      }] as [number, string, () => void],
      [2, 'outage', () => {
        const proc = target(0.7);
        if (!proc) return;
        ledger.lossyFaults++;
        const kind = rng.chance(0.5) ? 'unavailable' as const : 'hang' as const;
        world.log(`${proc.name}: apiserver ${kind} for it`);
        proc.lock.outage(kind);
        world.after(rng.between(0.3, 3) * timings.leaseDuration, () => {
          proc.lock.outage(undefined);
          world.log(`${proc.name}: apiserver back for it`);
        });
      }] as [number, string, () => void],
      [1, 'flaky-network', () => {
        const proc = target(0.7);
        if (!proc) return;
        ledger.lossyFaults++;
        proc.lock.flaky = rng.between(0.1, 0.5);
        world.log(`${proc.name}: ${Math.round(proc.lock.flaky * 100)} % of its requests fail`);
        world.after(rng.between(0.5, 3) * timings.leaseDuration, () => {
          proc.lock.flaky = 0;
        });
      }] as [number, string, () => void],
      ...pausesAllowed ? [[3, 'pause', () => {
        const proc = target(0.8);
        if (!proc || proc.paused) return;
        // Half of them just before a tick falls due: on resume, its timer and the term's deadline race.
        const beforeTick = rng.chance(0.5);
        const pauseAt = beforeTick ? Math.ceil((world.now + 1) / 1000) * 1000 - rng.between(0, 30) : world.now;
        world.at(pauseAt, () => {
          const ignoring = [...proc.inFlight].some((run) => jobs.find((job) => job.name === run.job)?.style === 'ignore');
          if (proc.dead || proc.paused || ignoring) return;
          ledger.lossyFaults++;
          proc.paused = true;
          world.log(`${proc.name} PAUSED${beforeTick ? ' just before a tick' : ''}`);
          world.after(rng.between(0.2, 3) * timings.leaseDuration, () => world.resume(proc));
        });
      }] as [number, string, () => void]] : [],
    ],
  ];
  const weights = catalogue.reduce((sum, [weight]) => sum + weight, 0);
  const pick = (): [string, () => void] => {
    let roll = rng.next() * weights;
    for (const [weight, name, action] of catalogue) {
      roll -= weight;
      if (roll < 0) return [name, action];
    }
    return [catalogue[0]![1], catalogue[0]![2]];
  };

  for (let slot = 0; slot < slots; slot++) {
    const identity = `node-${slot}`;
    world.at(rng.between(0, 500), () => spawn(slot, identity));
  }
  const faultPhase = rng.between(20_000, 60_000);
  const faultCount = rng.int(0, 8);
  for (let i = 0; i < faultCount; i++) {
    const [name, action] = pick();
    world.at(rng.between(1_000, faultPhase), () => {
      faults[name] = (faults[name] ?? 0) + 1;
      world.log(`FAULT ${name}`);
      action();
    });
  }
  const noErrors = (): boolean => world.errors.length === 0;
  await world.runUntil(faultPhase, noErrors);

  // ---- heal: everyone reachable and running; someone leads and catches up ----
  world.log('HEAL');
  for (const proc of procs) {
    if (proc.dead) continue;
    proc.lock.outage(undefined);
    proc.lock.flaky = 0;
    if (proc.paused) world.resume(proc);
  }
  for (let slot = 0; slot < slots; slot++) {
    if (!pendingRestart.has(slot) && !procs.some((proc) => proc.slot === slot && !proc.dead && !proc.stopping)) spawn(slot, `node-${slot}`);
  }
  const maxSettle = settleNeeded + 2000;
  await world.runUntil(world.now + 3_000 + 2 * timings.leaseDuration + maxSettle + 8_000, noErrors);

  // ---- stop everyone: the last leader releases ----
  world.log('STOP');
  stoppingAll = true;
  const stopping = alive().map((proc) => stop(proc));
  void stopping;
  await world.runUntil(world.now + maxSettle + 3 * timings.renewDeadline + 5_000, noErrors);
  for (const proc of procs) {
    if (!proc.dead && !proc.stopped) ledger.harness.push(`${proc.name}: stop() did not finish`);
    proc.dead = true;
  }
  ledger.harness.push(...world.errors);

  const found = checkSchedule(ledger, jobs);
  const violations = found.filter((violation) => !violation.startsWith('[6F]'));
  const freshStartLosses = found.filter((violation) => violation.startsWith('[6F]'));
  const repeats = repeatedTicks(ledger.runs);
  const doneTwice = repeatedTicks(ledger.runs.filter((run) => run.outcome === 'completed' || run.outcome === 'failed'));
  const jobText = jobs.map((job) => `${job.name}(${job.policy}${job.policy === 'catch-up' ? ` max ${job.maxCatchUp}` : ''}, ${job.waitForCompletion ? 'wait' : 'overlap'}, ${job.style}${job.failRate ? ', fails' : ''})`).join(' ');
  const summary = `seed ${seed}: ${slots} instances, lease ${timings.leaseDuration / 1000}/${timings.renewDeadline / 1000}/${timings.retryPeriod / 1000} s, ` +
    `record ${record}, ${jobText}; ${graceful ? 'graceful ' : ''}faults over ${(faultPhase / 1000).toFixed(1)} s: ` +
    `${Object.entries(faults).map(([name, count]) => `${name}×${count}`).join(', ') || 'none'}; ` +
    `${ledger.terms.size} terms, ${ledger.runs.length} runs, ${repeats} ticks run more than once (${doneTwice} done twice)`;
  return {
    seed, violations, freshStartLosses, trace: world.trace, summary, simulated: world.now / 1000, terms: ledger.terms.size, runs: ledger.runs.length, repeats, doneTwice, graceful,
  };
}
