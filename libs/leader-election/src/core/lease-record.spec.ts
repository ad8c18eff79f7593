import { describe, expect, it } from 'vitest';
import { formatMicroTime, parseLease, recordToSpec } from './lease-record.js';

describe('Lease records', () => {
  it('formats MicroTime in UTC with exactly six fractional digits', () => {
    expect(formatMicroTime(new Date('2026-01-02T03:04:05.123Z'))).toBe('2026-01-02T03:04:05.123000Z');
  });

  it('round-trips a record through the wire format', () => {
    const record = {
      holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 3,
      acquireTime: new Date('2026-01-02T03:04:05.123Z'), renewTime: new Date('2026-01-02T03:04:07.456Z'),
    };
    const parsed = parseLease({ metadata: { resourceVersion: '42' }, spec: recordToSpec(record, formatMicroTime) });
    expect(parsed).toMatchObject({ resourceVersion: '42', problems: [], record });
  });

  it('reads client-go timestamps with microseconds', () => {
    const parsed = parseLease({ metadata: { resourceVersion: '1' }, spec: { holderIdentity: 'go', leaseDurationSeconds: 15, renewTime: '2026-01-02T03:04:05.123456Z' } });
    expect(parsed.record.renewTime?.toISOString()).toBe('2026-01-02T03:04:05.123Z');
    expect(parsed.problems).toEqual([]);
  });
});
