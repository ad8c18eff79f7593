// The fault-injection engine behind `npm run chaos` and its short form in the test suite: replicas
// of apps/example behind a TCP proxy on a private control plane, faults one after another, and an
// observer that checks every replica's work lines for overlap and every fault for recovery.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { ControlPlane } from './control-plane.ts';
import { isWorking, nextLine, OverlapDetector, Replica } from './replicas.ts';
import { TcpProxy } from './tcp-proxy.ts';

export const FAULTS = [
  'sigkill-leader', 'sigstop-leader', 'apiserver-restart', 'slow-network', 'blackhole',
  'conflict-storm', 'nonsense-lease', 'delete-lease',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface ChaosOptions {
  faults: number;
  replicas?: number;
  /** Seconds, as the example takes them. */
  timings?: { leaseDuration: number; renewDeadline: number; retryPeriod: number };
  log?: (line: string) => void;
  random?: () => number;
  /** Inject only these fault types (default: all). */
  only?: readonly Fault[];
}

export interface ChaosReport {
  faults: Record<Fault, number>;
  injected: number;
  terms: number;
  overlaps: string[];
  /** Recovery after each fault: fault end → first work line, in ms. */
  recoveryMs: { p50: number; p99: number; max: number };
  /** Faults after which no leader worked within leaseDuration + retryPeriod (+ 1 s of slack). */
  slowRecoveries: string[];
  /** Replicas that exited without being killed by the suite. */
  crashes: string[];
  durationSeconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const timings = options.timings ?? { leaseDuration: 2, renewDeadline: 1.5, retryPeriod: 0.25 };
  const log = options.log ?? (() => {});
  const random = options.random ?? Math.random;
  const started = performance.now();
  const plane = await ControlPlane.start();
  const proxy = await TcpProxy.start(Number(new URL(plane.server).port));
  const kubeconfig = proxy.kubeconfig(plane.adminKubeconfig, join(plane.dir, 'proxied.kubeconfig'));
  const admin = new KubeConfig();
  admin.loadFromFile(plane.adminKubeconfig);
  const leases = admin.makeApiClient(CoordinationV1Api);
  const namespace = `chaos-${randomBytes(3).toString('hex')}`;
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });

  const overlap = new OverlapDetector();
  const replicas: Replica[] = [];
  const killedBySuite = new Set<Replica>();
  const crashes: string[] = [];
  let serial = 0;
  const spawnReplica = (): Replica => {
    const replica = new Replica({
      id: `replica-${serial++}`, kubeconfig, namespace, timings, extraArgs: ['--loss-policy', 'rejoin'],
    });
    replica.onLine((line) => overlap.observe(line));
    void replica.exited.then((exit) => {
      if (!killedBySuite.has(replica) && !exit.clean) crashes.push(`${replica.id} exited (${exit.signal ?? exit.code}):\n${replica.log.slice(-2000)}`);
    });
    replicas.push(replica);
    return replica;
  };
  const alive = (): Replica[] => replicas.filter((replica) => replica.process.exitCode === null && replica.process.signalCode === null);
  const leaderNow = (): Replica | undefined => alive().find((replica) => isWorking(replica));
  const kill = async (replica: Replica): Promise<void> => {
    killedBySuite.add(replica);
    replica.signal('SIGKILL');
    await replica.exited;
  };

  const leaseMs = timings.leaseDuration * 1000;
  const allowedRecovery = leaseMs + timings.retryPeriod * 1000 + 1000;
  const recoveries: number[] = [];
  const slowRecoveries: string[] = [];
  const counts = Object.fromEntries(FAULTS.map((fault) => [fault, 0])) as Record<Fault, number>;

  /** Rewrites the Lease as someone else would, retrying on conflict. */
  const rewrite = async (change: (lease: V1Lease) => V1Lease): Promise<void> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        const lease = await leases.readNamespacedLease({ name: 'example-controller', namespace });
        await leases.replaceNamespacedLease({ name: 'example-controller', namespace, body: change(lease) });
        return;
      } catch (error) {
        if ((error as { code?: number }).code !== 409) throw error;
      }
    }
  };

  /** Injects one fault; resolves when the fault is over (the moment recovery is measured from). */
  const inject = async (fault: Fault): Promise<void> => {
    const leader = leaderNow();
    switch (fault) {
      case 'sigkill-leader':
        if (leader) await kill(leader);
        spawnReplica();
        return;
      case 'sigstop-leader':
        if (!leader) return;
        leader.signal('SIGSTOP');
        await sleep(leaseMs + 500 + random() * 1000);
        leader.signal('SIGCONT');
        return;
      case 'apiserver-restart':
        await plane.stopApiserver();
        await sleep(random() * leaseMs);
        await plane.startApiserver();
        return;
      case 'slow-network':
        proxy.delayMs = 50 + Math.round(random() * 400);
        await sleep(2_000 + random() * 2_000);
        proxy.delayMs = 0;
        return;
      case 'blackhole':
        proxy.blackhole();
        await sleep(timings.renewDeadline * 1000 + random() * leaseMs);
        proxy.restore();
        return;
      case 'conflict-storm': {
        const until = performance.now() + 2_000 + random() * 2_000;
        let bump = 0;
        while (performance.now() < until) {
          await rewrite((lease) => ({ ...lease, metadata: { ...lease.metadata, annotations: { ...lease.metadata?.annotations, 'chaos/bump': String(bump++) } } }));
        }
        return;
      }
      case 'nonsense-lease':
        await rewrite((lease) => ({
          ...lease,
          spec: random() < 0.5
            ? { holderIdentity: 'ghost-that-never-renews', leaseDurationSeconds: 2_147_483_647, leaseTransitions: lease.spec?.leaseTransitions }
            : {},
        }));
        return;
      case 'delete-lease':
        await leases.deleteNamespacedLease({ name: 'example-controller', namespace }).catch(() => {});
        return;
    }
  };

  try {
    for (let i = 0; i < (options.replicas ?? 3); i++) spawnReplica();
    await nextLine(replicas, (line) => line.event === 'work', 60_000, 'a first leader', 0);
    let order: Fault[] = [];
    for (let n = 0; n < options.faults; n++) {
      // Every fault type once per round of eight, in a random order within the round.
      if (order.length === 0) order = [...(options.only ?? FAULTS)].map((fault) => ({ fault, key: random() })).sort((a, b) => a.key - b.key).map(({ fault }) => fault);
      const fault = order.pop()!;
      counts[fault]++;
      await inject(fault);
      const over = performance.now();
      let recovered: number;
      try {
        recovered = (await nextLine(alive(), (line) => line.event === 'work', 60_000, `a leader after ${fault}`, over)).at;
      } catch {
        const lease = await leases.readNamespacedLease({ name: 'example-controller', namespace }).catch((error: unknown) => String(error));
        const states = alive().map((replica) => `${replica.id}: ${JSON.stringify(replica.lines.slice(-3).map(({ event, term, at }) => ({ event, term, at: Math.round(at) })))}\n${replica.log.slice(-1500)}`);
        slowRecoveries.push(`#${n} ${fault}: no leader within 60 s; lease ${JSON.stringify(typeof lease === 'string' ? lease : lease.spec)}\n${states.join('\n')}`);
        continue;
      }
      const recovery = recovered - over;
      recoveries.push(recovery);
      if (recovery > allowedRecovery) slowRecoveries.push(`#${n} ${fault}: ${recovery.toFixed(0)} ms`);
      log(`#${n} ${fault}: leader back after ${recovery.toFixed(0)} ms`);
      await sleep(200 + random() * 600);
    }
  } finally {
    for (const replica of replicas) killedBySuite.add(replica);
    for (const replica of alive()) replica.signal('SIGTERM');
    await Promise.all(replicas.map((replica) => replica.exited));
    await proxy.close();
    await plane.stop();
  }
  const sorted = [...recoveries].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
  return {
    faults: counts,
    injected: options.faults,
    terms: overlap.terms,
    overlaps: overlap.overlaps(),
    recoveryMs: { p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? 0) },
    slowRecoveries,
    crashes,
    durationSeconds: Math.round((performance.now() - started) / 1000),
  };
}
