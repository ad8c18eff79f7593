import { Injectable, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cron, Interval, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElectionService } from '../leader-election.service.js';
import { LeaderElectionTestingModule } from '../testing/leader-election-testing.module.js';
import { LeadershipControl } from '../testing/leadership-control.js';
import { LeaderOnly } from './leader-only.decorator.js';
import { leaderSchedule } from './leader-schedule.extension.js';
import type { LeaderScheduleOptions } from './leader-schedule.options.js';
import { LeaderSchedules } from './leader-schedules.js';
import { LeaderSchedulerRegistry } from './leader-scheduler.registry.js';
import type { RunContext } from './run-context.js';
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

/** The previous leader's record: every tick up to `done` settled, and `also` after it. */
function seed(control: LeadershipControl, done: number, also: number[] = []): void {
  control.lease().store.annotate({ [DEFAULT_ANNOTATION_KEY]: JSON.stringify({ v: 1, jobs: { tick: {
    done: new Date(done).toISOString(), also: also.map((tick) => new Date(tick).toISOString()) } } }) });
}
const second = (control: LeadershipControl): number => Math.floor(control.clock.wallNow().getTime() / SECOND) * SECOND;

const read = (method: object): unknown[] => ['SCHEDULER_TYPE', 'SCHEDULER_NAME'].map((key) => Reflect.getMetadata(key, method));

