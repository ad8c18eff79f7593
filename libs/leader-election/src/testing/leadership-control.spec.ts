import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Term } from '../core/term.js';
import { OnLeader } from '../decorators/on-leader.decorator.js';
import { FakeClock } from './fake-clock.js';
import { LeaderElectionTestingModule, type LeaderElectionTestingOptions } from './leader-election-testing.module.js';
import { LeadershipControl } from './leadership-control.js';

@Injectable()
class Worker {
  readonly terms: Term[] = [];

  @OnLeader()
  async run(term: Term): Promise<void> {
    this.terms.push(term);
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
  }
}

async function boot(options: LeaderElectionTestingOptions) {
  const app = await (await Test.createTestingModule({ imports: [LeaderElectionTestingModule.forRoot(options)], providers: [Worker] }).compile()).init();
  return { app, control: app.get(LeadershipControl), worker: app.get(Worker) };
}

describe('the testing kit', () => {
  beforeEach(() => {
    for (const level of ['log', 'warn', 'error'] as const) vi.spyOn(Logger.prototype, level).mockImplementation(() => {});
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('never moves time backwards when advances overlap', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 5_000);
    await Promise.all([clock.advance(5_000), clock.advance(1)]);
    expect(clock.now()).toBe(5_001);
    expect(seen).toEqual([5_000]);
  });

  it("keeps working under the runner's fake timers (setImmediate and queueMicrotask faked too)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'queueMicrotask', 'Date'] });
    const { app, control, worker } = await boot({ lossPolicy: 'rejoin' });
    const term = await control.grant();
    expect(worker.terms).toEqual([term]);
    await control.revoke();
    expect(term.signal.aborted).toBe(true);
    await app.close();
  });

  it("under lossPolicy 'exit' an instance that lost leaves the election for good, as its process would", async () => {
    const { app, control, worker } = await boot({ lossPolicy: 'exit' });
    await control.grant();
    await control.revoke('lease-taken');
    expect(control.exitCode).toBe(1);
    await control.advance(60_000); // the other replica's lease runs out: nobody takes it over here
    expect(worker.terms).toHaveLength(1);
    expect(app.get(LeadershipControl).lease().elector.isRunning).toBe(false);
    await expect(control.grant()).rejects.toThrow("this instance exited (lossPolicy 'exit', code 1): it leads no more");
    await app.close();
  });

  it('says what did not happen when a grant cannot succeed', async () => {
    const { app, control } = await boot({ lossPolicy: 'rejoin' });
    control.lease().lock.failure = 'forbidden';
    await expect(control.grant()).rejects.toThrow('grant(): election "default" did not begin a term within 60000 ms of fake time');
    control.lease().lock.failure = undefined;
    await app.close();
  });
});
