// `npm run demo`: three replicas of apps/example on the local control plane (or on KUBECONFIG's
// cluster), a live view of who leads, then a SIGKILL of the leader and a SIGTERM of the next one,
// with the measured failover and handover times. Exits by itself and leaves nothing running.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { nextLine, OverlapDetector, Replica, type ObservedLine } from '../test/harness/replicas.ts';

const TIMINGS = { leaseDuration: 4, renewDeadline: 3, retryPeriod: 0.5 };
const tty = process.stdout.isTTY;
const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s`;

function say(message: string): void {
  if (tty) process.stdout.write('\x1b[2K\r');
  console.log(`${elapsed()}  ${message}`);
}

function health(port: number | undefined): Promise<string> {
  if (!port) return Promise.resolve('-');
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 'healthy' : `HTTP ${res.statusCode}`);
    });
    req.on('error', () => resolve('down'));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

let plane: ControlPlane | undefined;
const replicas: Replica[] = [];

async function cleanup(): Promise<void> {
  for (const replica of replicas) replica.signal('SIGKILL');
  await Promise.all(replicas.map((replica) => replica.exited));
  await plane?.stop();
}

process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
process.once('SIGTERM', () => void cleanup().then(() => process.exit(143)));

async function main(): Promise<void> {
  let kubeconfig = process.env.KUBECONFIG;
  if (kubeconfig) {
    say(`using the cluster in KUBECONFIG=${kubeconfig}`);
  } else {
    say('starting a local control plane (kube-apiserver + etcd built from source on first use)');
    plane = await ControlPlane.start();
    kubeconfig = plane.adminKubeconfig;
    say(`control plane ready at ${plane.server}`);
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const namespace = `demo-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  say(`namespace ${namespace}; lease ${TIMINGS.leaseDuration} s, renew deadline ${TIMINGS.renewDeadline} s, retry ${TIMINGS.retryPeriod} s`);

  const overlap = new OverlapDetector();
  const state = new Map<string, { leader: string | null; term: number | null; lastWork: number }>();
  for (const id of ['replica-1', 'replica-2', 'replica-3']) {
    const replica = new Replica({ id, kubeconfig, namespace, timings: TIMINGS });
    state.set(id, { leader: null, term: null, lastWork: 0 });
    replica.onLine((line: ObservedLine) => {
      overlap.observe(line);
      const entry = state.get(id)!;
      if (line.event === 'new-leader') entry.leader = line.leader;
      if (line.event === 'started-leading') { entry.term = line.term; say(`${id} started leading (term ${line.term})`); }
      if (line.event === 'stopped-leading') { entry.term = null; say(`${id} stopped leading (${String(line.reason)})`); }
      if (line.event === 'work') entry.lastWork = line.at;
      if (line.event === 'error') say(`${id} error: ${String(line.message)}`);
    });
    replicas.push(replica);
  }

  const view = setInterval(() => {
    void Promise.all(replicas.map((r) => health(r.httpPort))).then((states) => {
      const now = performance.now();
      const cells = replicas.map((r, i) => {
        const entry = state.get(r.id)!;
        const working = now - entry.lastWork < 300 ? `LEADER term ${entry.term}` : 'follower';
        return `${r.id}: ${working.padEnd(14)} ${states[i].padEnd(8)}`;
      });
      const line = `${elapsed()}  ${cells.join(' | ')}`;
      if (tty) process.stdout.write(`\x1b[2K\r${line}`);
    });
  }, 250);

  try {
    const first = await nextLine(replicas, (l) => l.event === 'work', 60_000, 'a first leader');
    say(`${first.id} leads; the others follow and watch the Lease`);
    await new Promise((r) => setTimeout(r, 3_000));

    const leader = replicas.find((r) => r.id === first.id)!;
    say(`SIGKILL ${leader.id}: no release, the lease must expire`);
    const killedAt = performance.now();
    leader.signal('SIGKILL');
    const successor = await nextLine(replicas, (l) => l.event === 'work' && l.id !== leader.id, 60_000, 'a successor');
    const failover = successor.at - killedAt;
    say(`${successor.id} took over ${(failover / 1000).toFixed(2)} s after the kill (the lease runs ${TIMINGS.leaseDuration} s from the last renewal the followers saw)`);
    await new Promise((r) => setTimeout(r, 3_000));

    const second = replicas.find((r) => r.id === successor.id)!;
    say(`SIGTERM ${second.id}: it stops its work, releases the lease, and exits`);
    const termAt = performance.now();
    second.signal('SIGTERM');
    const third = await nextLine(replicas, (l) => l.event === 'work' && l.id !== leader.id && l.id !== second.id, 60_000, 'a third leader');
    const handover = third.at - termAt;
    say(`${third.id} took over ${handover.toFixed(0)} ms after the SIGTERM`);
    await new Promise((r) => setTimeout(r, 1_000));
    clearInterval(view);

    const overlaps = overlap.overlaps();
    say('');
    console.log('Results');
    console.log(`  crash failover (SIGKILL -> successor's first work): ${failover.toFixed(0)} ms; the lease runs ${TIMINGS.leaseDuration * 1000} ms from the leader's last renewal`);
    console.log(`  graceful handover (SIGTERM -> successor's first work): ${handover.toFixed(0)} ms`);
    console.log(`  terms seen: ${overlap.terms}; overlapping work between terms: ${overlaps.length === 0 ? 'none' : overlaps.join('; ')}`);
    if (overlaps.length > 0) process.exitCode = 1;
    const exit = await second.exited;
    if (!exit.clean) {
      console.log(`  ${second.id} did not shut down cleanly (${exit.signal ?? exit.code}); its log:\n${second.log}`);
      process.exitCode = 1;
    }
  } finally {
    clearInterval(view);
    for (const replica of replicas) replica.signal('SIGTERM');
    await Promise.all(replicas.map((replica) => replica.exited));
    await plane?.stop();
  }
}

main().catch(async (error: unknown) => {
  say(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  for (const replica of replicas) if (replica.log) console.error(`--- ${replica.id} log ---\n${replica.log.slice(-3000)}`);
  await cleanup();
  process.exit(1);
});
