// The invariants of leader-only scheduled jobs, checked over the ledger of one simulated run
// (schedule-world.ts). Ticks are identified by their scheduled instant (wall ms); times are
// simulated ms (one true time for every process). A run's *effects* are the instants its handler
// acted: its start, then each step it took after its own check (if its style checks), then its
// completion. A "term" is one process's term (process key + fencing token).
//
// A term ended *gracefully* when its work settled within settleTimeout and its release write
// (holder "", same fencing token) landed at the first try; any other end (crash, exit,
// renewDeadline without a release, work past settleTimeout, a release that failed before any
// release of the term landed — even if a later stop() released the lease, without the record) is
// a *loss*. A release that landed and only lost its answer is a release: what reached the store
// counts. Terms are the Lease's: an acquire that landed after its process gave it up (stop() in
// that instant aborts the request) is a term too, one that no work ran in and no release ended. A tick is *done* when a run of it settled as completed (the handler resolved) or failed
// (the handler threw its own error while the term was valid): the scheduler never runs a done tick
// again on purpose. A tick is *reported skipped* when any live scheduler emitted it in a
// 'ticks-skipped' event. A tick is *open at the end* when the last term that handled it (ran it,
// or queued it to catch up) is the last term of the whole run: nobody came after to take it over.
// The *range* of a job is from its first to its last done tick.
//
//  1. No overlap: the effects of runs of different terms never interleave: the spans
//     [first effect, last effect] of two runs of different terms are disjoint. (A crashed process
//     has no effects after its crash instant; a paused one none while paused. The world keeps the
//     README's assumption that work stops "well within leaseDuration − renewDeadline" of its term's
//     end: a run that ignores the signal lasts at most 0.7 of that, and is never paused.)
//  2. No run starts when its term is invalid: the handler itself observes term.isValid() at its start.
//  3. Graceful faults only (no term of the run had a loss): every tick of the range is done exactly
//     once — under both policies (README: "Graceful handovers are exactly-once … under both
//     policies … the successor runs exactly the ticks that are not settled: those that fell due while
//     nobody led, and a run the handover cancelled"). The only exceptions are skips by design: a tick
//     due while a run was in flight under waitForCompletion ('overlap'), and under 'catch-up' one
//     older than the latest maxCatchUp missed ones. A skipped tick is never also done.
//  4. 'catch-up': no tick is lost — every tick of the range is done, reported skipped (older than
//     maxCatchUp, or due while a run was in flight under waitForCompletion), or open at the end;
//     and a tick runs again only in a later term and only after runs of it that were cancelled,
//     in flight when their process crashed, or done but not recorded (no 'tick-recorded' event)
//     in a term that ended with a loss.
//  5. 'skip': no tick is done twice, and a tick runs again only after runs of it that were
//     cancelled (a graceful handover to a successor whose wall clock had not reached the tick yet):
//     never after a run that was done, nor after one in flight at a crash. (Read from the code: a
//     successor runs only ticks after max(record's watermark, its own wall clock), so a crash can
//     never repeat a tick under 'skip', given wall clocks closer than a handover's gap.)
//  6. Accounting: every tick of the range that is not done is reported skipped or open at the end
//     (under 'catch-up' a failure of this is reported as 4, a lost tick). A term that finds no
//     record of a job starts it afresh (documented): ticks lost that way are counted apart as 6F,
//     not failures (SCHED_STRICT=1 makes them failures), but only while no record of the job had
//     ever landed on the Lease before that term began — after that, finding none is a failure.
//  7. A run's outcome as the scheduler reports it ('run-settled') is the handler's own: resolved →
//     'completed', threw its own error while valid → 'failed', aborted by the term's end → 'cancelled'.
//  8. The record is sound: every record written to the Lease claims settled only ticks that were
//     done or reported skipped before the write landed (or that fell due no later than a term that
//     found no record began: those start afresh); and a 'tick-recorded' event comes only after a
//     write of that term that carries the tick landed.
//  9. Each term does what the record it started from says: it catches up exactly the latest
//     maxCatchUp ticks that fell due after the record's watermark up to its start (not in `also`) —
//     under 'catch-up', and under 'skip' too when it took over from a graceful handover (the last
//     write before its own was its predecessor's release, and that predecessor ended gracefully:
//     README, "Graceful handovers are exactly-once … under both policies") — and reports the older
//     ones as skipped ('skip' after a loss: all of them); it runs no tick the record covers, runs
//     scheduled ticks only after max(watermark, its start), and none before it fell due on its own
//     wall clock.
import type { MissedTickPolicy, RunOutcome } from '../../libs/leader-election/src/schedule/leader-scheduler.ts';
import type { JobRecord } from '../../libs/leader-election/src/schedule/schedule-record.ts';
import type { Timetable } from '../../libs/leader-election/src/schedule/timetable.ts';

