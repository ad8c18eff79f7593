// The compatibility stack: the oldest versions the peer ranges promise (Node 20, Nest 11,
// @kubernetes/client-node 1.4), installed here apart from the workspace with their own lockfile.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

export const COMPAT_DIR = import.meta.dirname;
/** Node 20, from the `node` package pinned in this folder's package.json. */
export const COMPAT_NODE = join(COMPAT_DIR, 'node_modules', '.bin', 'node');

/** Runs `npm ci` here unless node_modules already matches the lockfile. */
export function ensureCompatStack(): string {
  const lock = createHash('sha256').update(readFileSync(join(COMPAT_DIR, 'package-lock.json'))).digest('hex');
  const marker = join(COMPAT_DIR, 'node_modules', '.installed-lock-sha256');
  const { devDependencies } = JSON.parse(readFileSync(join(COMPAT_DIR, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const complete = Object.keys(devDependencies).every((name) => existsSync(join(COMPAT_DIR, 'node_modules', name, 'package.json')));
  if (complete && existsSync(COMPAT_NODE) && existsSync(marker) && readFileSync(marker, 'utf8') === lock) return 'already installed';
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: COMPAT_DIR, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`npm ci in ${COMPAT_DIR} failed (exit ${result.status ?? result.signal}); the registry must be reachable`);
  writeFileSync(marker, lock);
  return 'installed now';
}
