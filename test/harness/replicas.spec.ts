import { describe, expect, it } from 'vitest';
import { OverlapDetector, type ObservedLine } from './replicas.ts';

const work = (id: string, term: number, second: number): ObservedLine =>
  ({ time: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(), id, event: 'work', leader: id, term, at: second * 1000 });

describe('OverlapDetector', () => {
  it('accepts terms that follow one another, and flags a term still working after the next began', () => {
    const detector = new OverlapDetector();
    for (const line of [work('a', 1, 0), work('a', 1, 1), work('b', 2, 2), work('b', 2, 3)]) detector.observe(line);
    expect(detector.overlaps()).toEqual([]);
    detector.observe(work('a', 1, 4));
    expect(detector.overlaps()).toEqual(['a (term 1) worked at 2026-01-01T00:00:04.000Z, after b (term 2) started at 2026-01-01T00:00:02.000Z']);
    expect(detector.terms).toBe(2);
  });

  it('tells apart two processes with one identity, even in one term', () => {
    const detector = new OverlapDetector();
    detector.observe(work('pod-0', 3, 0), 'first');
    detector.observe(work('pod-0', 3, 1), 'second');
    detector.observe(work('pod-0', 3, 2), 'first');
    expect(detector.overlapping()).toHaveLength(1);
    expect(detector.overlaps()[0]).toBe('pod-0 [first] (term 3) worked at 2026-01-01T00:00:02.000Z, after pod-0 [second] (term 3) started at 2026-01-01T00:00:01.000Z');
    // Keyed by identity alone, the same lines look like one process working on.
    const byIdentity = new OverlapDetector();
    for (const second of [0, 1, 2]) byIdentity.observe(work('pod-0', 3, second));
    expect(byIdentity.overlaps()).toEqual([]);
  });

  it("tells apart a process's terms that carry the same fencing token (client-go restarts at 0 on a re-created Lease)", () => {
    const started = (id: string, term: number, second: number): ObservedLine => ({ ...work(id, term, second), event: 'started-leading' });
    const lines = [started('go', 0, 0), work('go', 0, 1), started('ours', 7, 2), work('ours', 7, 3), started('go', 0, 4), work('go', 0, 5)];
    const detector = new OverlapDetector();
    for (const line of lines) detector.observe(line);
    expect(detector.overlaps()).toEqual([]);
    expect(detector.terms).toBe(2);
    // Keyed by fencing token alone, client-go's two terms 0 look like one that outlived term 7.
    const byToken = new OverlapDetector();
    for (const line of lines) if (line.event === 'work') byToken.observe(line);
    expect(byToken.overlaps()).toEqual(['go (term 0) worked at 2026-01-01T00:00:05.000Z, after ours (term 7) started at 2026-01-01T00:00:03.000Z']);
  });
});
