import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cron, Interval, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElectionService } from '../leader-election.service.js';
import { LeaderElectionTestingModule } from '../testing/leader-election-testing.module.js';
import { LeadershipControl } from '../testing/leadership-control.js';
import { LeaderOnly } from './leader-only.decorator.js';
import { leaderSchedule } from './leader-schedule.extension.js';
import type { LeaderScheduleOptions } from './leader-schedule.options.js';
import { LeaderSchedules } from './leader-schedules.js';
import { ScheduledRun } from './scheduled-run.js';
import { DEFAULT_ANNOTATION_KEY } from './leader-schedule.options.js';

interface Seen {
  id: string;
  kind: string;
  token: number;
  at: number;
  validAtStart: boolean;
}

const SECOND = 1000;

@Injectable()
class Jobs {
  readonly runs: Seen[] = [];
  everywhere = 0;
  /** Work time of each run; the run rejects when its signal aborts. */
  workMs = 0;

  constructor(private readonly run: ScheduledRun, private readonly control: LeadershipControl) {}

  @Cron('* * * * * *', { name: 'tick', timeZone: 'UTC' })
  @LeaderOnly()
  async tick(): Promise<void> {
    const { tick, fencingToken, term, signal } = this.run.current();
    this.runs.push({ id: tick.id, kind: tick.kind, token: fencingToken, at: this.control.clock.now(), validAtStart: term.isValid() });
    if (this.workMs === 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = this.control.clock.setTimeout(resolve, this.workMs);
      signal.addEventListener('abort', () => {
        this.control.clock.clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  }

  @LeaderOnly()
  @Interval('beat', 5 * SECOND)
  beat(): void {}

  @Timeout('boot', 0)
  @LeaderOnly()
  boot(): void {}

  @Cron('* * * * * *', { name: 'everywhere' })
  plain(): void {
    this.everywhere++;
  }
}

async function boot(options: LeaderScheduleOptions = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), LeaderElectionTestingModule.forRoot({ extensions: [leaderSchedule(options)] })],
    providers: [Jobs],
  }).compile();
  const app = await moduleRef.init();
  return { app, control: app.get(LeadershipControl), jobs: app.get(Jobs), registry: app.get(SchedulerRegistry) };
}

describe('leader-only scheduled jobs', () => {
  beforeEach(() => {
    for (const level of ['log', 'warn', 'error'] as const) vi.spyOn(Logger.prototype, level).mockImplementation(() => {});
  });
  afterEach(() => vi.restoreAllMocks());

  it('takes leader-only jobs from @nestjs/schedule (either decorator order) and leaves the others to it', async () => {
    const { app, registry } = await boot();
    expect(registry.getCronJobs().has('tick')).toBe(false);
    expect(registry.getIntervals()).not.toContain('beat');
    expect(registry.getTimeouts()).not.toContain('boot');
    expect(registry.getCronJobs().has('everywhere')).toBe(true);
    expect(app.get(LeaderSchedules).of('default').jobNames.sort()).toEqual(['beat', 'boot', 'tick']);
    await app.close();
  });

  it('a follower never runs a leader-only job; a leader runs each tick at its instant, with its identity and fencing token', async () => {
    const { app, control, jobs } = await boot();
    const { store } = control.lease();
    for (let i = 0; i < 20; i++) {
      store.put(store.snapshot()!.object.spec); // the other replica renews
      await control.advance(5 * SECOND);
    }
    expect(jobs.runs).toEqual([]);
    expect(jobs.everywhere).toBe(0); // @nestjs/schedule's own timers are real ones: no time passed for them
    const term = await control.grant();
    const from = control.clock.wallNow().getTime();
    await control.advance(3 * SECOND);
    const expected = [1, 2, 3].map((k) => `tick@${new Date((Math.floor(from / SECOND) + k) * SECOND).toISOString()}`);
    expect(jobs.runs.map((run) => run.id)).toEqual(expected);
    expect(jobs.runs.every((run) => run.token === term.fencingToken && run.kind === 'scheduled' && run.validAtStart)).toBe(true);
    await app.close();
  });

  it('records settled ticks in the Lease as each run completes, and the release carries the last record', async () => {
    const { app, control, jobs } = await boot();
    await control.grant();
    await control.advance(2 * SECOND);
    const record = JSON.parse(control.lease().store.snapshot()!.annotations[DEFAULT_ANNOTATION_KEY]) as { jobs: Record<string, { done: string }> };
    expect(`tick@${record.jobs.tick.done}`).toBe(jobs.runs.at(-1)!.id);
    jobs.workMs = 5 * SECOND;
    const first = jobs.runs.length;
    await control.advance(SECOND); // a run starts and is in flight
    const inFlight = jobs.runs[first].id;
    const stepped = app.get(LeaderElectionService).stepDown();
    await control.clock.runUntil(() => control.lease().store.snapshot()!.free, 10 * SECOND);
    await stepped;
    const released = JSON.parse(control.lease().store.snapshot()!.annotations[DEFAULT_ANNOTATION_KEY]) as { jobs: Record<string, { done: string }> };
    // The cancelled tick is not settled: the watermark stays just below it, for the successor.
    expect(new Date(released.jobs.tick.done).getTime()).toBe(Date.parse(inFlight.slice('tick@'.length)) - 1);
    await app.close();
  });
});