/** How a handler decides whether it may act. */
export type HandlerStyle =
  /** (a) honours the signal: sleeps that reject when it aborts, and `signal.aborted` read before each step */
  | 'signal'
  /** (b) `term.isValid()` between steps, throwing when false */
  | 'valid'
  /** (c) ignores the signal: finishes its work anyway */
  | 'ignore';

export interface SimJob {
  name: string;
  timetable: Timetable;
  period: number;
  policy: MissedTickPolicy;
  maxCatchUp: number;
  waitForCompletion: boolean;
  style: HandlerStyle;
  failRate: number;
}

export interface TermRecord {
  key: string;
  proc: string;
  token: number;
  beganAt: number;
  /** The process's wall clock when the term began (when its ledgers opened). */
  beganWall: number;
  /** Each job's record as the term found it; undefined: none (the job starts afresh). */
  start: Map<string, JobRecord | undefined>;
  endedAt?: number;
  reason?: string;
  /** Its release write landed. */
  released: boolean;
  crashed: boolean;
  /** Its work outlived settleTimeout (the elector said so): the lease was left to expire. */
  unsettled: boolean;
  /** A release of it failed (the elector's 'error' event) before any release of it landed: its last record went with it, even if stop() released the lease later. */
  releaseFailed: boolean;
}

export type HandlerOutcome = 'completed' | 'failed' | 'aborted' | 'in-flight' | 'crashed';

export interface RunRecord {
  seq: number;
  proc: string;
  term: string;
  token: number;
  job: string;
  tick: number;
  kind: string;
  startedAt: number;
  startedWall: number;
  effects: number[];
  endedAt?: number;
  outcome: HandlerOutcome;
  validAtStart: boolean;
  scheduled?: RunOutcome;
  /** A 'tick-recorded' event came for it, and when. */
  recordedAt?: number;
}

export interface SkipRecord { proc: string; term: string | undefined; job: string; reason: 'missed' | 'late' | 'overlap'; ticks: number[]; at: number }
export interface CatchUpRecord { proc: string; term: string | undefined; job: string; reason: 'missed' | 'late'; ticks: number[]; at: number }
export interface WriteRecord { proc: string; term: string; at: number; release: boolean; records: Map<string, JobRecord> | undefined }

export class ScheduleLedger {
  readonly terms = new Map<string, TermRecord>();
  readonly runs: RunRecord[] = [];
  readonly skips: SkipRecord[] = [];
  readonly catchUps: CatchUpRecord[] = [];
  readonly writes: WriteRecord[] = [];
  /** Faults other than stepDown and stop happened (crash, outage, pause, exit). */
  lossyFaults = 0;
  /** Every term an acquire write put on the Lease ("process/token"), whether or not its process ever began it. */
  readonly acquired = new Set<string>();
  /** Errors of the harness itself (stop() that never finished, events that threw). */
  readonly harness: string[] = [];
}

export const fmtTick = (tick: number): string => new Date(tick).toISOString().slice(11, 23);

/** A job's ticks, computed once (cron's nextAfter goes through luxon): ticks(after, until) is (after, until]. */
export class TickGrid {
  private grid: number[] = [];
  private from = Infinity;

  constructor(private readonly timetable: Timetable) {}

