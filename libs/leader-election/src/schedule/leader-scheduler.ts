/**
 * Leader-only scheduled jobs of one election: they run only within this instance's terms, and the
 * Lease records which ticks are settled, so a successor neither repeats nor loses them.
 *
 * Guarantees, given the elector's (terms of different instances never overlap):
 * - A tick runs only while a term is valid: no run starts after its term's signal aborted, and the
 *   term's work (every run) settles before the lease is released.
 * - After each run settles, the job's record (its watermark, below which every tick is settled, and
 *   the settled ticks above it) is staged on the term and written at once as an early renewal
 *   ('flush'), or with the next renewal. A job without a record is recorded as its first term
 *   begins. The release carries the final record, staged once every run has settled and marked
 *   with the term's fencing token ('handover'), so a graceful handover is exactly-once under both
 *   policies: a successor whose token is the next one knows no tick is in flight and runs exactly
 *   the ticks that were not settled. Catch-up ticks are open before any record is staged, so a
 *   watermark never passes a tick still to run.
 * - A successor catches up (or, under 'skip', drops and logs) the ticks that fell due since the
 *   record. After a crash, a tick whose run was in flight, or settled but not yet written, is run
 *   again under 'catch-up' (at-least-once) and dropped under 'skip' (at-most-once): a run knows its
 *   tick's identity and the fencing token so it can make the repeat harmless.
 * - A run that resolves has completed, one that rejects while the term lasts has failed (neither
 *   is run again); one that rejects after the term's signal aborted was cancelled: the tick stays
 *   unsettled, for the successor.
 */
import { Subject, type Observable } from 'rxjs';
import type { Clock } from '../core/clock.js';
import type { LeaderElector } from '../core/leader-elector.js';
import type { ElectorLogger } from '../core/options.js';
import { sleep } from '../core/sleep.js';
import type { Term } from '../core/term.js';
import { runContextStorage, type RunContext, type Tick, type TickKind } from './run-context.js';
import { formatScheduleRecord, parseScheduleRecord, type JobRecord } from './schedule-record.js';
import type { Timetable } from './timetable.js';

/** What a successor does with ticks that fell due while nobody ran them. */
export type MissedTickPolicy = 'catch-up' | 'skip';

export interface ScheduledJob {
  /** Stable across replicas and releases: it keys the job's record in the Lease. */
  readonly name: string;
  /** Cron and interval jobs. */
  readonly timetable?: Timetable;
  /** Timeout jobs: once per term, this many ms after it began. Not recorded, never caught up. */
  readonly delay?: number;
  /** As @nestjs/schedule's: a tick that falls due while a run is in flight is skipped. */
  readonly waitForCompletion: boolean;
  readonly missed: MissedTickPolicy;
  /** The most missed ticks one term catches up: the latest ones; older ones are skipped. */
  readonly maxCatchUp: number;
  run(context: RunContext): unknown;
}

/**
 * Why ticks were not run: 'missed' before the term, or 'late' (due together within it), under 'skip'
 * or past maxCatchUp; 'overlap': due while a run was in flight under waitForCompletion.
 */
export type SkipReason = 'missed' | 'late' | 'overlap';

export type RunOutcome = 'completed' | 'failed' | 'cancelled';

export type ScheduleEvent =
  | { type: 'run-started'; tick: Tick; fencingToken: number }
  | { type: 'run-settled'; tick: Tick; fencingToken: number; outcome: RunOutcome; durationMs: number; error?: Error }
  /** Ticks not run on purpose: see SkipReason. */
  | { type: 'ticks-skipped'; job: string; reason: SkipReason; ticks: Date[] }
  /** Ticks run late, in order: missed before the term, or due together within it ('late'). */
  | { type: 'ticks-caught-up'; job: string; reason: 'missed' | 'late'; ticks: Date[] }
  /** A write that carries the tick as settled reached the Lease. */
  | { type: 'tick-recorded'; tick: Tick; fencingToken: number };

