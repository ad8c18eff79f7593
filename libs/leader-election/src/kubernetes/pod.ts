/** This process's Pod, as the downward API tells it (POD_NAME from fieldRef metadata.name): the one place that reads it. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ElectorLogger } from '../core/options.js';

export function podName(): string | undefined {
  return process.env.POD_NAME || undefined;
}

let warnedAboutIdentity = false;

/** The option, else POD_NAME, else hostname plus a random suffix (with a warning, once per process). */
export function resolveIdentity(identity: string | undefined, logger: ElectorLogger): string {
  if (identity !== undefined) return identity;
  const pod = podName();
  if (pod) return pod;
  const generated = `${hostname()}_${randomBytes(4).toString('hex')}`;
  if (!warnedAboutIdentity) {
    warnedAboutIdentity = true;
    logger.warn(`no identity option and no POD_NAME environment variable: using "${generated}". ` +
      'Set POD_NAME from the downward API (fieldRef metadata.name) so the Lease names the pod.');
  }
  return generated;
}