  /** (after, until], looking back at most a day. */
  ticks(after: number, until: number): number[] {
    after = Math.max(after, until - 86_400_000);
    if (!(until > after)) return [];
    if (after < this.from) {
      this.from = after;
      this.grid = [];
    }
    let last = this.grid.at(-1) ?? this.from;
    while (last < until) {
      const next = this.timetable.nextAfter(new Date(last));
      if (!next) break;
      last = next.getTime();
      this.grid.push(last);
    }
    return this.grid.slice(upperBound(this.grid, after), upperBound(this.grid, until));
  }
}

/** The index of the first element greater than `value` in a sorted array. */
function upperBound(sorted: number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid]! <= value) low = mid + 1;
    else high = mid;
  }
  return low;
}

const isDone = (run: RunRecord): boolean => run.outcome === 'completed' || run.outcome === 'failed';
const covers = (record: JobRecord, tick: number): boolean => tick <= record.done.getTime() || record.also.some((at) => at.getTime() === tick);
const sameList = (a: number[], b: number[]): boolean => a.length === b.length && a.every((tick, i) => tick === b[i]);
const list = (ticks: number[]): string => ticks.length === 0 ? 'none' : ticks.length > 6
  ? `${ticks.length} ticks ${fmtTick(ticks[0]!)} … ${fmtTick(ticks.at(-1)!)}` : ticks.map(fmtTick).join(', ');

/** Simulated time as the trace shows it. */
const secs = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;

const describeRun = (run: RunRecord): string =>
  `${run.proc}/${run.token} ${run.job}@${fmtTick(run.tick)} (${run.kind}, ${run.outcome}, ${secs(run.startedAt)}–${run.endedAt === undefined ? '?' : secs(run.endedAt)})`;

