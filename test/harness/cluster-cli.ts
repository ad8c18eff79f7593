// `npm run cluster`: a local control plane in the foreground until SIGINT or SIGTERM.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ControlPlane } from './control-plane.ts';
import { CURRENT_CLUSTER_FILE } from './kubectl-cli.ts';

const started = Date.now();
const plane = await ControlPlane.start();
mkdirSync(dirname(CURRENT_CLUSTER_FILE), { recursive: true });
writeFileSync(CURRENT_CLUSTER_FILE, plane.adminKubeconfig);
console.error(`control plane ready at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C stops it`);
console.log(`KUBECONFIG=${plane.adminKubeconfig}`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.error(`${signal}: stopping the control plane`);
  rmSync(CURRENT_CLUSTER_FILE, { force: true });
  await plane.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Keep the process alive until a signal arrives.
setInterval(() => {}, 1 << 30);
