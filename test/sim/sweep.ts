// The deterministic simulation in the suite, as a sweep any number of spec files share (one per
// core, each taking every n-th seed): as many seeds as fit in the time box (SIM_BUDGET_MS, default
// 100 s), or exactly SIM_SEEDS seeds from SIM_SEED. A failing seed prints the command that
// replays it and the end of its trace. `npm run simulate` sets these from its flags.
import { expect, it } from 'vitest';
import { simulate, type SimulationResult } from './simulation.ts';

const env = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);
const first = env('SIM_SEED') ?? 1;
const count = env('SIM_SEEDS');
const budgetMs = env('SIM_BUDGET_MS') ?? 100_000;
const traceLines = env('SIM_TRACE_LINES') ?? 120;

function report(result: SimulationResult): string {
  return [
    result.summary,
    ...result.violations.map((violation) => `  ${violation}`),
    `replay: npm run simulate -- --seed ${result.seed} --trace`,
    `last ${traceLines} lines of the trace:`,
    ...(traceLines > 0 ? result.trace.slice(-traceLines) : []),
  ].join('\n');
}

/** Runs seeds first + shard, first + shard + shards, … in this file. */
export function sweep(shard: number, shards: number): void {
  it(`holds every invariant on every seed (shard ${shard + 1} of ${shards})`, { timeout: (count === undefined ? budgetMs : count * 1_000) + 120_000 }, async () => {
    const started = performance.now();
    const failures: SimulationResult[] = [];
    let seeds = 0;
    let simulated = 0;
    let terms = 0;
    let excused = 0;
    let clientGo = 0;
    for (let seed = first + shard; count === undefined ? performance.now() - started < budgetMs : seed < first + count; seed += shards) {
      const result = await simulate(seed);
      seeds++;
      simulated += result.simulated;
      terms += result.terms;
      excused += result.excusedOverlaps;
      clientGo += result.clientGoOverlaps;
      if (process.env.SIM_VERBOSE) console.log(result.summary);
      if (process.env.SIM_PRINT_TRACE) console.log([result.summary, ...result.trace].join('\n'));
      if (result.violations.length > 0) {
        failures.push(result);
        console.log(report(result));
        if (failures.length >= (env('SIM_MAX_FAILURES') ?? 1)) break;
      }
    }
    console.log(`simulation: ${seeds} seeds from ${first + shard} in steps of ${shards}, ${(simulated / 3600).toFixed(1)} simulated hours, ${terms} terms, ` +
      `overlaps excused by an operator override ${excused}, caused by client-go peers ${clientGo}, ` +
      `${failures.length} failing${failures.length ? ` (${failures.map((f) => f.seed).join(', ')})` : ''}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(failures.map((failure) => `${failure.summary}\n${failure.violations.join('\n')}`)).toEqual([]);
  });
}
