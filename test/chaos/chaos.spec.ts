import { expect, it } from 'vitest';
import { FAULTS, runChaos } from '../harness/chaos.ts';

// The short form of `npm run chaos`: every fault type several times, on a private control plane.
it('no two replicas ever work at once, no replica crashes, and a leader is back after every fault', async (context) => {
  if (process.env.TEST_KUBECONFIG) return context.skip('kills and restarts the apiserver: needs the local control plane');
  const report = await runChaos({ faults: Number(process.env.CHAOS_FAULTS ?? 56) });
  console.error(`chaos: ${JSON.stringify(report)}`);
  expect(report.overlaps).toEqual([]);
  expect(report.crashes).toEqual([]);
  expect(report.slowRecoveries).toEqual([]);
  for (const fault of FAULTS) expect(report.faults[fault]).toBeGreaterThanOrEqual(5);
  expect(report.terms).toBeGreaterThan(report.injected / 4);
}, 20 * 60_000);
