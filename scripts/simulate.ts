// `npm run simulate -- [--seeds N] [--seed S] [--trace] [--budget SECONDS]`: the deterministic
// simulator (test/sim) outside the time box of `npm test`. --seed S --trace replays one seed and
// prints its whole trace; --seeds N runs N seeds from S (default 1); with neither, it runs for
// --budget seconds (default 60). Runs under Vitest, which maps the package to its source.
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
const env = {
  ...process.env,
  SIM_SEED: whole('seed', values.seed) ?? '1',
  ...(seeds ? { SIM_SEEDS: seeds } : {}),
  ...(values.budget ? { SIM_BUDGET_MS: String(Number(whole('budget', values.budget)) * 1000) } : {}),
  ...(values['max-failures'] ? { SIM_MAX_FAILURES: whole('max-failures', values['max-failures']) } : {}),
  ...(values.trace ? { SIM_PRINT_TRACE: '1' } : {}),
};
const root = resolve(import.meta.dirname, '..');
const result = spawnSync(process.execPath, [resolve(root, 'node_modules/vitest/vitest.mjs'), 'run', '--project', 'simulation'], { cwd: root, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
