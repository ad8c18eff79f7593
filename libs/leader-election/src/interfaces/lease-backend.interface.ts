import type { Clock } from '../core/clock.js';
import type { ElectionSet, ElectionSetOptions } from '../core/election-set.js';
import type { LeaderElector } from '../core/leader-elector.js';
import type { ElectorLogger, ResolvedElectorOptions } from '../core/options.js';
import type { LeaderLabelOptions } from '../kubernetes/leader-label.js';

/**
 * Where the module's elections run: a Kubernetes cluster (LeaderElectionModule) or memory with a
 * clock the test drives (LeaderElectionTestingModule). The one provider the two modules differ in.
 */
export interface LeaseBackend {
  /** This instance's identity when the options set none. */
  identity(configured: string | undefined, logger: ElectorLogger): string;
  /** The namespace of elections that set none. */
  defaultNamespace(): string | undefined;
  /** An elector for one election, on its Lease. */
  createElector(options: ResolvedElectorOptions, logger: ElectorLogger): LeaderElector;
  /** A set of elections shared out over the replicas, with its Leases and its member directory. */
  createElectionSet(options: ElectionSetOptions, logger: ElectorLogger): ElectionSet;
  /**
   * Optional: whom `identity` should hand leadership to as it shuts down (handoverOnShutdown:
   * 'rollout'); undefined for nobody, in which case the lease is released.
   */
  chooseSuccessor?(identity: string, namespace: string, signal: AbortSignal): Promise<string | undefined>;
  /** The electors' time; the restart backoff of @OnLeader methods runs on it too. */
  readonly clock: Clock;
  /** What the backend adds to each election (Events, the pod label); each returns the function that detaches it. */
  attach(elector: LeaderElector, integrations: BackendIntegrations): Array<() => void | Promise<void>>;
}

export interface BackendIntegrations {
  events: boolean;
  /** Only for the default election: one label per Pod. */
  leaderLabel: LeaderLabelOptions | undefined;
  /** Stand by until this instance's Pod is Ready (not for sets' electors, which the set stands by). */
  waitForPodReady: boolean;
}
