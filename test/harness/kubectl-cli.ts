// `npm run kubectl -- ARGS`: the kubectl built with the control plane. Without --kubeconfig or
// KUBECONFIG it talks to the cluster `npm run cluster` is running.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ensureBinaries } from './binaries.ts';

export const CURRENT_CLUSTER_FILE = resolve(import.meta.dirname, '..', '..', '.local', 'current-cluster');

function defaultKubeconfig(args: string[]): string | undefined {
  if (process.env.KUBECONFIG || args.some((arg) => arg === '--kubeconfig' || arg.startsWith('--kubeconfig='))) return undefined;
  if (!existsSync(CURRENT_CLUSTER_FILE)) return undefined;
  const path = readFileSync(CURRENT_CLUSTER_FILE, 'utf8').trim();
  return existsSync(path) ? path : undefined;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const { kubectl } = ensureBinaries();
  const kubeconfig = defaultKubeconfig(args);
  const env = kubeconfig ? { ...process.env, KUBECONFIG: kubeconfig } : process.env;
  const result = spawnSync(kubectl, args, { stdio: 'inherit', env });
  if (result.error) {
    console.error(`cannot run ${kubectl}: ${result.error.message}`);
    process.exit(1);
  }
  process.exit(result.status ?? 1);
}
