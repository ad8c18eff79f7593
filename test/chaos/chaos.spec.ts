import { expect, it } from 'vitest';
import { FAULTS, KINDS, runChaos, type Fault } from '../harness/chaos.ts';

// The short form of `npm run chaos`: every fault type several times, on a private control plane,
// with candidates of both work styles and client-go peers.
it('no two of our processes ever work at once, no replica crashes, and a leader is back after every fault', async (context) => {
  if (process.env.TEST_KUBECONFIG) return context.skip('kills and restarts the apiserver: needs the local control plane');
  const only = process.env.CHAOS_ONLY?.split(',') as Fault[] | undefined;
  const report = await runChaos({ faults: Number(process.env.CHAOS_FAULTS ?? 55), only, log: (line) => console.error(line) });
  console.error(`chaos: ${JSON.stringify(report)}`);
  expect(report.overlaps).toEqual([]);
  expect(report.crashes).toEqual([]);
  expect(report.slowRecoveries).toEqual([]);
  for (const fault of only ?? FAULTS) expect(report.faults[fault]).toBeGreaterThanOrEqual(Math.floor(report.injected / (only ?? FAULTS).length));
  // The faults that steer leadership hit each kind in turn: the signal style is cut off and paused too.
  const steered = (['blackhole-leader', 'pause-mid-renewal', 'sigstop-leader'] as const).filter((fault) => report.faults[fault] >= KINDS.length);
  expect(steered.flatMap((fault) => KINDS.filter((kind) => !report.faultsByStyle[fault][kind]).map((kind) => `${fault} never hit a ${kind} leader`))).toEqual([]);
  expect(report.terms).toBeGreaterThan(report.injected / 4);
}, 20 * 60_000);
