import type { Registry } from 'prom-client';
import type { LeaderElectorOptions } from '../core/options.js';
import type { KubernetesPlacement } from '../kubernetes/create-leader-elector.js';
import type { LeaderLabelOptions } from '../kubernetes/leader-label.js';

/** What happens when an @OnLeader method throws while this instance still leads. */
export type WorkErrorPolicy =
  /** Log it and call the method again after a backoff (1 s, doubling up to 30 s). */
  | 'restart'
  /** Log it, give the lease up (stepDown) and let a peer try. */
  | 'step-down';

/** One election: a Lease and how it is held, as a LeaderElector takes it, with the namespace defaulted. */
export interface ElectionOptions extends Omit<LeaderElectorOptions, 'namespace' | 'identity'>, Pick<KubernetesPlacement, 'namespace'> {
  /** Default for the @OnLeader methods of this election. Default 'restart'. */
  workErrorPolicy?: WorkErrorPolicy;
}

/**
 * A set of elections shared out over the replicas (`sets` in the module options): each replica
 * leads about M / N of them. Its Leases are `<set>-<election>`, and each replica's member Lease
 * `<set>-member-<identity>`. Inherits the default election's options and overrides what it sets.
 */
export interface ElectionSetModuleOptions extends Partial<Omit<ElectionOptions, 'leaseName' | 'releaseOnStop' | 'coordinated'>> {
  /** The elections: a count n for the names `0` … `n-1`, or a list of names. */
  elections: number | string[];
}

export interface HealthServerOptions {
  /** TCP port for /healthz, /livez and /readyz; 0 picks a free one. */
  port: number;
  /** Default '0.0.0.0' so the kubelet can reach it. */
  host?: string;
}

/** `LeaderElectionModule.forRoot()`: the default election's options, this instance's, and the integrations'. */
export interface LeaderElectionModuleOptions extends ElectionOptions, Pick<KubernetesPlacement, 'identity' | 'kubeConfig'> {
  /** More elections by name, for `@OnLeader('name')`; each inherits the options above and overrides what it sets. */
  elections?: Record<string, Partial<ElectionOptions> & { leaseName: string }>;
  /** Sets of elections shared out over the replicas, by set name, for `@OnLeader('<set>/*')`. */
  sets?: Record<string, ElectionSetModuleOptions>;
  /** Extra time past leaseDuration before a leader that cannot renew reports unhealthy, in ms. Default 20000. */
  healthTolerance?: number;
  /** The app's own liveness check, served with the election's health; throw (or reject) when unhealthy. */
  livenessCheck?: () => unknown;
  /** Serve health on a port of its own, for apps without an HTTP server. */
  healthServer?: HealthServerOptions;
  /**
   * Prometheus metrics through prom-client (install it): true for its global registry (the one
   * @willsoto/nestjs-prometheus serves), or a registry of your own. Also served at /metrics on the healthServer.
   */
  metrics?: boolean | { registry: Registry };
  /** Record Kubernetes Events on the Lease when this instance becomes or stops being leader. Default true. */
  events?: boolean;
  /** Label this instance's Pod while it leads, e.g. `{ key: 'leader' }`; needs pods/patch in the Role. */
  leaderLabel?: LeaderLabelOptions;
  /**
   * 'rollout': on shutdown, hand each election this instance leads to a Ready pod of the same
   * Deployment or StatefulSet, of another revision if there is one, instead of releasing it; needs
   * pods get and list in the Role. Default: release.
   */
  handoverOnShutdown?: 'rollout' | false;
  /**
   * Do not campaign until this instance's Pod is Ready (its own readiness checks pass), for every
   * election but those of sets; needs pods get in the Role. Default false.
   */
  waitForPodReady?: boolean;
}
