// The election set's simulator (set-world.ts) in the suite: one sweep of SETS_BUDGET_MS (default
// 40 s), or SETS_SEEDS seeds from SETS_SEED; `npm run simulate -- --sets` runs it alone.
import { simulateSet } from './set-world.ts';
import { sweep } from './sweep.ts';

sweep(0, 1, { title: 'election set simulation', prefix: 'SETS', flag: '--sets', defaultBudgetMs: 40_000, run: simulateSet });
