// `npm run simulate -- [--schedule | --sets] [--seeds N] [--seed S] [--trace] [--budget SECONDS]`: the
// deterministic simulator (test/sim) outside the time box of `npm test`. --seed S --trace replays one
// seed and prints its whole trace; --seeds N runs N seeds from S (default 1); with neither, it runs
// for --budget seconds (default 60). --schedule runs the simulator of leader-only scheduled jobs
// (test/sim/schedule.spec.ts) instead of the election's, --sets the simulator of election sets (test/sim/sets.spec.ts). Runs under Vitest, which maps the package to its source.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    trace: { type: 'boolean' },
    budget: { type: 'string' },
    'max-failures': { type: 'string' },
    schedule: { type: 'boolean' },
    sets: { type: 'boolean' },
  },
  strict: true,
});
const whole = (name: string, value: string | undefined): string | undefined => {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    console.error(`--${name} must be a whole number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return value;
};
const seeds = whole('seeds', values.seeds) ?? (values.seed !== undefined ? '1' : undefined);
// The election's simulator reads SIM_*, the scheduled jobs' SCHED_* (test/sim/schedule.spec.ts), the sets' SETS_*.
if (values.schedule && values.sets) {
  console.error('--schedule and --sets pick different simulators: give one');
  process.exit(2);
}
const prefix = values.schedule ? 'SCHED' : values.sets ? 'SETS' : 'SIM';
const env = {
  ...process.env,
  [`${prefix}_SEED`]: whole('seed', values.seed) ?? '1',
  ...(seeds ? { [`${prefix}_SEEDS`]: seeds } : {}),
  ...(values.budget ? { [`${prefix}_BUDGET_MS`]: String(Number(whole('budget', values.budget)) * 1000) } : {}),
  ...(values['max-failures'] ? { [`${prefix}_MAX_FAILURES`]: whole('max-failures', values['max-failures']) } : {}),
  ...(values.trace ? { [values.schedule ? 'SCHED_TRACE' : `${prefix}_PRINT_TRACE`]: '1' } : {}),
  ...(values.schedule && !values.budget && !seeds ? { SCHED_BUDGET_MS: '60000' } : {}),
};
const root = resolve(import.meta.dirname, '..');
const files = values.schedule ? ['test/sim/schedule.spec.ts'] : values.sets ? ['test/sim/sets.spec.ts'] : ['test/sim/shard-'];
const result = spawnSync(process.execPath, [resolve(root, 'node_modules/vitest/vitest.mjs'), 'run', '--project', 'simulation', ...files], { cwd: root, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
