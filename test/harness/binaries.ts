// Finds or builds the control-plane binaries: kube-apiserver, etcd and kubectl.
// KUBEBUILDER_ASSETS wins (envtest convention); otherwise they are built from test/k8s/go.mod
// with the machine's Go and cached outside git, keyed by the versions and the module's checksum.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

export const GO_MODULE_DIR = resolve(import.meta.dirname, '..', 'k8s');

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  /** Where they came from, for log lines. */
  source: string;
}

export interface ControlPlaneVersions {
  kubernetes: string;
  etcd: string;
}

export function controlPlaneVersions(): ControlPlaneVersions {
  const goMod = readFileSync(join(GO_MODULE_DIR, 'go.mod'), 'utf8');
  const version = (module: string): string => {
    const match = goMod.match(new RegExp(`^\\s*${module.replaceAll('.', '\\.')}\\s+(v\\S+)`, 'm'));
    if (!match) throw new Error(`test/k8s/go.mod does not require ${module}`);
    return match[1];
  };
  return { kubernetes: version('k8s.io/kubernetes'), etcd: version('go.etcd.io/etcd/server/v3') };
}

function cacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'nestjs-lease-election');
}

function cacheDir(versions: ControlPlaneVersions): string {
  const sum = createHash('sha256')
    .update(readFileSync(join(GO_MODULE_DIR, 'go.mod')))
    .update(readFileSync(join(GO_MODULE_DIR, 'go.sum')))
    .digest('hex')
    .slice(0, 12);
  return join(cacheRoot(), `k8s-${versions.kubernetes}-etcd-${versions.etcd}-${sum}`);
}

function fromAssets(dir: string): ControlPlaneBinaries {
  const kubeApiserver = join(dir, 'kube-apiserver');
  const etcd = join(dir, 'etcd');
  for (const file of [kubeApiserver, etcd]) {
    if (!existsSync(file)) throw new Error(`KUBEBUILDER_ASSETS=${dir} has no ${file.slice(dir.length + 1)}`);
  }
  const kubectl = join(dir, 'kubectl');
  return { kubeApiserver, etcd, kubectl, source: `KUBEBUILDER_ASSETS=${dir}` };
}

function go(args: string[], env: NodeJS.ProcessEnv): void {
  const result = spawnSync('go', args, { cwd: GO_MODULE_DIR, stdio: ['ignore', 'inherit', 'inherit'], env });
  if (result.error) throw new Error(`cannot run go (is Go installed and on PATH?): ${result.error.message}`);
  if (result.status !== 0) throw new Error(`go ${args.slice(0, 2).join(' ')} failed with exit code ${result.status}`);
}

function build(dir: string, versions: ControlPlaneVersions, log: (line: string) => void): void {
  const staging = `${dir}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const [major, minor] = versions.kubernetes.replace(/^v/, '').split('.');
  const stamp = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${versions.kubernetes}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod -buildvcs=false' };
  const started = Date.now();
  log(`building kube-apiserver and kubectl ${versions.kubernetes}, etcd ${versions.etcd} (first use only; takes minutes)`);
  go(['build', '-trimpath', '-ldflags', ['-s -w', ...stamp].join(' '), '-o', `${staging}/`,
    'k8s.io/kubernetes/cmd/kube-apiserver', 'k8s.io/kubernetes/cmd/kubectl'], env);
  go(['build', '-trimpath', '-ldflags', '-s -w', '-o', join(staging, 'etcd'), 'go.etcd.io/etcd/server/v3'], env);
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s into ${dir}`);
}

/**
 * The client-go peer (test/k8s/cmd/client-go-elector), built on first use and cached by a hash of
 * its source and the module files. Always built here, KUBEBUILDER_ASSETS or not: it is ours.
 */
export function ensureClientGoPeer(log: (line: string) => void = (line) => console.error(line)): string {
  const versions = controlPlaneVersions();
  const sources = ['go.mod', 'go.sum', 'cmd/client-go-elector/main.go', 'cmd/client-go-elector/many.go', 'cmd/client-go-elector/shards.go'];
  const hash = createHash('sha256');
  for (const file of sources) hash.update(readFileSync(join(GO_MODULE_DIR, file)));
  const binary = join(cacheRoot(), `client-go-elector-${versions.kubernetes}-${hash.digest('hex').slice(0, 12)}`);
  if (existsSync(binary)) return binary;
  const started = Date.now();
  log(`building the client-go peer (client-go ${versions.kubernetes.replace(/^v1/, 'v0')})`);
  const staging = `${binary}.building-${process.pid}`;
  go(['build', '-trimpath', '-ldflags', '-s -w', '-o', staging, './cmd/client-go-elector'],
    { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod -buildvcs=false' });
  mkdirSync(cacheRoot(), { recursive: true });
  renameSync(staging, binary);
  log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s: ${binary}`);
  return binary;
}

/** Returns usable binaries, building them on first use. */
export function ensureBinaries(log: (line: string) => void = (line) => console.error(line)): ControlPlaneBinaries {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) return fromAssets(assets);
  const versions = controlPlaneVersions();
  const dir = cacheDir(versions);
  const binaries = {
    kubeApiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    kubectl: join(dir, 'kubectl'),
    source: dir,
  };
  if (![binaries.kubeApiserver, binaries.etcd, binaries.kubectl].every((file) => existsSync(file))) {
    build(dir, versions, log);
  }
  return binaries;
}
