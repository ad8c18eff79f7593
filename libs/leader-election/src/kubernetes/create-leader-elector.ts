/** The short way to an elector on a real cluster, for plain Node programs. */
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector, type LeaderElectorDependencies } from '../core/leader-elector.js';
import type { LeaderElectorOptions } from '../core/options.js';
import { defaultNamespace, loadKubeConfig } from './kube-config.js';
import { KubernetesLeaseLock } from './kubernetes-lease-lock.js';
import { resolveIdentity } from './pod.js';

/** Where an election on a cluster runs, each defaulted from the pod it runs in. */
export interface KubernetesPlacement {
  /** Default: the pod's own namespace (POD_NAMESPACE or the service account's), else the kubeconfig context's. */
  namespace?: string;
  /** Default: POD_NAME (from the downward API), else the hostname with a random suffix (and a warning). */
  identity?: string;
  /** A kubeconfig path or a KubeConfig. Default: KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeConfig?: string | KubeConfig;
}

export interface KubernetesElectorOptions extends Omit<LeaderElectorOptions, 'namespace' | 'identity'>, KubernetesPlacement {}

export function createLeaderElector(
  options: KubernetesElectorOptions,
  dependencies: Omit<LeaderElectorDependencies, 'lock'> = {},
): LeaderElector {
  const kubeConfig = loadKubeConfig(options.kubeConfig);
  const namespace = options.namespace || defaultNamespace(kubeConfig) || '';
  const { kubeConfig: _, ...electorOptions } = options;
  return new LeaderElector(
    { ...electorOptions, namespace, identity: resolveIdentity(options.identity, dependencies.logger ?? console) },
    { ...dependencies, lock: new KubernetesLeaseLock(kubeConfig, options.leaseName, namespace) },
  );
}