async function boot(options: LeaderScheduleOptions = {}, registry?: Registry) {
  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), LeaderElectionTestingModule.forRoot({
      extensions: [leaderSchedule(options)], ...registry ? { metrics: { registry } } : {},
    })],
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

  describe('a new leader and the ticks that fell due before its term', () => {
    it("'catch-up' runs each unsettled tick once, at once, and not the settled ones", async () => {
      const { app, control, jobs } = await boot();
      const now = second(control);
      seed(control, now - 5 * SECOND, [now - 3 * SECOND]);
      await control.grant();
      const caughtUp = jobs.runs.filter((run) => run.kind === 'catch-up').map((run) => run.id);
      expect(caughtUp).toEqual([4, 2, 1, 0].map((k) => `tick@${new Date(now - k * SECOND).toISOString()}`));
      await control.advance(2 * SECOND);
      const scheduled = jobs.runs.filter((run) => run.kind === 'scheduled').map((run) => run.id);
      expect(scheduled).toEqual([1, 2].map((k) => `tick@${new Date(now + k * SECOND).toISOString()}`));
      await app.close();
    });

    it("'skip' drops them and says so; maxCatchUp bounds 'catch-up' to the latest ones", async () => {
      const skipping = await boot({ missed: 'skip' });
      const now = second(skipping.control);
      seed(skipping.control, now - 5 * SECOND);
      await skipping.control.grant();
      await skipping.control.advance(SECOND);
      expect(skipping.jobs.runs.map((run) => run.kind)).toEqual(['scheduled']);
      expect(vi.mocked(Logger.prototype.warn).mock.calls.flat().join('\n')).toContain('leader-only job tick: skipped 5 ticks');
      await skipping.app.close();

      const bounded = await boot({ maxCatchUp: 2 });
      seed(bounded.control, now - 5 * SECOND);
      await bounded.control.grant();
      expect(bounded.jobs.runs.filter((run) => run.kind === 'catch-up').map((run) => run.id))
        .toEqual([1, 0].map((k) => `tick@${new Date(now - k * SECOND).toISOString()}`));
      await bounded.app.close();
    });
  });

  it('a run that ignores its signal past settleTimeout: the lease is left to expire, and the tick stays unsettled for the successor', async () => {
    const { app, control, jobs } = await boot();
    await control.grant();
    await control.advance(SECOND);
    const settledRecord = control.lease().store.snapshot()!.annotations[DEFAULT_ANNOTATION_KEY];
    jobs.workMs = 0;
    // A run that never ends, whatever its signal says.
    vi.spyOn(jobs, 'tick').mockImplementation(() => new Promise(() => {}));
    await control.advance(SECOND);
    void app.get(LeaderElectionService).stepDown();
    await control.advance(60 * SECOND); // past settleTimeout (30 s)
    const lease = control.lease().store.snapshot()!;
    expect(lease.record.holderIdentity).toBe('this-instance'); // not released: left to expire
    expect(lease.annotations[DEFAULT_ANNOTATION_KEY]).toBe(settledRecord);
    await app.close();
  });

  it('says what is wrong with the options, all at once, when the module is built', () => {
    expect(() => leaderSchedule({ missed: 'twice' as 'skip', maxCatchUp: -1, annotationKey: 'kubernetes.io/x', record: 'never' as 'on-renewal' }))
      .toThrow(/missed must be 'catch-up' or 'skip'[\s\S]*maxCatchUp must be a whole number[\s\S]*annotationKey must be[\s\S]*record must be/);
  });

  it('fails at startup for a @LeaderOnly() without a schedule, an unknown election, and duplicate names', async () => {
    @Injectable()
    class Wrong {
      @LeaderOnly()
      notScheduled(): void {}

      @Cron('* * * * * *', { name: 'dup', timeZone: 'UTC' })
      @LeaderOnly('nowhere')
      elsewhere(): void {}

      @Interval('dup', 1000)
      @LeaderOnly()
      one(): void {}

      @Timeout('dup', 1000)
      @LeaderOnly()
      two(): void {}

      @Cron('* * * * * *', { timeZone: 'UTC', initialDelay: 5000 })
      @LeaderOnly()
      delayed(): void {}
    }
    const building = Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), LeaderElectionTestingModule.forRoot({ extensions: [leaderSchedule()] })],
      providers: [Wrong],
    }).compile();
    await expect(building).rejects.toThrow(/Wrong.notScheduled is @LeaderOnly\(\) but has no @Cron[\s\S]*no election named "nowhere"[\s\S]*Wrong.two and Wrong.one are both leader-only job "dup"[\s\S]*Wrong.delayed: initialDelay is not supported/);
  });

  it('a useValue provider\'s jobs are leader-only too; a useFactory provider\'s, made too late to hand off, fail the start instead of running everywhere', async () => {
    class ValueJobs {
      @Cron('* * * * * *', { name: 'value-tick', timeZone: 'UTC' })
      @LeaderOnly()
      tick(): void {}
    }
    class FactoryJobs {
      @Cron('* * * * * *', { name: 'factory-tick', timeZone: 'UTC' })
      @LeaderOnly()
      tick(): void {}
    }
    const withValue = await (await Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), LeaderElectionTestingModule.forRoot({ extensions: [leaderSchedule()] })],
      providers: [{ provide: 'value-jobs', useValue: new ValueJobs() }],
    }).compile()).init();
    expect(withValue.get(SchedulerRegistry).getCronJobs().has('value-tick')).toBe(false);
    expect(withValue.get(LeaderSchedules).of('default').jobNames).toEqual(['value-tick']);
    await withValue.close();
    const withFactory = await Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), LeaderElectionTestingModule.forRoot({ extensions: [leaderSchedule()] })],
      providers: [{ provide: FactoryJobs, useFactory: () => new FactoryJobs() }],
    }).compile();
    await expect(withFactory.init()).rejects.toThrow('FactoryJobs.tick is a leader-only job on a provider made by useFactory');
    await withFactory.close().catch(() => { /* Nest 11.0 rethrows the failed init from close() */ });
  });

  it('gives the jobs back to @nestjs/schedule when the app closes: an app built later without leaderSchedule() runs them as usual', async () => {
    @Injectable()
    class Shared {
      @Interval('shared-beat', 60_000)
      @LeaderOnly()
      beat(): void {}
    }
    const first = await (await Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), LeaderElectionTestingModule.forRoot({ extensions: [leaderSchedule()] })],
      providers: [Shared],
    }).compile()).init();
    expect(first.get(SchedulerRegistry).getIntervals()).not.toContain('shared-beat');
    await first.close();
    const later = await (await Test.createTestingModule({ imports: [ScheduleModule.forRoot()], providers: [Shared] }).compile()).init();
    expect(later.get(SchedulerRegistry).getIntervals()).toContain('shared-beat');
    await later.close();
  });

  it('checks the @nestjs/schedule metadata it reads: the keys and kinds of the installed version', () => {
    class Probe {
      @Cron('* * * * * *', { name: 'c', timeZone: 'UTC' })
      c(): void {}

      @Interval('i', 10)
      i(): void {}

      @Timeout('t', 20)
      t(): void {}
    }
    expect(read(Probe.prototype.c)).toEqual([1, 'c']);
    expect(read(Probe.prototype.t)).toEqual([2, 't']);
    expect(read(Probe.prototype.i)).toEqual([3, 'i']);
    expect(Reflect.getMetadata('SCHEDULE_CRON_OPTIONS', Probe.prototype.c)).toMatchObject({ cronTime: '* * * * * *', timeZone: 'UTC' });
    expect(Reflect.getMetadata('SCHEDULE_INTERVAL_OPTIONS', Probe.prototype.i)).toEqual({ timeout: 10 });
    expect(Reflect.getMetadata('SCHEDULE_TIMEOUT_OPTIONS', Probe.prototype.t)).toEqual({ timeout: 20 });
  });

  it('counts runs, catch-ups and skips in the per-job metrics beside the election metrics', async () => {
    const registry = new Registry();
    const { app, control, jobs } = await boot({ maxCatchUp: 1 }, registry);
    const now = second(control);
    seed(control, now - 3 * SECOND);
    await control.grant();
    await control.advance(2 * SECOND);
    const text = await registry.metrics();
    const value = (line: string): number => Number(new RegExp(`^${line.replaceAll(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1]);
    expect(value('leader_schedule_runs_total{name="test-election",job="tick",outcome="completed",kind="catch-up"}')).toBe(1);
    expect(value('leader_schedule_runs_total{name="test-election",job="tick",outcome="completed",kind="scheduled"}'))
      .toBe(jobs.runs.filter((run) => run.kind === 'scheduled').length);
    expect(value('leader_schedule_ticks_caught_up_total{name="test-election",job="tick"}')).toBe(1);
    expect(value('leader_schedule_ticks_skipped_total{name="test-election",job="tick",reason="missed"}')).toBe(2);
    expect(text).toContain('leader_election_master_status{name="test-election"} 1');
    await app.close();
  });

  it('run-time jobs: added while following they start with the term; deleting one awaits its run in flight', async () => {
    const { app, control } = await boot();
    const registry = app.get(LeaderSchedulerRegistry);
    const seen: RunContext[] = [];
    let finish!: () => void;
    registry.addCronJob('dynamic', '* * * * * *', (run) => {
      seen.push(run);
      return new Promise<void>((resolve) => (finish = resolve));
    }, { timeZone: 'UTC', waitForCompletion: true });
    expect(registry.doesExist('dynamic')).toBe(true);
    expect(() => registry.addInterval('dynamic', 1000, () => {})).toThrow('a leader-only job named "dynamic" already exists');
    await control.advance(5 * SECOND);
    expect(seen).toEqual([]);
    const term = await control.grant();
    await control.advance(3 * SECOND); // one run, in flight: waitForCompletion skips the ticks due meanwhile
    expect(seen.map((run) => run.fencingToken)).toEqual([term.fencingToken]);
    let deleted = false;
    const deleting = registry.deleteJob('dynamic').then(() => (deleted = true));
    await control.advance(0);
    expect(deleted).toBe(false);
    finish();
    await deleting;
    expect(registry.getJobNames()).not.toContain('dynamic');
    await control.advance(3 * SECOND);
    expect(seen).toHaveLength(1);
    expect(() => registry.deleteJob('dynamic')).toThrow('no leader-only job named "dynamic"');
    expect(() => registry.addTimeout('', 10, () => {})).toThrow('the name must be a non-empty string');
    await app.close();
  });
});
