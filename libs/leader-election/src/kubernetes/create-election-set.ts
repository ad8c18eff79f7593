/** An election set on a real cluster, for plain Node programs: its Leases and its member directory on one kubeconfig. */
import { ElectionSet, SET_LABEL, type ElectionSetDependencies, type ElectionSetOptions } from '../core/election-set.js';
import { defaultNamespace, loadKubeConfig } from './kube-config.js';
import type { KubernetesPlacement } from './create-leader-elector.js';
import { KubernetesLeaseDirectory } from './kubernetes-lease-directory.js';
import { KubernetesLeaseLock } from './kubernetes-lease-lock.js';
import { resolveIdentity } from './pod.js';

export interface KubernetesElectionSetOptions extends Omit<ElectionSetOptions, 'namespace' | 'identity'>, KubernetesPlacement {}

export function createElectionSet(
  options: KubernetesElectionSetOptions,
  dependencies: Omit<ElectionSetDependencies, 'lockFor' | 'directory'> = {},
): ElectionSet {
  const kubeConfig = loadKubeConfig(options.kubeConfig);
  const namespace = options.namespace || defaultNamespace(kubeConfig) || '';
  const { kubeConfig: _, ...setOptions } = options;
  return new ElectionSet(
    { ...setOptions, namespace, identity: resolveIdentity(options.identity, dependencies.logger ?? console) },
    {
      ...dependencies,
      lockFor: (leaseName, labels) => new KubernetesLeaseLock(kubeConfig, leaseName, namespace, labels),
      directory: new KubernetesLeaseDirectory(kubeConfig, namespace, SET_LABEL, options.name),
    },
  );
}
