/** The elections on the cluster the module options (or the environment) point at. */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Provider } from '@nestjs/common';
import { systemClock } from './core/clock.js';
import type { ElectionSet, ElectionSetOptions } from './core/election-set.js';
import type { LeaderElector } from './core/leader-elector.js';
import type { ElectorLogger, ResolvedElectorOptions } from './core/options.js';
import { createElectionSet } from './kubernetes/create-election-set.js';
import { createLeaderElector } from './kubernetes/create-leader-elector.js';
import { defaultNamespace, loadKubeConfig } from './kubernetes/kube-config.js';
import { attachLeaderLabel } from './kubernetes/leader-label.js';
import { chooseRolloutSuccessor } from './kubernetes/rollout.js';
import { attachLeaderEvents } from './kubernetes/lease-events.js';
import { waitForPodReady } from './kubernetes/pod-readiness.js';
import { resolveIdentity } from './kubernetes/pod.js';
import type { LeaderElectionModuleOptions } from './interfaces/leader-election-options.interface.js';
import type { BackendIntegrations, LeaseBackend } from './interfaces/lease-backend.interface.js';
import { LEASE_BACKEND } from './leader-election.constants.js';
import { electorLogger } from './leader-election.logger.js';
import { LEADER_ELECTION_OPTIONS } from './leader-election.module-definition.js';

export class KubernetesLeaseBackend implements LeaseBackend {
  readonly clock = systemClock;

  constructor(private readonly kubeConfig: KubeConfig) {}

  identity(configured: string | undefined, logger: ElectorLogger): string {
    return resolveIdentity(configured, logger);
  }

  defaultNamespace(): string | undefined {
    return defaultNamespace(this.kubeConfig);
  }

  createElector(options: ResolvedElectorOptions, logger: ElectorLogger): LeaderElector {
    return createLeaderElector({ ...options, kubeConfig: this.kubeConfig }, { logger });
  }

  createElectionSet(options: ElectionSetOptions, logger: ElectorLogger): ElectionSet {
    return createElectionSet({ ...options, kubeConfig: this.kubeConfig }, { logger });
  }

  chooseSuccessor(identity: string, namespace: string, signal: AbortSignal): Promise<string | undefined> {
    return chooseRolloutSuccessor(this.kubeConfig, namespace, identity, signal);
  }

  attach(elector: LeaderElector, { events, leaderLabel, waitForPodReady: waitForReady }: BackendIntegrations): Array<() => void | Promise<void>> {
    return [
      ...events ? [attachLeaderEvents(elector, this.kubeConfig, electorLogger())] : [],
      ...leaderLabel ? [attachLeaderLabel(elector, this.kubeConfig, leaderLabel, electorLogger())] : [],
      ...waitForReady ? [waitForPodReady(elector, this.kubeConfig, electorLogger())] : [],
    ];
  }
}

export const kubernetesBackendProvider: Provider = {
  provide: LEASE_BACKEND,
  useFactory: (options: LeaderElectionModuleOptions) => new KubernetesLeaseBackend(loadKubeConfig(options.kubeConfig)),
  inject: [LEADER_ELECTION_OPTIONS],
};
