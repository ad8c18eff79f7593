// A real local control plane: etcd plus kube-apiserver on free loopback ports, TLS everywhere,
// client-certificate authentication, RBAC authorization. What envtest does for Go, for our suites.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinaries, type ControlPlaneBinaries } from './binaries.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { GuardedProcess } from './processes.ts';
import {
  createCertificateAuthority, issueCertificate, saveCertificateAuthority, serviceAccountKeys, type PemPair,
} from './pki.ts';

const READY_TIMEOUT_MS = 90_000;
const POLL_MS = 100;

/** What a test process needs to reach a cluster; written to cluster.json beside the kubeconfig. */
export interface ClusterInfo {
  server: string;
  adminKubeconfig: string;
  /** Present for the local control plane: lets tests mint client certificates for new users. */
  pkiDir?: string;
  /** Present for the local control plane: removed with it, so tests keep their files here. */
  workDir?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function probe(url: string, tls?: PemPair & { caPem: string }): Promise<number> {
  return new Promise((resolve) => {
    const options = tls ? { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, timeout: 2000 } : { timeout: 2000 };
    const request = (tls ? httpsRequest : httpRequest)(url, options, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
    request.end();
  });
}

async function waitUntil(what: GuardedProcess, url: string, tls?: PemPair & { caPem: string }): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!what.running) throw new Error(`${what.name} exited during start-up; its log (${what.logFile}) ends:\n${what.tail()}`);
    if ((await probe(url, tls)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${what.name} was not ready at ${url} within ${READY_TIMEOUT_MS / 1000} s; its log ends:\n${what.tail()}`);
}

const live = new Set<ControlPlane>();
process.once('exit', () => {
  for (const plane of live) plane.killNow();
});
// Interrupted (Ctrl-C, a CI timeout) with nobody else handling it: tear down, then die of the same
// signal as we would have. Programs with their own handlers (npm run cluster, the demo) stop cleanly themselves.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (process.listenerCount(signal) > 0) return;
    for (const plane of live) plane.killNow();
    process.kill(process.pid, signal);
  });
}

export class ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly adminKubeconfig: string;
  readonly info: ClusterInfo;
  private readonly binaries: ControlPlaneBinaries;
  private readonly apiserverArgs: string[];
  private readonly admin: PemPair & { caPem: string };
  private readonly etcd: GuardedProcess;
  private apiserver: GuardedProcess | undefined;

  private constructor(dir: string, binaries: ControlPlaneBinaries, etcd: GuardedProcess, apiserverArgs: string[],
    server: string, admin: PemPair & { caPem: string }) {
    this.dir = dir;
    this.binaries = binaries;
    this.etcd = etcd;
    this.apiserverArgs = apiserverArgs;
    this.server = server;
    this.admin = admin;
    this.adminKubeconfig = writeKubeconfig(join(dir, 'admin.kubeconfig'), server, admin.caPem, { name: 'admin', ...admin });
    this.info = { server, adminKubeconfig: this.adminKubeconfig, pkiDir: join(dir, 'pki'), workDir: dir };
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify(this.info, null, 2));
    live.add(this);
  }

  /** The audit log of Lease requests, when started with `auditLeases`. */
  get auditLog(): string {
    return join(this.dir, 'audit.log');
  }

  /**
   * Starts etcd and kube-apiserver and resolves once /readyz answers 200. `auditLeases` makes the
   * apiserver log every Lease request (who, which verb) to `auditLog`, for the benchmarks.
   * `coordinatedLeaderElection` turns on the CoordinatedLeaderElection feature gate and serves
   * coordination.k8s.io/v1beta1 (LeaseCandidate): without the gate the apiserver drops
   * spec.preferredHolder and spec.strategy from every Lease it stores.
   */
  static async start(options: { binaries?: ControlPlaneBinaries; auditLeases?: boolean; coordinatedLeaderElection?: boolean } = {}): Promise<ControlPlane> {
    const binaries = options.binaries ?? ensureBinaries();
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-lease-election-cp-'));
    let etcd: GuardedProcess | undefined;
    try {
      const pki = join(dir, 'pki');
      mkdirSync(pki, { mode: 0o700 });
      const ca = await createCertificateAuthority();
      saveCertificateAuthority(ca, pki);
      const serving = await issueCertificate(ca, {
        commonName: 'kube-apiserver',
        serverNames: { dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'], ips: ['127.0.0.1'] },
      });
      const adminCert = await issueCertificate(ca, { commonName: 'admin', organizations: ['system:masters'] });
      const sa = serviceAccountKeys();
      const files = {
        caCrt: join(pki, 'ca.crt'),
        servingCrt: join(pki, 'apiserver.crt'),
        servingKey: join(pki, 'apiserver.key'),
        saPub: join(pki, 'sa.pub'),
        saKey: join(pki, 'sa.key'),
      };
      writeFileSync(files.servingCrt, serving.certPem);
      writeFileSync(files.servingKey, serving.keyPem, { mode: 0o600 });
      writeFileSync(files.saPub, sa.publicPem);
      writeFileSync(files.saKey, sa.privatePem, { mode: 0o600 });

      const [etcdPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      etcd = new GuardedProcess('etcd', binaries.etcd, [
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ], join(dir, 'etcd.log'));
      await waitUntil(etcd, `${etcdUrl}/health`);

      const server = `https://127.0.0.1:${securePort}`;
      const apiserverArgs = [
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--secure-port=${securePort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--tls-cert-file=${files.servingCrt}`,
        `--tls-private-key-file=${files.servingKey}`,
        `--client-ca-file=${files.caCrt}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${files.saPub}`,
        `--service-account-signing-key-file=${files.saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--profiling=false',
      ];
      if (options.coordinatedLeaderElection) {
        apiserverArgs.push('--feature-gates=CoordinatedLeaderElection=true', '--runtime-config=coordination.k8s.io/v1beta1=true');
      }
      if (options.auditLeases) {
        const policy = join(dir, 'audit-policy.yaml');
        writeFileSync(policy, JSON.stringify({
          apiVersion: 'audit.k8s.io/v1',
          kind: 'Policy',
          omitStages: ['RequestReceived'],
          rules: [{ level: 'Metadata', resources: [{ group: 'coordination.k8s.io', resources: ['leases'] }] }, { level: 'None' }],
        }));
        apiserverArgs.push(`--audit-policy-file=${policy}`, `--audit-log-path=${join(dir, 'audit.log')}`, '--audit-log-mode=blocking');
      }
      const admin = { ...adminCert, caPem: ca.certPem };
      const plane = new ControlPlane(dir, binaries, etcd, apiserverArgs, server, admin);
      await plane.startApiserver();
      return plane;
    } catch (error) {
      etcd?.killNow();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** (Re)starts kube-apiserver on the same port against the same etcd. */
  async startApiserver(): Promise<void> {
    if (this.apiserver?.running) return;
    this.apiserver = new GuardedProcess('kube-apiserver', this.binaries.kubeApiserver, this.apiserverArgs,
      join(this.dir, 'kube-apiserver.log'));
    await waitUntil(this.apiserver, `${this.server}/readyz`, this.admin);
  }

  /** Stops kube-apiserver, leaving etcd and the data in place, to simulate an apiserver outage. */
  async stopApiserver(): Promise<void> {
    await this.apiserver?.stop();
  }

  async stop(): Promise<void> {
    await this.apiserver?.stop();
    await this.etcd.stop();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Process groups of etcd and kube-apiserver, for resource measurements. */
  get processGroups(): Record<'etcd' | 'kube-apiserver', number | undefined> {
    return { etcd: this.etcd.processGroup, 'kube-apiserver': this.apiserver?.processGroup };
  }

  /** Synchronous teardown for exit handlers. */
  killNow(): void {
    this.apiserver?.killNow();
    this.etcd.killNow();
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}
