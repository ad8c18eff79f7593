import { describe, expect, it } from 'vitest';
import { electionHealth } from './election-health.js';
import type { LeaderElector } from './leader-elector.js';

function electorRenewedAgo(age: number | undefined): LeaderElector {
  return {
    lastRenewalAge: () => age,
    options: { leaseDuration: 3_000 },
    identity: 'a',
    leader: 'a',
    isLeader: () => false,
  } as unknown as LeaderElector;
}

describe('electionHealth', () => {
  it('decides on the age it reports: unhealthy only when the reported age is past leaseDuration + tolerance', () => {
    // 3500.3 ms reads 3500: within the limit of 3500, so healthy (it was flaky when decided on the unrounded age).
    expect(electionHealth(electorRenewedAgo(3_500.3), 500)).toMatchObject({ healthy: true, lastRenewAgeMs: 3_500 });
    const late = electionHealth(electorRenewedAgo(3_500.6), 500);
    expect(late).toMatchObject({ healthy: false, lastRenewAgeMs: 3_501 });
    expect(late.message).toBe('the Lease names this instance but it has not renewed for 3501 ms (limit 3500 ms)');
  });

  it('a follower (the Lease does not name it) is healthy', () => {
    expect(electionHealth(electorRenewedAgo(undefined), 500)).toMatchObject({ healthy: true, lastRenewAgeMs: null });
  });
});