export interface LeaderSchedulerOptions {
  /** The Lease annotation holding the record. */
  annotationKey: string;
  /** 'on-completion': write right after each run settles; 'on-renewal': with the next renewal. */
  record: 'on-completion' | 'on-renewal';
}

/**
 * More missed ticks than this are not counted (a cron tick costs up to ~0.7 ms to compute): all are
 * skipped. Catching up is for a handover's gap or a short outage, not for days without a leader.
 */
const MAX_MISSED_TICKS = 1_000;
/** Counting missed ticks yields to the event loop this often. */
const TICKS_PER_YIELD = 32;
/** A record this far ahead of the wall clock is not waited for (more than any skew between replicas). */
const FUTURE_TOLERANCE_MS = 60_000;

/**
 * At most this many settled ticks above a job's watermark are recorded (about 27 bytes each). A run
 * stuck for longer would otherwise grow the record without bound, past what the apiserver takes.
 */
const MAX_SETTLED_ABOVE = 100;

/** A job's ticks in one term: everything up to `cursor` was handled (settled, or open until it settles). */
class Ledger {
  readonly open = new Set<number>();
  readonly settled = new Set<number>();
  /** The record counts every tick up to here as settled, open or not (runs stuck past MAX_SETTLED_ABOVE later ticks). */
  private floor = -Infinity;

  constructor(public cursor: number, also: readonly Date[], private readonly onGivenUp: (ticks: number[]) => void) {
    for (const tick of also) this.settled.add(tick.getTime());
  }

  handle(at: number): void {
    this.open.add(at);
    this.cursor = Math.max(this.cursor, at);
  }

  settle(at: number): void {
    this.open.delete(at);
    this.settled.add(at);
    this.cursor = Math.max(this.cursor, at);
  }

  /** Every tick up to the watermark is settled; `also` are the settled ones past it. */
  record(): JobRecord {
    let watermark = this.open.size > 0 ? Math.max(this.floor, Math.min(...this.open) - 1) : this.cursor;
    let also = [...this.settled].filter((tick) => tick > watermark).sort((a, b) => a - b);
    if (also.length > MAX_SETTLED_ABOVE) {
      const floor = also[also.length - MAX_SETTLED_ABOVE - 1];
      const givenUp = [...this.open].filter((tick) => tick > watermark && tick <= floor).sort((a, b) => a - b);
      this.floor = watermark = floor;
      also = also.slice(-MAX_SETTLED_ABOVE);
      if (givenUp.length > 0) this.onGivenUp(givenUp);
    }
    for (const tick of this.settled) if (tick <= watermark) this.settled.delete(tick);
    return { done: new Date(watermark), also: also.map((tick) => new Date(tick)) };
  }
}

interface ActiveTerm {
  term: Term;
  ledgers: Map<string, Ledger>;
  /** Records of jobs not registered here (another version of the app, a run-time job not added yet): kept as they are. */
  carried: Map<string, JobRecord>;
  loops: Map<string, Promise<void>>;
  stops: Map<string, AbortController>;
  /** Jobs being removed (deleteJob), until their runs in flight have settled. */
  removals: Map<string, Promise<void>>;
  /** The record is the final one of the term right before this one: its unsettled ticks were cancelled, none is in flight. */
  handedOver: boolean;
}

export class LeaderScheduler {
  private readonly jobs = new Map<string, ScheduledJob>();
  private active: ActiveTerm | undefined;
  private readonly eventSubject = new Subject<ScheduleEvent>();

  constructor(
    readonly elector: LeaderElector,
    private readonly clock: Clock,
    private readonly options: LeaderSchedulerOptions,
    private readonly logger: ElectorLogger,
  ) {}

  get events$(): Observable<ScheduleEvent> {
    return this.eventSubject.asObservable();
  }

