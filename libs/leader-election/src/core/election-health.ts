/**
 * Health of an election for liveness probes, with client-go's HealthzAdaptor semantics: a
 * follower is healthy; an instance that the Lease still names but that has not renewed for longer
 * than leaseDuration + tolerance is not, so the kubelet restarts a leader that is wedged or cut off.
 */
import type { LeaderElector } from './leader-elector.js';

/** client-go's core components use 20 s. */
export const DEFAULT_HEALTH_TOLERANCE_MS = 20_000;

export interface ElectionHealth {
  healthy: boolean;
  identity: string;
  leader: string | null;
  isLeader: boolean;
  /** Milliseconds since the last successful renewal, while the Lease names this instance. */
  lastRenewAgeMs: number | null;
  message?: string;
}

export function electionHealth(elector: LeaderElector, toleranceMs = DEFAULT_HEALTH_TOLERANCE_MS): ElectionHealth {
  const exactAge = elector.lastRenewalAge();
  // Decided on the age it reports, so an unhealthy report never shows an age within the limit.
  const age = exactAge === undefined ? undefined : Math.round(exactAge);
  const limit = elector.options.leaseDuration + toleranceMs;
  const healthy = age === undefined || age <= limit;
  return {
    healthy,
    identity: elector.identity,
    leader: elector.leader ?? null,
    isLeader: elector.isLeader(),
    lastRenewAgeMs: age ?? null,
    ...(healthy ? {} : { message: `the Lease names this instance but it has not renewed for ${age} ms (limit ${limit} ms)` }),
  };
}
