/** Loading the Kubernetes client configuration, with errors that name the file at fault. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findHomeDir, KubeConfig } from '@kubernetes/client-node';

/** Where a pod's own namespace and token are mounted by the service account admission. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
export const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeConfigError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'KubeConfigError';
  }
}

/**
 * A path loads that file; a KubeConfig is used as is; nothing means the usual order: KUBECONFIG,
 * ~/.kube/config, then the in-cluster service account.
 */
export function loadKubeConfig(source?: string | KubeConfig): KubeConfig {
  if (source instanceof KubeConfig) return checked(source, 'the KubeConfig passed in');
  const kubeConfig = new KubeConfig();
  if (typeof source === 'string') {
    if (!existsSync(source)) throw new KubeConfigError(`kubeconfig file ${source} does not exist`);
    try {
      kubeConfig.loadFromFile(source);
    } catch (error) {
      throw new KubeConfigError(`kubeconfig file ${source} cannot be read: ${(error as Error).message}`, error);
    }
    return checked(kubeConfig, `kubeconfig file ${source}`);
  }
  const fromEnv = process.env.KUBECONFIG;
  // With none of its sources present, client-node quietly targets http://localhost:8080, which
  // would only surface later as connection errors. (Windows has more sources, through WSL.)
  const home = findHomeDir();
  const userConfig = home ? join(home, '.kube', 'config') : undefined;
  if (process.platform !== 'win32' && !fromEnv && !(userConfig && existsSync(userConfig)) && !existsSync(SERVICE_ACCOUNT_TOKEN_FILE)) {
    throw new KubeConfigError('no Kubernetes configuration found: KUBECONFIG is not set or empty, ' +
      (userConfig ? `${userConfig} does not exist` : 'HOME is not set, so there is no ~/.kube/config') +
      `, and no service account token is mounted at ${SERVICE_ACCOUNT_TOKEN_FILE}. ` +
      'Set KUBECONFIG or the kubeConfig option, or in a pod mount the service account token (automountServiceAccountToken)');
  }
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    const where = fromEnv ? `KUBECONFIG=${fromEnv}` : '~/.kube/config';
    throw new KubeConfigError(`cannot load the Kubernetes configuration from ${where}: ${(error as Error).message}`, error);
  }
  return checked(kubeConfig, fromEnv ? `KUBECONFIG=${fromEnv}` : 'the default Kubernetes configuration');
}

function checked(kubeConfig: KubeConfig, where: string): KubeConfig {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) {
    throw new KubeConfigError(`${where} has no current cluster: set current-context, or run inside a pod with a service account`);
  }
  if (!URL.canParse(cluster.server)) {
    throw new KubeConfigError(`${where}: cluster "${cluster.name}" has no valid server URL (${JSON.stringify(cluster.server)})`);
  }
  return kubeConfig;
}

/** The namespace to use when none is configured: the pod's own, else the kubeconfig context's. */
export function defaultNamespace(kubeConfig?: KubeConfig): string | undefined {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  if (existsSync(SERVICE_ACCOUNT_NAMESPACE_FILE)) return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim() || undefined;
  const context = kubeConfig?.getContextObject(kubeConfig.getCurrentContext());
  return context?.namespace;
}
