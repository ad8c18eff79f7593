// The deterministic simulator of leader-only scheduled jobs (schedule-world.ts, invariants in
// schedule-checker.ts): as many seeds as fit in SCHED_BUDGET_MS (default 40 s), or exactly
// SCHED_SEEDS seeds from SCHED_SEED (default 1). A failing seed prints its violations, the command
// that replays it and the end of its trace. Other knobs: SCHED_MAX_FAILURES (stop after that many
// failing seeds, default 1), SCHED_DETAILS (print the full report of that many, default 3),
// SCHED_TRACE (print every seed's whole trace), SCHED_TRACE_LINES (tail length, default 80),
// SCHED_VERBOSE (print every seed's summary), SCHED_STRICT (ticks lost because a term found no
// record of their job yet, 6F in schedule-checker.ts, fail the seed too; otherwise they are counted).
import { expect, it } from 'vitest';
import { simulateSchedule, type ScheduleSimResult } from './schedule-world.ts';

const env = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
const first = env('SCHED_SEED') ?? 1;
const count = env('SCHED_SEEDS');
const budgetMs = env('SCHED_BUDGET_MS') ?? 40_000;
const maxFailures = env('SCHED_MAX_FAILURES') ?? 1;
const details = env('SCHED_DETAILS') ?? 3;
const traceLines = env('SCHED_TRACE_LINES') ?? 80;
const strict = Boolean(process.env.SCHED_STRICT);

/** The invariants a seed broke, e.g. "[4] [8]". */
const labels = (result: ScheduleSimResult): string => [...new Set(result.violations.map((violation) => violation.match(/^\[(\w+)\]/)?.[1] ?? '?'))].map((label) => `[${label}]`).join(' ');

function report(result: ScheduleSimResult): string {
  return [
    result.summary,
    ...result.violations.slice(0, 12).map((violation) => `  ${violation}`),
    ...(result.violations.length > 12 ? [`  … and ${result.violations.length - 12} more`] : []),
    `replay: npm run simulate -- --schedule --seed ${result.seed} --trace`,
    `last ${traceLines} lines of the trace:`,
    ...(traceLines > 0 ? result.trace.slice(-traceLines) : []),
  ].join('\n');
}

it('leader-only scheduled jobs hold every invariant on every seed', { timeout: (count === undefined ? budgetMs : count * 2_000) + 120_000 }, async () => {
  const started = performance.now();
  const failures: ScheduleSimResult[] = [];
  let seeds = 0;
  let simulated = 0;
  let runs = 0;
  let terms = 0;
  let repeats = 0;
  let doneTwice = 0;
  let graceful = 0;
  const freshStart: number[] = [];
  for (let seed = first; count === undefined ? performance.now() - started < budgetMs : seed < first + count; seed++) {
    const result = await simulateSchedule(seed);
    if (result.freshStartLosses.length > 0) freshStart.push(seed);
    if (strict) result.violations.push(...result.freshStartLosses);
    seeds++;
    simulated += result.simulated;
    runs += result.runs;
    terms += result.terms;
    repeats += result.repeats;
    doneTwice += result.doneTwice;
    if (result.graceful) graceful++;
    if (process.env.SCHED_VERBOSE) console.log(result.summary);
    if (process.env.SCHED_TRACE) console.log([result.summary, ...result.trace, ...result.violations].join('\n'));
    if (result.violations.length > 0) {
      failures.push(result);
      console.log(`FAILED seed ${seed}: ${labels(result)}`);
      if (failures.length <= details) console.log(report(result));
      if (failures.length >= maxFailures) break;
    }
  }
  console.log(`schedule simulation: ${seeds} seeds from ${first} (${graceful} with graceful faults only), ${(simulated / 3600).toFixed(1)} simulated hours, ` +
    `${terms} terms, ${runs} runs, ${repeats} ticks run more than once (${doneTwice} of them done twice; each excused), ` +
    `${freshStart.length} seeds with ticks lost before any record of their job landed (6F${freshStart.length ? `: ${freshStart.slice(0, 10).join(', ')}${freshStart.length > 10 ? ', …' : ''}` : ''}), ` +
    `${failures.length} failing` +
    `${failures.length ? ` (${failures.map((failure) => `${failure.seed} ${labels(failure)}`).join(', ')})` : ''}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  expect(failures.map((failure) => `${failure.summary}\n${failure.violations.join('\n')}`)).toEqual([]);
});
