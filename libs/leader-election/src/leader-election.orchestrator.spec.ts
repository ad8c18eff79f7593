import { getEventListeners } from 'node:events';
import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Term } from './core/term.js';
import { OnLeader } from './decorators/on-leader.decorator.js';
import { LeaderElectionTestingModule } from './testing/leader-election-testing.module.js';
import { LeadershipControl } from './testing/leadership-control.js';

describe('LeaderElectionOrchestrator', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('restarts a failing @OnLeader method with backoff and leaves no listener per restart on the term\'s signal', async () => {
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => {});
    let calls = 0;
    let term: Term | undefined;
    @Injectable()
    class Failing {
      @OnLeader()
      async run(t: Term): Promise<void> {
        term = t;
        if (++calls <= 5) throw new Error('boom');
        await new Promise((resolve) => t.signal.addEventListener('abort', resolve, { once: true }));
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [LeaderElectionTestingModule.forRoot()],
      providers: [Failing],
    }).compile();
    const app = await moduleRef.init();
    const control = app.get(LeadershipControl);
    await control.grant();
    await control.advance(1_000 + 2_000 + 4_000 + 8_000 + 16_000);
    expect(calls).toBe(6);
    // Only the running method's own listener: none left over from the five restart pauses.
    expect(getEventListeners(term!.signal, 'abort')).toHaveLength(1);
    await app.close();
  });
});
