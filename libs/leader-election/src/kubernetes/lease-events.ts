/**
 * Kubernetes Events on the Lease when this instance becomes or stops being leader, as client-go
 * records them (events.k8s.io/v1, reason LeaderElection). Best effort: without the right to
 * create events it says so once and carries on.
 */
import { randomBytes } from 'node:crypto';
import { ApiException, EventsV1Api, V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import type { LeaderElector } from '../core/leader-elector.js';
import type { ElectorLogger } from '../core/options.js';
import { describeRule, eventsRoleRule } from './rbac.js';

export const REPORTING_CONTROLLER = 'nestjs-lease-election';

export function attachLeaderEvents(elector: LeaderElector, kubeConfig: KubeConfig, logger: ElectorLogger): () => void {
  const api = kubeConfig.makeApiClient(EventsV1Api);
  const { leaseName, namespace, identity } = elector.options;
  let warned = false;
  const record = async (note: string): Promise<void> => {
    try {
      await api.createNamespacedEvent({
        namespace,
        body: {
          // client-go's naming: the object's name and a unique hex suffix.
          metadata: { name: `${leaseName}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
          eventTime: new V1MicroTime(),
          reportingController: REPORTING_CONTROLLER,
          reportingInstance: identity,
          action: 'LeaderElection',
          reason: 'LeaderElection',
          type: 'Normal',
          note,
          regarding: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: leaseName, namespace },
        },
      });
    } catch (error) {
      if (warned) return;
      warned = true;
      const forbidden = error instanceof ApiException && error.code === 403;
      logger.warn(forbidden
        ? `cannot record leader election Events in namespace "${namespace}" (403); add the Role rule ` +
          `${describeRule(eventsRoleRule())} to see them in kubectl describe lease`
        : `cannot record leader election Events: ${error instanceof ApiException ? `HTTP ${error.code}` : String(error)}`);
    }
  };
  const subscription = elector.events$.subscribe((event) => {
    if (event.type === 'acquired') void record(`${identity} became leader`);
    if (event.type === 'lost') void record(`${identity} stopped leading`);
  });
  return () => subscription.unsubscribe();
}
