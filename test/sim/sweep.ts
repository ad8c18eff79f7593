// A deterministic simulation in the suite, as a sweep any number of spec files share (one per core,
// each taking every n-th seed): as many seeds as fit in the time box (<PREFIX>_BUDGET_MS), or exactly
// <PREFIX>_SEEDS seeds from <PREFIX>_SEED. A failing seed prints the command that replays it and the
// end of its trace. `npm run simulate` sets these from its flags. The election's simulator uses the
// prefix SIM (simulation.ts), the election set's SETS (set-world.ts).
import { expect, it } from 'vitest';
import { simulate } from './simulation.ts';

export interface SweepResult {
  seed: number;
  violations: string[];
  trace: string[];
  summary: string;
  simulated: number;
  terms: number;
  excusedOverlaps?: number;
  clientGoOverlaps?: number;
}

export interface Simulator {
  /** What it simulates, for the test's name and its report. */
  title: string;
  /** Its environment variables' prefix. */
  prefix: string;
  /** `npm run simulate` flags that pick it. */
  flag: string;
  defaultBudgetMs: number;
  run(seed: number): Promise<SweepResult>;
}

export const ELECTION: Simulator = { title: 'simulation', prefix: 'SIM', flag: '', defaultBudgetMs: 100_000, run: simulate };

/** Runs seeds first + shard, first + shard + shards, … in this file. */
export function sweep(shard: number, shards: number, simulator: Simulator = ELECTION): void {
  const env = (name: string): number | undefined => (process.env[`${simulator.prefix}_${name}`] ? Number(process.env[`${simulator.prefix}_${name}`]) : undefined);
  const first = env('SEED') ?? 1;
  const count = env('SEEDS');
  const budgetMs = env('BUDGET_MS') ?? simulator.defaultBudgetMs;
  const traceLines = env('TRACE_LINES') ?? 120;
  const flag = (name: string): boolean => Boolean(process.env[`${simulator.prefix}_${name}`]);

  const report = (result: SweepResult): string => [
    result.summary,
    ...result.violations.map((violation) => `  ${violation}`),
    `replay: npm run simulate -- ${simulator.flag ? `${simulator.flag} ` : ''}--seed ${result.seed} --trace`,
    `last ${traceLines} lines of the trace:`,
    ...(traceLines > 0 ? result.trace.slice(-traceLines) : []),
  ].join('\n');

  it(`holds every invariant on every seed (${simulator.title}, shard ${shard + 1} of ${shards})`, { timeout: (count === undefined ? budgetMs : count * 1_000) + 120_000 }, async () => {
    const started = performance.now();
    const failures: SweepResult[] = [];
    let seeds = 0;
    let simulated = 0;
    let terms = 0;
    let excused = 0;
    let clientGo = 0;
    for (let seed = first + shard; count === undefined ? performance.now() - started < budgetMs : seed < first + count; seed += shards) {
      const result = await simulator.run(seed);
      seeds++;
      simulated += result.simulated;
      terms += result.terms;
      excused += result.excusedOverlaps ?? 0;
      clientGo += result.clientGoOverlaps ?? 0;
      if (flag('VERBOSE')) console.log(result.summary);
      if (flag('PRINT_TRACE')) console.log([result.summary, ...result.trace].join('\n'));
      if (result.violations.length > 0) {
        failures.push(result);
        console.log(report(result));
        if (failures.length >= (env('MAX_FAILURES') ?? 1)) break;
      }
    }
    console.log(`${simulator.title}: ${seeds} seeds from ${first + shard} in steps of ${shards}, ${(simulated / 3600).toFixed(1)} simulated hours, ${terms} terms, ` +
      `overlaps excused by an operator override ${excused}, caused by client-go peers ${clientGo}, ` +
      `${failures.length} failing${failures.length ? ` (${failures.map((f) => f.seed).join(', ')})` : ''}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(failures.map((failure) => `${failure.summary}\n${failure.violations.join('\n')}`)).toEqual([]);
  });
}
