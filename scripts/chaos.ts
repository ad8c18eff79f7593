// `npm run chaos [FAULTS]`: the long form of the fault-injection suite (500 faults by default).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runChaos, type Fault } from '../test/harness/chaos.ts';

const faults = Number(process.argv[2] ?? 500);
const only = process.env.CHAOS_ONLY?.split(',') as Fault[] | undefined;
const report = await runChaos({ faults, only, log: (line) => console.error(line) });
const out = resolve(import.meta.dirname, '..', 'chaos');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'results.json'), `${JSON.stringify({ date: new Date().toISOString(), ...report }, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));
const ok = report.overlaps.length === 0 && report.crashes.length === 0 && report.slowRecoveries.length === 0;
console.log(ok ? `${faults} faults: no overlap, no crash, every recovery in time`
  : `FAILED: overlaps by fault ${JSON.stringify(report.overlapsByFault)}, by style ${JSON.stringify(report.overlapsByStyle)}; ` +
    `${report.crashes.length} crashes, ${report.slowRecoveries.length} slow recoveries`);
process.exit(ok ? 0 : 1);
