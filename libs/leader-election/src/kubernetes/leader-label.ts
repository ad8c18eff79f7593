/**
 * Labels this instance's own Pod while it leads (e.g. `leader=true`) and removes the label when it
 * stops, so a Service can select the leader only. Needs the Role rule leaderLabelRoleRule() (rbac.ts).
 */
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { LeaderElector } from '../core/leader-elector.js';
import type { ElectorLogger } from '../core/options.js';
import { podName } from './pod.js';
import { describeRule, leaderLabelRoleRule } from './rbac.js';

export interface LeaderLabelOptions {
  /** Label key, e.g. 'leader' or 'example.com/leader'. */
  key: string;
  /** Default 'true'. */
  value?: string;
  /** The Pod to label. Default: POD_NAME (from the downward API). */
  podName?: string;
}

/** Returns a function that detaches, resolving once the last label change has been written. */
export function attachLeaderLabel(elector: LeaderElector, kubeConfig: KubeConfig, options: LeaderLabelOptions, logger: ElectorLogger): () => Promise<void> {
  const pod = options.podName ?? podName();
  const { namespace } = elector.options;
  if (!pod) {
    logger.warn(`leaderLabel is set but POD_NAME is not: no Pod will be labelled. Set POD_NAME from the downward API (fieldRef metadata.name)`);
    return async () => {};
  }
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  // Label writes are serialised so that "set" and "remove" land in the order leadership changed.
  let queue = Promise.resolve();
  const label = (value: string | null): void => {
    queue = queue.then(async () => {
      try {
        await api.patchNamespacedPod({ name: pod, namespace, body: { metadata: { labels: { [options.key]: value } } } }, mergePatch);
      } catch (error) {
        const status = error instanceof ApiException ? error.code : undefined;
        logger.warn(`cannot ${value === null ? 'remove' : 'set'} label ${options.key} on pod ${namespace}/${pod}` +
          (status === 403 ? `: forbidden; add the Role rule ${describeRule(leaderLabelRoleRule())}` : status ? `: HTTP ${status}` : `: ${String(error)}`));
      }
    });
  };
  const subscription = elector.events$.subscribe((event) => {
    if (event.type === 'acquired') label(options.value ?? 'true');
    if (event.type === 'lost') label(null);
  });
  return async () => {
    subscription.unsubscribe();
    await queue;
  };
}
