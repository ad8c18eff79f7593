// The "many elections" benchmark's side of this library: one process holding N Leases
// (<prefix>-0 … <prefix>-(N-1)) through nestjs-lease-election/kubernetes, as a user who holds many
// Leases writes it; prints one JSON line, measured as the client-go side
// (test/k8s/cmd/client-go-elector/many.go) measures its own.
//
//   node scripts/many-elections.ts --kubeconfig FILE --namespace NS --prefix lease --leases 1000 --window 30
//   (--lease-duration 15 --renew-deadline 10 --retry-period 2; --cpu-prof to profile with node --cpu-prof)
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector } from 'nestjs-lease-election/core';
import { KubernetesLeaseLock } from 'nestjs-lease-election/kubernetes';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    prefix: { type: 'string', default: 'lease' },
    leases: { type: 'string', default: '100' },
    window: { type: 'string', default: '30' },
    'lease-duration': { type: 'string', default: '15' },
    'renew-deadline': { type: 'string', default: '10' },
    'retry-period': { type: 'string', default: '2' },
  },
});
if (!values.kubeconfig || !values.namespace) {
  console.error('usage: node scripts/many-elections.ts --kubeconfig FILE --namespace NS [--prefix lease] [--leases N] [--window S]');
  process.exit(2);
}
const count = Number(values.leases);
const seconds = (name: 'lease-duration' | 'renew-deadline' | 'retry-period' | 'window'): number => Number(values[name]) * 1000;
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));
const silent = { log() {}, warn() {}, error() {} };

const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(values.kubeconfig);
/** The JS heap after a full collection (run with --expose-gc): what the elections keep, garbage aside. */
const retainedHeap = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};
const baseline = process.memoryUsage().rss;
const baselineHeap = retainedHeap();
let measuring = false;
const latencies: number[] = [];
let acquireFailures = 0;
let held = 0;
let heldAll: () => void;
const allHeld = new Promise<void>((resolve) => (heldAll = resolve));
const startedAt = performance.now();
const electors = Array.from({ length: count }, (_, i) => {
  const leaseName = `${values.prefix}-${i}`;
  const elector = new LeaderElector(
    { leaseName, namespace: values.namespace!, identity: 'many', lossPolicy: 'rejoin',
      leaseDuration: seconds('lease-duration'), renewDeadline: seconds('renew-deadline'), retryPeriod: seconds('retry-period') },
    { lock: new KubernetesLeaseLock(kubeConfig, leaseName, values.namespace!), logger: silent },
  );
  elector.events$.subscribe((event) => {
    if (event.type === 'acquired' && ++held === count) heldAll();
    if (event.type === 'error' && (event.during === 'acquire' || event.during === 'renew')) acquireFailures++;
    if (event.type === 'renewed' && measuring) latencies.push(event.latencyMs);
  });
  elector.start();
  return elector;
});
const acquired = await Promise.race([allHeld.then(() => true), sleep(60_000).then(() => false)]);
const acquireMs = acquired ? performance.now() - startedAt : -1;
const failuresWhileAcquiring = acquireFailures;
await sleep(2 * seconds('retry-period')); // past the first renewals
measuring = true;
const cpuBefore = process.cpuUsage();
await sleep(seconds('window'));
const cpu = process.cpuUsage(cpuBefore);
measuring = false;
const rss = process.memoryUsage().rss;
const heap = retainedHeap();
latencies.sort((a, b) => a - b);
const at = (p: number): number => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : 0;
const result = {
  implementation: 'nestjs-lease-election', leases: count, held,
  acquireMs: Math.round(acquireMs), acquireFailures: failuresWhileAcquiring,
  renewals: latencies.length, renewP50: at(0.5), renewP99: at(0.99),
  cpuMsPerRenewal: (cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length),
  rssMB: rss / 2 ** 20, kBPerLease: (rss - baseline) / 1024 / count, heapKBPerLease: (heap - baselineHeap) / 1024 / count,
};
await Promise.all(electors.map((elector) => elector.stop()));
console.log(JSON.stringify(result));
