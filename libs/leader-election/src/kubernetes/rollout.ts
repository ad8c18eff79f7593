/**
 * Who should lead after this pod, when it is shut down: a Ready pod of the same Deployment or
 * StatefulSet, preferring one of another revision than this pod's. A controller terminating pods
 * keeps the others: in a rolling update those are the new revision's (in a rollback, the old one's
 * now), in a scale-down or an eviction the same revision's. So leadership moves once per rolling
 * update, into the revision that stays, instead of old pod to old pod to new pod.
 *
 * Reads pods (get and list in the namespace: rolloutRoleRule()); identities are pod names.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError, LeaseClient } from './lease-client.js';
import { describeRule, rolloutRoleRule } from './rbac.js';

export interface PodObject {
  metadata?: {
    name?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    ownerReferences?: Array<{ kind?: string; name?: string; controller?: boolean }>;
  };
  status?: { conditions?: Array<{ type?: string; status?: string; lastTransitionTime?: string }> };
}

/** The labels that tell a pod's revision: a ReplicaSet's pod template hash, a StatefulSet's revision. */
const REVISION_LABELS: Record<string, string> = { ReplicaSet: 'pod-template-hash', StatefulSet: 'controller-revision-hash' };

/** The workload a pod belongs to (its Deployment, through the ReplicaSet's name, or its StatefulSet), and its revision. */
function workloadOf(pod: PodObject): { key: string; revision: string | undefined } | undefined {
  const owner = pod.metadata?.ownerReferences?.find((reference) => reference.controller);
  if (!owner?.kind || !owner.name || !(owner.kind in REVISION_LABELS)) return undefined;
  const revision = pod.metadata?.labels?.[REVISION_LABELS[owner.kind]!];
  // A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>.
  const base = owner.kind === 'ReplicaSet' && revision && owner.name.endsWith(`-${revision}`) ? owner.name.slice(0, -revision.length - 1) : owner.name;
  return { key: `${owner.kind === 'ReplicaSet' ? 'Deployment' : owner.kind}/${base}`, revision };
}

/** When the pod turned Ready; undefined while it is not Ready, or terminating. */
export function readySince(pod: PodObject): number | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined;
  const ready = pod.status?.conditions?.find((condition) => condition.type === 'Ready');
  if (ready?.status !== 'True') return undefined;
  return Date.parse(ready.lastTransitionTime ?? '') || 0;
}

export class RolloutSuccessorError extends Error {}

/**
 * Whether `identity` is a live candidate, told from pods, for a handover outside coordinated mode:
 * a Ready pod of that name is, a pod that is not Ready (or terminating) is not, and so is a name
 * with no pod while this instance itself runs in a pod of its identity's name. undefined when pods
 * do not tell (identities are not pod names, or reading pods is not allowed: rolloutRoleRule()).
 */
export function podLiveness(kubeConfig: KubeConfig, namespace: string, self: string): (identity: string, signal: AbortSignal) => Promise<boolean | undefined> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  const read = async (client: LeaseClient, name: string, signal: AbortSignal): Promise<PodObject | undefined> => {
    try {
      return JSON.parse(await client.request('GET', `${path}/${encodeURIComponent(name)}`, undefined, signal)) as PodObject;
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return undefined;
      throw error;
    }
  };
  return async (identity, signal) => {
    const client = LeaseClient.for(kubeConfig);
    try {
      const pod = await read(client, identity, signal);
      if (pod) return readySince(pod) !== undefined;
      return await read(client, self, signal) ? false : undefined;
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 403) return undefined;
      throw error;
    } finally {
      client.release();
    }
  };
}

/**
 * The pod to hand leadership to as `podName` shuts down, or undefined when there is none (no other
 * Ready pod of its workload, or the pod belongs to none). Of the candidates, those of another
 * revision first, then the one Ready longest (its caches warmest), then by name.
 */
export async function chooseRolloutSuccessor(kubeConfig: KubeConfig, namespace: string, podName: string, signal: AbortSignal): Promise<string | undefined> {
  const client = LeaseClient.for(kubeConfig);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  try {
    const self = JSON.parse(await client.request('GET', `${path}/${encodeURIComponent(podName)}`, undefined, signal)) as PodObject;
    const workload = workloadOf(self);
    if (!workload) return undefined;
    const pods = (JSON.parse(await client.request('GET', path, undefined, signal)) as { items?: PodObject[] }).items ?? [];
    const candidates = pods.flatMap((pod) => {
      const name = pod.metadata?.name;
      const since = readySince(pod);
      const theirs = workloadOf(pod);
      if (!name || name === podName || since === undefined || theirs?.key !== workload.key) return [];
      return [{ name, since, other: theirs.revision !== workload.revision }];
    });
    candidates.sort((a, b) => Number(b.other) - Number(a.other) || a.since - b.since || (a.name < b.name ? -1 : 1));
    return candidates[0]?.name;
  } catch (error) {
    if (error instanceof ApiError && error.statusCode === 403) {
      throw new RolloutSuccessorError(`not allowed to read pods in namespace "${namespace}" to choose a successor: grant the rule ` +
        `${describeRule(rolloutRoleRule())} in a Role, or turn handoverOnShutdown off`, { cause: error });
    }
    if (error instanceof ApiError && error.statusCode === 404) {
      throw new RolloutSuccessorError(`pod ${namespace}/${podName} does not exist: the identity must be the pod's name (POD_NAME)`, { cause: error });
    }
    throw error;
  } finally {
    client.release();
  }
}
