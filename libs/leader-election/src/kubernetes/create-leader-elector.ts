/** The short way to an elector on a real cluster, for plain Node programs. */
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector, type LeaderElectorDependencies } from '../core/leader-elector.js';
import { resolveElectorOptions, type LeaderElectorOptions } from '../core/options.js';
import { defaultNamespace, loadKubeConfig } from './kube-config.js';
import { KubernetesLeaseCandidate } from './kubernetes-lease-candidate.js';
import { KubernetesLeaseLock } from './kubernetes-lease-lock.js';
import { resolveIdentity } from './pod.js';
import { podLiveness } from './rollout.js';

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
  const logger = dependencies.logger ?? console;
  const resolved = resolveElectorOptions({ ...electorOptions, namespace, identity: resolveIdentity(options.identity, logger) });
  const { identity, leaseName, coordinated } = resolved;
  return new LeaderElector(resolved, {
    liveness: podLiveness(kubeConfig, namespace, identity),
    ...coordinated ? { candidacy: new KubernetesLeaseCandidate(kubeConfig, namespace, identity, leaseName, coordinated, logger) } : {},
    ...dependencies,
    lock: new KubernetesLeaseLock(kubeConfig, leaseName, namespace),
  });
}