/** The invariants above, over one finished run. Each violation starts with its invariant's number. */
export function checkSchedule(ledger: ScheduleLedger, jobs: SimJob[]): string[] {
  const grids = new Map(jobs.map((job) => [job.name, new TickGrid(job.timetable)]));
  const ticksIn = (job: SimJob, after: number, until: number): number[] => grids.get(job.name)!.ticks(after, until);
  const violations: string[] = ledger.harness.map((problem) => `[0] ${problem}`);
  const terms = [...ledger.terms.values()].sort((a, b) => a.beganAt - b.beganAt);
  const lastTerm = terms.at(-1);
  const lossy = (key: string): boolean => {
    const term = ledger.terms.get(key);
    return !term || !term.released || term.unsettled || term.releaseFailed;
  };
  const anyLoss = ledger.lossyFaults > 0 || [...ledger.acquired, ...ledger.terms.keys()].some((key) => lossy(key));

  // 1. effects of runs of different terms never interleave
  const spans = ledger.runs.filter((run) => run.effects.length > 0)
    .map((run) => ({ run, from: run.effects[0]!, to: run.effects.at(-1)! }))
    .sort((a, b) => a.from - b.from);
  for (let i = 0; i < spans.length; i++) {
    for (let j = i + 1; j < spans.length && spans[j]!.from <= spans[i]!.to; j++) {
      if (spans[i]!.run.term === spans[j]!.run.term) continue;
      violations.push(`[1] runs of two terms overlap: ${describeRun(spans[i]!.run)} acted until ${secs(spans[i]!.to)}, ` +
        `${describeRun(spans[j]!.run)} from ${secs(spans[j]!.from)}`);
    }
  }

  // 2. no run starts in an invalid term; 7. the scheduler reports the handler's outcome
  const expected: Partial<Record<HandlerOutcome, RunOutcome>> = { completed: 'completed', failed: 'failed', aborted: 'cancelled' };
  for (const run of ledger.runs) {
    if (!run.validAtStart) violations.push(`[2] a run started while its term was invalid: ${describeRun(run)}`);
    const want = expected[run.outcome];
    if (want && run.scheduled !== want) violations.push(`[7] the scheduler reported ${run.scheduled ?? 'nothing'} for ${describeRun(run)}`);
  }

  // 8. every record written claims only settled ticks; a 'tick-recorded' follows a write that carries it
  const doneAt = new Map<string, Map<number, number>>();
  const skippedAt = new Map<string, Map<number, number>>();
  for (const job of jobs) {
    doneAt.set(job.name, new Map());
    skippedAt.set(job.name, new Map());
  }
  for (const run of ledger.runs) {
    if (!isDone(run) || run.endedAt === undefined) continue;
    const map = doneAt.get(run.job)!;
    map.set(run.tick, Math.min(map.get(run.tick) ?? Infinity, run.endedAt));
  }
  for (const skip of ledger.skips) {
    const map = skippedAt.get(skip.job)!;
    for (const tick of skip.ticks) map.set(tick, Math.min(map.get(tick) ?? Infinity, skip.at));
  }
  const freshStarts = (job: string, before: number): number => Math.max(-Infinity,
    ...terms.filter((term) => term.beganAt <= before && term.start.get(job) === undefined).map((term) => term.beganWall));
  // A record found sound stays sound: ticks only ever become settled. Each distinct one is checked once.
  const checked = new Set<string>();
  for (const write of ledger.writes) {
    if (!write.records) continue;
    for (const job of jobs) {
      const record = write.records.get(job.name);
      if (!record) continue;
      const key = `${job.name} ${record.done.getTime()} ${record.also.map((tick) => tick.getTime()).join(',')}`;
      if (checked.has(key)) continue;
      checked.add(key);
      const floor = freshStarts(job.name, write.at);
      const claimed = [...ticksIn(job, floor, record.done.getTime()), ...record.also.map((tick) => tick.getTime()).filter((tick) => tick > floor)];
      const unsettled = claimed.filter((tick) => !((doneAt.get(job.name)!.get(tick) ?? Infinity) <= write.at || (skippedAt.get(job.name)!.get(tick) ?? Infinity) <= write.at));
      if (unsettled.length > 0) {
        violations.push(`[8] ${write.release ? 'the release' : 'a write'} of ${write.term} at ${secs(write.at)} records ${job.name} ticks as settled that were neither done ` +
          `nor reported skipped: ${list(unsettled)} (record: done ${fmtTick(record.done.getTime())}, also ${list(record.also.map((tick) => tick.getTime()))})`);
      }
    }
  }
  for (const run of ledger.runs) {
    if (run.recordedAt === undefined) continue;
    const carried = ledger.writes.some((write) => write.term === run.term && write.at <= run.recordedAt! && write.records?.get(run.job) && covers(write.records.get(run.job)!, run.tick));
    if (!carried) violations.push(`[8] 'tick-recorded' at ${secs(run.recordedAt)} for ${describeRun(run)}, but no write of its term carrying it landed`);
  }

  // 9. each term does what its start record says
  /** The last write before the term's own first one (its acquire) was its predecessor's release, after that predecessor's work settled. */
  const handedOver = (term: TermRecord): boolean => {
    const own = ledger.writes.findIndex((write) => write.term === term.key);
    const before = own > 0 ? ledger.writes[own - 1] : undefined;
    const previous = terms.filter((other) => other.beganAt < term.beganAt).at(-1);
    return before !== undefined && before.release && before.term === previous?.key && !lossy(previous.key);
  };
  for (const term of terms) {
    for (const job of jobs) {
      const record = term.start.get(job.name);
      const runs = ledger.runs.filter((run) => run.term === term.key && run.job === job.name);
      const caught = ledger.catchUps.filter((event) => event.term === term.key && event.job === job.name && event.reason === 'missed').flatMap((event) => event.ticks);
      const caughtLate = ledger.catchUps.filter((event) => event.term === term.key && event.job === job.name && event.reason === 'late').flatMap((event) => event.ticks);
      const missedSkips = ledger.skips.filter((skip) => skip.term === term.key && skip.job === job.name && skip.reason === 'missed').flatMap((skip) => skip.ticks);
      const early = runs.filter((run) => run.startedWall < run.tick);
      if (early.length > 0) violations.push(`[9] ${term.key} ran ${job.name} ticks before they fell due on its wall clock: ${early.map(describeRun).join('; ')}`);
      if (!record) {
        const wrong = runs.filter((run) => !(run.kind === 'scheduled' || caughtLate.includes(run.tick)) || run.tick <= term.beganWall);
        if (wrong.length > 0) violations.push(`[9] ${term.key} found no record of ${job.name} yet ran ticks from before its start: ${wrong.map(describeRun).join('; ')}`);
        if (caught.length + missedSkips.length > 0) violations.push(`[9] ${term.key} found no record of ${job.name} yet caught up or skipped ${list([...caught, ...missedSkips])}`);
        continue;
      }
      // Counting a job's missed ticks yields first: a term stopped within that instant never opened the job (its record passes on unchanged).
      if (runs.length + caught.length + caughtLate.length + missedSkips.length === 0 && term.endedAt !== undefined && term.endedAt - term.beganAt < 50) continue;
      const missed = ticksIn(job, record.done.getTime(), term.beganWall).filter((tick) => !covers(record, tick));
      const catchUp = (job.policy === 'catch-up' || handedOver(term)) && missed.length <= 10_000 ? missed.slice(Math.max(0, missed.length - job.maxCatchUp)) : [];
      const dropped = missed.slice(0, missed.length - catchUp.length);
      if (!sameList(caught, catchUp)) violations.push(`[9] ${term.key} caught up ${list(caught)} of ${job.name}, but its start record (done ${fmtTick(record.done.getTime())}) calls for ${list(catchUp)}`);
      if (!sameList(missedSkips, dropped)) violations.push(`[9] ${term.key} reported ${list(missedSkips)} of ${job.name} skipped as missed, but its start record calls for ${list(dropped)}`);
      const floor = Math.max(record.done.getTime(), term.beganWall);
      for (const run of runs) {
        const ok = run.kind === 'catch-up' ? catchUp.includes(run.tick) || (caughtLate.includes(run.tick) && run.tick > floor) : run.tick > floor && !covers(record, run.tick);
        if (!ok) violations.push(`[9] ${term.key} ran ${describeRun(run)} against its start record (done ${fmtTick(record.done.getTime())}, also ${list(record.also.map((t) => t.getTime()))}, start ${fmtTick(term.beganWall)})`);
      }
    }
  }

  // 3, 4, 5, 6: every tick accounted for, repeats only where allowed
  for (const job of jobs) {
    const runs = ledger.runs.filter((run) => run.job === job.name);
    const byTick = new Map<number, RunRecord[]>();
    for (const run of runs) {
      if (!byTick.has(run.tick)) byTick.set(run.tick, []);
      byTick.get(run.tick)!.push(run);
    }
    for (const [tick, executions] of byTick) {
      executions.sort((a, b) => a.startedAt - b.startedAt || a.seq - b.seq);
      const done = executions.filter(isDone);
      if (!anyLoss && done.length > 1) violations.push(`[3] ${job.name}@${fmtTick(tick)} was done ${done.length} times with graceful faults only: ${done.map(describeRun).join('; ')}`);
      if (job.policy === 'skip' && done.length > 1) violations.push(`[5] ${job.name}@${fmtTick(tick)} was done ${done.length} times under 'skip': ${done.map(describeRun).join('; ')}`);
      for (let i = 0; i < executions.length - 1; i++) {
        const earlier = executions[i]!;
        const later = executions.slice(i + 1);
        if (later.some((run) => run.term === earlier.term)) {
          violations.push(`[${job.policy === 'skip' ? 5 : 4}] ${earlier.term} ran ${job.name}@${fmtTick(tick)} twice: ${executions.map(describeRun).join('; ')}`);
          continue;
        }
        const excused = job.policy === 'skip'
          ? earlier.outcome === 'aborted'
          : earlier.outcome === 'aborted' || earlier.outcome === 'crashed' || (isDone(earlier) && earlier.recordedAt === undefined && lossy(earlier.term));
        if (!excused) {
          violations.push(`[${job.policy === 'skip' ? 5 : 4}] ${job.name}@${fmtTick(tick)} ran again after ${describeRun(earlier)}` +
            `${isDone(earlier) ? (earlier.recordedAt !== undefined ? ', which was recorded' : `, whose term ${lossy(earlier.term) ? 'had a loss' : 'ended gracefully'}`) : ''}: ` +
            later.map(describeRun).join('; '));
        }
      }
    }
    const doneTicks = [...byTick].filter(([, executions]) => executions.some(isDone)).map(([tick]) => tick).sort((a, b) => a - b);
    if (doneTicks.length === 0) continue;
    const skipped = skippedAt.get(job.name)!;
    /** The last term that ran the tick or queued it to catch up. */
    const lastHandler = (tick: number): TermRecord | undefined => {
      const handlers = [
        ...(byTick.get(tick) ?? []).map((run) => run.term),
        ...ledger.catchUps.filter((event) => event.job === job.name && event.ticks.includes(tick)).map((event) => event.term),
      ].map((key) => key === undefined ? undefined : ledger.terms.get(key)).filter((term): term is TermRecord => term !== undefined);
      return handlers.sort((a, b) => b.beganAt - a.beganAt)[0];
    };
    for (const tick of ticksIn(job, doneTicks[0]! - 1, doneTicks.at(-1)!)) {
      const executions = byTick.get(tick) ?? [];
      const doneCount = executions.filter(isDone).length;
      if (!anyLoss && doneCount === 1 && skipped.has(tick)) violations.push(`[3] ${job.name}@${fmtTick(tick)} was both done and reported skipped with graceful faults only`);
      if (!anyLoss && doneCount === 0 && skipped.has(tick)) {
        const reasons = ledger.skips.filter((skip) => skip.job === job.name && skip.ticks.includes(tick));
        // Older than the latest maxCatchUp missed ticks, which the same term caught up.
        const beyondMaxCatchUp = (skip: SkipRecord): boolean => {
          // The catch-up decided together with this skip (same term, reason and instant).
          const caught = ledger.catchUps.filter((event) => event.term === skip.term && event.job === job.name && event.reason === skip.reason && event.at === skip.at).flatMap((event) => event.ticks);
          return caught.length === job.maxCatchUp && caught.every((at) => at > tick);
        };
        // Due together with a later tick within a term (a late timer): skipped under 'skip', as cron does.
        const byDesign = reasons.some((skip) => skip.reason === 'overlap' || (skip.reason === 'late' && job.policy === 'skip') || beyondMaxCatchUp(skip));
        if (!byDesign) {
          violations.push(`[3] ${job.name}@${fmtTick(tick)} was never done with graceful faults only: ${reasons.map((skip) => `${skip.term} skipped it (${skip.reason}) at ${secs(skip.at)}`).join('; ')}` +
            `${executions.length ? ` after ${executions.map(describeRun).join('; ')}` : ', though it fell due while nobody led'}`);
        }
      }
      if (doneCount > 0 || skipped.has(tick)) continue;
      const handler = lastHandler(tick);
      if (handler && handler === lastTerm) continue; // open at the end
      const fresh = terms.find((term) => term.start.get(job.name) === undefined && term.beganWall >= tick && term.beganAt > (handler?.beganAt ?? -Infinity));
      const what = `${job.name}@${fmtTick(tick)} was lost: never done, never reported skipped` +
        (handler ? `; last handled by ${handler.key} (${executions.map(describeRun).join('; ') || 'queued to catch up'})` : '; never run');
      const everRecorded = fresh && ledger.writes.some((write) => write.at <= fresh.beganAt && write.records?.has(job.name));
      if (fresh && !everRecorded) violations.push(`[6F] ${what}; ${fresh.key} found no record of ${job.name} at ${secs(fresh.beganAt)} (none had landed yet) and started afresh`);
      else if (fresh) violations.push(`[6] ${what}; ${fresh.key} found no record of ${job.name} at ${secs(fresh.beganAt)}, though one had landed before`);
      else if (!anyLoss) violations.push(`[3] ${what} (graceful faults only)`);
      else violations.push(`[${job.policy === 'catch-up' ? 4 : 6}] ${what}`);
    }
  }
  return violations;
}
