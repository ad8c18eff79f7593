// Temporary probe (not committed): CPU per request of HTTP/1.1 keep-alive vs one HTTP/2 session on the real apiserver.
import { connect } from 'node:http2';
import { Agent, request } from 'node:https';
import { KubeConfig, CoordinationV1Api } from '@kubernetes/client-node';
import { ControlPlane } from '../test/harness/control-plane.ts';

const plane = await ControlPlane.start({});
try {
  const kc = new KubeConfig();
  kc.loadFromFile(plane.adminKubeconfig);
  await kc.makeApiClient(CoordinationV1Api).createNamespacedLease({ namespace: 'default', body: { metadata: { name: 'probe' }, spec: { holderIdentity: 'x' } } });
  const opts: Record<string, unknown> = {};
  await kc.applyToHTTPSOptions(opts as never);
  const server = new URL(kc.getCurrentCluster()!.server);
  const path = '/apis/coordination.k8s.io/v1/namespaces/default/leases/probe';
  const N = 6000, C = 8;
  const agent = new Agent({ keepAlive: true, maxSockets: 6, ca: opts.ca as Buffer, cert: opts.cert as Buffer, key: opts.key as Buffer });
  const h1 = () => new Promise<void>((resolve, reject) => {
    const r = request({ hostname: server.hostname, port: server.port, path, method: 'GET', agent, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = []; res.on('data', (c) => chunks.push(c)); res.on('end', () => { JSON.parse(Buffer.concat(chunks).toString()); resolve(); });
    });
    r.on('error', reject); r.end();
  });
  const session = connect(server.origin, { ca: opts.ca as Buffer, cert: opts.cert as Buffer, key: opts.key as Buffer });
  const h2 = () => new Promise<void>((resolve, reject) => {
    const s = session.request({ ':method': 'GET', ':path': path, accept: 'application/json' });
    const chunks: Buffer[] = []; s.on('data', (c) => chunks.push(c)); s.on('end', () => { JSON.parse(Buffer.concat(chunks).toString()); resolve(); }); s.on('error', reject); s.end();
  });
  for (const [name, fn] of [['h1', h1], ['h2', h2], ['h1', h1], ['h2', h2]] as const) {
    let left = N; const t0 = process.cpuUsage(); const w0 = performance.now();
    await Promise.all(Array.from({ length: C }, async () => { while (left-- > 0) await fn(); }));
    const cpu = process.cpuUsage(t0);
    console.log(name, ((cpu.user + cpu.system) / 1000 / N).toFixed(3), 'ms CPU/request', ((performance.now() - w0) / N).toFixed(3), 'ms wall/request');
  }
  session.close(); agent.destroy();
} finally {
  await plane.stop();
}
