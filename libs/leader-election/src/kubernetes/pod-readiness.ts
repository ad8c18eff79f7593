/**
 * Holds an election back until this instance's own Pod is Ready (Spring Cloud Kubernetes'
 * wait-for-pod-ready): a replica whose readiness checks fail — still warming caches, or broken —
 * never leads, and once its Pod turns Ready it campaigns. Only the first wait: readiness lost later
 * does not end a term (a probe failing while the apiserver is away would otherwise move leadership).
 * Reads its Pod every retryPeriod; needs pods get (rolloutRoleRule()).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { LeaderElector } from '../core/leader-elector.js';
import type { ElectorLogger } from '../core/options.js';
import { ApiError, LeaseClient } from './lease-client.js';
import { podName } from './pod.js';
import { describeRule, rolloutRoleRule } from './rbac.js';
import { readySince, type PodObject } from './rollout.js';

const MAX_BACKOFF_MS = 30_000;

/** Stands `elector` by until the Pod is Ready, then campaigns. Call before start(); returns the function that stops waiting. */
export function waitForPodReady(elector: LeaderElector, kubeConfig: KubeConfig, logger: ElectorLogger, pod = podName()): () => void {
  const { namespace, retryPeriod } = elector.options;
  if (!pod) {
    logger.warn('waitForPodReady is set but POD_NAME is not: the election does not wait for a Pod. Set POD_NAME from the downward API (fieldRef metadata.name)');
    return () => {};
  }
  void elector.standBy();
  const client = LeaseClient.for(kubeConfig);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  let backoff = retryPeriod;
  let reported = '';
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    client.release();
  };
  const report = (message: string): void => {
    if (message !== reported) logger.warn(message);
    reported = message;
  };
  const check = async (): Promise<void> => {
    try {
      const object = JSON.parse(await client.request('GET', path, undefined, AbortSignal.timeout(Math.max(1_000, retryPeriod)))) as PodObject;
      if (done) return;
      if (readySince(object) !== undefined) {
        logger.log(`pod ${namespace}/${pod} is Ready: ${elector.identity} campaigns for ${elector.options.leaseName}`);
        finish();
        elector.campaign();
        return;
      }
      backoff = retryPeriod;
      report(`pod ${namespace}/${pod} is not Ready: ${elector.identity} waits before campaigning for ${elector.options.leaseName} (waitForPodReady)`);
    } catch (error) {
      if (done) return;
      const status = error instanceof ApiError ? error.statusCode : undefined;
      report(status === 403
        ? `waitForPodReady: not allowed to get pods in namespace "${namespace}", so ${elector.identity} cannot tell whether it is Ready and does not campaign: ` +
          `grant the rule ${describeRule(rolloutRoleRule())} in a Role, or turn waitForPodReady off`
        : status === 404
          ? `waitForPodReady: pod ${namespace}/${pod} does not exist: the identity's Pod must be this process's (POD_NAME); ${elector.identity} does not campaign`
          : `waitForPodReady: cannot read pod ${namespace}/${pod} (${status ? `HTTP ${status}` : (error as Error).message}); ${elector.identity} does not campaign yet`);
      backoff = Math.min(2 * backoff, MAX_BACKOFF_MS);
    }
    if (!done) {
      timer = setTimeout(() => void check(), backoff);
      timer.unref();
    }
  };
  void check();
  return finish;
}
