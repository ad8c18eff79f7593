// In-process electors' work on the real control plane, written as users write it (it runs until its
// term's signal aborts), recorded on this process's clock, and the check that no two terms' work
// overlapped. Shared by the integration suites that run several electors in one process.
import { expect } from 'vitest';
import type { Term } from 'nestjs-lease-election';

export interface TermWork {
  /** [start, end) of each term's work; end undefined while it runs. */
  spans: Array<[number, number | undefined]>;
  /** Each term's fencing token, in order. */
  tokens: number[];
}

/** Work for elector.start() that records each term into `into`. */
export function recordTerms(into: TermWork): (term: Term) => Promise<void> {
  return async (term) => {
    const span: [number, number | undefined] = [performance.now(), undefined];
    into.spans.push(span);
    into.tokens.push(term.fencingToken);
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
    span[1] = performance.now();
  };
}

/** No two terms' work overlapped, a term still running counting as running for ever. */
export function expectNoOverlap(all: TermWork[]): void {
  const spans = all.flatMap((c) => c.spans).map(([from, to]) => [from, to ?? Infinity] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
}
