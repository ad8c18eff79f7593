import { getEventListeners } from 'node:events';
import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaderElector, type Term } from './elector/leader-elector.js';
import type { LeaderElectionExplorer, LeaderMethod } from './leader-election.explorer.js';
import { LeaderElectionOrchestrator } from './leader-election.orchestrator.js';
import { FakeClock } from './testing/fake-clock.js';
import { InMemoryLeaseLock, InMemoryLeaseStore } from './testing/in-memory-lease-lock.js';

const silent = { log: () => {}, warn: () => {}, error: () => {} };

describe('LeaderElectionOrchestrator', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('restarts a failing @OnLeader method with backoff and leaves no listener per restart on the term\'s signal', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => {});
    const clock = new FakeClock();
    const elector = new LeaderElector({ leaseName: 'lease', namespace: 'default', identity: 'a' },
      { lock: new InMemoryLeaseLock(new InMemoryLeaseStore()), clock, logger: silent });
    let calls = 0;
    let term: Term | undefined;
    const method: LeaderMethod = {
      name: 'Failing.run',
      election: 'default',
      onError: undefined,
      invoke: async (t) => {
        term = t;
        if (++calls <= 5) throw new Error('boom');
        await new Promise((resolve) => t.signal.addEventListener('abort', resolve, { once: true }));
      },
    };
    const explorer = { methodsOf: () => [method] } as unknown as LeaderElectionExplorer;
    const orchestrator = new LeaderElectionOrchestrator(new Map([['default', elector]]), explorer, { leaseName: 'lease', events: false }, {} as never);
    await orchestrator.onApplicationBootstrap();
    await clock.advance(0);
    await vi.advanceTimersByTimeAsync(1_000 + 2_000 + 4_000 + 8_000 + 16_000);
    expect(calls).toBe(6);
    // Only the running method's own listener: none left over from the five restart pauses.
    expect(getEventListeners(term!.signal, 'abort')).toHaveLength(1);
    const stopping = orchestrator.onModuleDestroy();
    await clock.advance(0);
    await stopping;
  });
});