  get jobNames(): string[] {
    return [...this.jobs.keys()];
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  /**
   * Adds a job; during a term it starts at once, catching up from the record like any other. A job
   * added again while its removal is still settling starts once that has settled, from where it left off.
   */
  add(job: ScheduledJob): void {
    if (this.jobs.has(job.name)) throw new Error(`a leader-only job named "${job.name}" already exists in election ${this.elector.options.leaseName}`);
    this.jobs.set(job.name, job);
    const active = this.active;
    if (!active || !active.term.isValid()) return;
    const removal = active.removals.get(job.name);
    if (!removal) this.startJob(active, job);
    else void removal.then(() => {
      if (this.jobs.get(job.name) === job && this.active === active && active.term.isValid()) this.startJob(active, job);
    });
  }

  /** Removes a job: no tick starts any more; resolves once its runs in flight have settled. Throws at once for an unknown name. */
  remove(name: string): Promise<void> {
    if (!this.jobs.delete(name)) throw new Error(`no leader-only job named "${name}" in election ${this.elector.options.leaseName}`);
    const active = this.active;
    if (!active) return Promise.resolve();
    const removal = this.removeFromTerm(active, name, active.removals.get(name));
    active.removals.set(name, removal);
    void removal.finally(() => {
      if (active.removals.get(name) === removal) active.removals.delete(name);
    });
    return removal;
  }

  private async removeFromTerm(active: ActiveTerm, name: string, earlier: Promise<void> | undefined): Promise<void> {
    await earlier;
    active.stops.get(name)?.abort();
    await active.loops.get(name);
    const ledger = active.ledgers.get(name);
    active.ledgers.delete(name);
    // Added again meanwhile: it goes on from this record (or from the carried one, if it never opened
    // a ledger: removed before it counted its missed ticks, or an earlier removal took it). Otherwise the job leaves the record.
    if (!this.jobs.has(name)) active.carried.delete(name);
    else if (ledger) active.carried.set(name, ledger.record());
    this.stage(active);
  }

  /** The work of one term: every job runs until the term ends, then every run settles. */
  async runTerm(term: Term): Promise<void> {
    const annotation = this.elector.annotationsAtStart(term)[this.options.annotationKey];
    const { jobs: records, problems, handover } = parseScheduleRecord(annotation);
    if (problems.length > 0) {
      this.logger.warn(`the schedule record in annotation ${this.options.annotationKey} of ${this.elector.options.leaseName} ` +
        `cannot be read in full (${problems.join('; ')}): those jobs start afresh, without catching up`);
    }
    // A graceful handover (the previous term's last record, and that term was the one right before this): exactly-once under both policies.
    const handedOver = handover !== undefined && handover === term.fencingToken - 1;
    const active: ActiveTerm = { term, ledgers: new Map(), carried: records, loops: new Map(), stops: new Map(), removals: new Map(), handedOver };
    this.active = active;
    try {
      for (const job of this.jobs.values()) this.startJob(active, job);
      await new Promise<void>((resolve) => {
        if (term.signal.aborted) resolve();
        else term.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      // Jobs added or removed while waiting are in the maps too.
      while (active.loops.size + active.removals.size > 0) await Promise.all([...active.loops.values(), ...active.removals.values()]);
      // Every run has settled: the last record, which only the release (or, without one, the last write) carries.
      this.stage(active, true);
    } finally {
      if (this.active === active) this.active = undefined;
    }
  }

  private startJob(active: ActiveTerm, job: ScheduledJob): void {
    const stop = new AbortController();
    const onTermEnd = (): void => stop.abort();
    active.term.signal.addEventListener('abort', onTermEnd, { once: true });
    active.stops.set(job.name, stop);
    const loop: Promise<void> = (job.delay !== undefined ? this.runTimeout(active, job, stop.signal) : this.runTimetable(active, job, stop.signal))
      .catch((error: unknown) => this.logger.error(`leader-only job ${job.name} stopped: ${String((error as Error)?.stack ?? error)}`))
      .finally(() => {
        active.term.signal.removeEventListener('abort', onTermEnd);
        // Only its own entries: the name may belong to a job added again since.
        if (active.loops.get(job.name) === loop) active.loops.delete(job.name);
        if (active.stops.get(job.name) === stop) active.stops.delete(job.name);
      });
    active.loops.set(job.name, loop);
  }

  private async runTimeout(active: ActiveTerm, job: ScheduledJob, stop: AbortSignal): Promise<void> {
    const at = new Date(active.term.acquiredAt.getTime() + job.delay!);
    if (await this.waitUntil(at, stop)) await this.runTick(active, job, undefined, at.getTime(), 'scheduled');
  }

  private async runTimetable(active: ActiveTerm, job: ScheduledJob, stop: AbortSignal): Promise<void> {
    const timetable = job.timetable!;
    const ledger = await this.openLedger(active, job, stop);
    if (!ledger || !(await this.catchUp(active, job, ledger, [...ledger.open].sort((a, b) => a - b), stop))) return;
    const running = new Set<Promise<void>>();
    try {
      for (;;) {
        let next = timetable.nextAfter(new Date(ledger.cursor));
        while (next && ledger.settled.has(next.getTime())) next = timetable.nextAfter(next);
        if (!next || !(await this.waitUntil(next, stop))) return;
        // A late timer (a blocked event loop, a pause) or a wall-clock step can make several ticks due at
        // once: the latest runs as scheduled, the others are missed, under the job's policy.
        const now = this.clock.wallNow().getTime();
        const due = await this.dueTicks(timetable, ledger, now);
        if (stop.aborted) return;
        if (due.length > MAX_MISSED_TICKS) {
          this.skip(active, job, ledger, due, 'late', now);
          continue;
        }
        const at = due.at(-1) ?? next.getTime();
        if (due.length > 1 && !(await this.catchUp(active, job, ledger, this.triage(active, job, ledger, due.slice(0, -1), 'late', now), stop))) return;
        if (!job.waitForCompletion) {
          const run = this.runTick(active, job, ledger, at, 'scheduled');
          running.add(run);
          void run.finally(() => running.delete(run));
          continue;
        }
        await this.runTick(active, job, ledger, at, 'scheduled');
        // As cron does under waitForCompletion: ticks that fell due while the run was in flight are skipped.
        const after = this.clock.wallNow().getTime();
        const skipped = await this.dueTicks(timetable, ledger, after);
        if (skipped.length > 0) this.skip(active, job, ledger, skipped, 'overlap', after);
      }
    } finally {
      await Promise.all(running);
    }
  }

  /** Runs opened ticks one after another, at once. false if the job or the term stopped first. */
  private async catchUp(active: ActiveTerm, job: ScheduledJob, ledger: Ledger, ticks: number[], stop: AbortSignal): Promise<boolean> {
    for (const at of ticks) {
      if (stop.aborted || !active.term.isValid()) return false;
      await this.runTick(active, job, ledger, at, 'catch-up');
    }
    return !stop.aborted;
  }

  /**
   * The job's ledger for this term, from the record: missed ticks opened to catch up, or skipped.
   * Counting them (up to MAX_MISSED_TICKS per job) yields to the event loop as it goes, so renewals
   * run meanwhile. undefined if the job stopped first.
   */
  private async openLedger(active: ActiveTerm, job: ScheduledJob, stop: AbortSignal): Promise<Ledger | undefined> {
    const now = this.clock.wallNow().getTime();
    let previous = active.carried.get(job.name);
    if (previous && previous.done.getTime() > now + FUTURE_TOLERANCE_MS) {
      this.logger.warn(`leader-only job ${job.name}: its record says every tick up to ${previous.done.toISOString()} is settled, ` +
        `which is in the future for this replica (now ${new Date(now).toISOString()}): a clock far ahead or an edited record. ` +
        'It goes on from now instead of waiting for that time');
      previous = { done: new Date(now), also: [] };
    }
    const ledger = new Ledger(Math.max(now, previous?.done.getTime() ?? now), previous?.also ?? [], (ticks) => {
      this.logger.warn(`leader-only job ${job.name}: ${describeTicks(ticks)} still running after ${MAX_SETTLED_ABOVE} later ticks settled; ` +
        'the record now counts it as settled, to stay bounded, so a successor after a crash will not run it again');
    });
    if (!previous) {
      this.adopt(active, job.name, ledger);
      this.logger.log(`leader-only job ${job.name} has no record in ${this.elector.options.leaseName}: it starts afresh with the next tick`);
      // Recorded at once, before any run (one write, once per job), whatever the record mode: a successor then
      // catches up from here even if no run of this term ever settles.
      this.stage(active, false, true);
      return ledger;
    }
    ledger.cursor = previous.done.getTime();
    // Each job counts in turns of its own, not all of them in the term's first one.
    await sleep(0, undefined, this.clock);
    const missed = await this.dueTicks(job.timetable!, ledger, now);
    if (stop.aborted) return undefined;
    // Only now does the ledger replace the record it came from: a record staged meanwhile keeps the job's.
    this.adopt(active, job.name, ledger);
    if (missed.length > 0) this.triage(active, job, ledger, missed, 'missed', now);
    ledger.cursor = Math.max(ledger.cursor, now);
    return ledger;
  }

  private adopt(active: ActiveTerm, name: string, ledger: Ledger): void {
    active.carried.delete(name);
    active.ledgers.set(name, ledger);
  }

  /**
   * Ticks that fell due without running: before this term ('missed'), or several at once within it
   * ('late'). Under 'catch-up' the latest maxCatchUp are opened and returned, to run in order; the
   * rest are skipped. A graceful handover catches up under either policy (nothing ran them).
   */
  private triage(active: ActiveTerm, job: ScheduledJob, ledger: Ledger, missed: number[], reason: 'missed' | 'late', now: number): number[] {
    const catchUp = (job.missed === 'catch-up' || (reason === 'missed' && active.handedOver)) && missed.length <= MAX_MISSED_TICKS;
    const runs = catchUp ? missed.slice(missed.length - Math.min(job.maxCatchUp, missed.length)) : [];
    const dropped = missed.slice(0, missed.length - runs.length);
    // Open before the skip below stages the record: its watermark must stay below the ticks still to run.
    for (const at of runs) ledger.handle(at);
    if (dropped.length > 0) this.skip(active, job, ledger, dropped, reason, now);
    if (runs.length > 0) {
      this.logger.log(`leader-only job ${job.name}: catching up ${describeTicks(runs)} that ` + (reason === 'missed'
        ? `fell due before this term (fencing token ${active.term.fencingToken}) and were not recorded as settled`
        : 'fell due together (a late timer: a blocked event loop, a pause, or a wall-clock step)'));
      this.eventSubject.next({ type: 'ticks-caught-up', job: job.name, reason, ticks: runs.map((at) => new Date(at)) });
    }
    return runs;
  }

  /** Ticks after the ledger's cursor, up to `until`, not settled yet (at most MAX_MISSED_TICKS + 1); yields every TICKS_PER_YIELD. */
  private async dueTicks(timetable: Timetable, ledger: Ledger, until: number): Promise<number[]> {
    const due: number[] = [];
    let next = timetable.nextAfter(new Date(ledger.cursor));
    for (let counted = 1; next && next.getTime() <= until && due.length <= MAX_MISSED_TICKS; counted++) {
      if (!ledger.settled.has(next.getTime())) due.push(next.getTime());
      // A cron tick costs up to ~0.7 ms to compute: thousands at once would hold up renewals.
      if (counted % TICKS_PER_YIELD === 0) await sleep(0, undefined, this.clock);
      next = timetable.nextAfter(next);
    }
    return due;
  }

  /** Settles `ticks` as skipped; more than MAX_MISSED_TICKS (counting stopped there) skips every tick up to `now` too. */
  private skip(active: ActiveTerm, job: ScheduledJob, ledger: Ledger, ticks: number[], reason: SkipReason, now: number): void {
    if (ticks.length > MAX_MISSED_TICKS) ledger.cursor = Math.max(ledger.cursor, now);
    for (const at of ticks) ledger.settle(at);
    const policy = job.missed === 'skip' ? "missed: 'skip'"
      : ticks.length > MAX_MISSED_TICKS ? `more than ${MAX_MISSED_TICKS} missed, too many to catch up; later ones too, up to now` : `beyond maxCatchUp ${job.maxCatchUp}`;
    const why = reason === 'missed' ? `fell due before this term (${policy})`
      : reason === 'late' ? `fell due together, with a later one (a late timer: a blocked event loop, a pause, or a wall-clock step; ${policy})`
        : 'fell due while its previous run was in flight (waitForCompletion)';
    this.logger.warn(`leader-only job ${job.name}: skipped ${describeTicks(ticks)}, which ${why}`);
    this.eventSubject.next({ type: 'ticks-skipped', job: job.name, reason, ticks: ticks.map((at) => new Date(at)) });
    this.stage(active);
  }

  /** Sleeps until the wall clock reaches `at` (timers fire early or late, the wall clock jumps). false if stopped first. */
  private async waitUntil(at: Date, stop: AbortSignal): Promise<boolean> {
    for (;;) {
      if (stop.aborted) return false;
      const wait = at.getTime() - this.clock.wallNow().getTime();
      if (wait <= 0) return true;
      await sleep(wait, stop, this.clock);
    }
  }

  private async runTick(active: ActiveTerm, job: ScheduledJob, ledger: Ledger | undefined, at: number, kind: TickKind): Promise<void> {
    const { term } = active;
    // Never after the term's signal aborted: isValid() checks the clock, a pause included.
    if (!term.isValid()) return;
    const scheduledAt = new Date(at);
    const tick: Tick = { job: job.name, scheduledAt, id: `${job.name}@${scheduledAt.toISOString()}`, kind };
    const context: RunContext = { tick, term, signal: term.signal, fencingToken: term.fencingToken };
    ledger?.handle(at);
    this.eventSubject.next({ type: 'run-started', tick, fencingToken: term.fencingToken });
    const startedAt = this.clock.now();
    let outcome: RunOutcome = 'completed';
    let failure: Error | undefined;
    try {
      await runContextStorage.run(context, async () => job.run(context));
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      outcome = term.signal.aborted ? 'cancelled' : 'failed';
    }
    const durationMs = this.clock.now() - startedAt;
    if (outcome === 'failed') this.logger.error(`leader-only job ${job.name} failed on tick ${tick.id}: ${failure!.stack ?? failure!.message}`);
    this.eventSubject.next({ type: 'run-settled', tick, fencingToken: term.fencingToken, outcome, durationMs, ...failure ? { error: failure } : {} });
    if (!ledger || outcome === 'cancelled') return;
    ledger.settle(at);
    this.stage(active).then(
      () => this.eventSubject.next({ type: 'tick-recorded', tick, fencingToken: term.fencingToken }),
      () => { /* the term ended before a write carried it: the successor runs it again under 'catch-up' */ },
    );
  }

  /** Stages the record of every job on the term: carried by the next write, or flushed now. */
  private stage(active: ActiveTerm, final = false, flush = this.options.record === 'on-completion'): Promise<void> {
    const records = new Map(active.carried);
    for (const [name, ledger] of active.ledgers) records.set(name, ledger.record());
    const value = formatScheduleRecord(records, final ? active.term.fencingToken : undefined);
    const written = this.elector.annotate(active.term, { [this.options.annotationKey]: value },
      { flush });
    written.catch(() => {});
    return written;
  }
}

function describeTicks(ticks: number[]): string {
  const first = new Date(ticks[0]).toISOString();
  if (ticks.length === 1) return `tick ${first}`;
  return `${ticks.length} ticks (${first} … ${new Date(ticks.at(-1)!).toISOString()})`;
}
