/** The short way to an elector on a real cluster, for plain Node programs. */
import type { KubeConfig } from '@kubernetes/client-node';
import { defaultNamespace, loadKubeConfig } from './kube-config.js';
import { KubernetesLeaseLock } from './kubernetes-lease-lock.js';
import { LeaderElector, type LeaderElectorDependencies } from './leader-elector.js';
import type { LeaderElectorOptions } from './options.js';

export interface KubernetesElectorOptions extends Omit<LeaderElectorOptions, 'namespace'> {
  /** Default: the pod's own namespace (POD_NAMESPACE or the service account), else the kubeconfig context's. */
  namespace?: string;
  /** A kubeconfig path or a KubeConfig. Default: KUBECONFIG, ~/.kube/config, the in-cluster service account. */
  kubeConfig?: string | KubeConfig;
}

export function createLeaderElector(
  options: KubernetesElectorOptions,
  dependencies: Omit<LeaderElectorDependencies, 'lock'> = {},
): LeaderElector {
  const kubeConfig = loadKubeConfig(options.kubeConfig);
  const namespace = options.namespace || defaultNamespace(kubeConfig) || '';
  const { kubeConfig: _, ...electorOptions } = options;
  return new LeaderElector(
    { ...electorOptions, namespace },
    { ...dependencies, lock: new KubernetesLeaseLock(kubeConfig, options.leaseName, namespace) },
  );
}
