/**
 * LeaderScheduler on its own (no Nest): an in-memory Lease, a fake clock whose wall clock can jump,
 * and the edges a hostile review found.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector } from '../core/leader-elector.js';
import { LockError } from '../core/lease-lock.js';
import type { AnnotationChanges, LeaseRecord, LeaseSnapshot } from '../core/lease-record.js';
import { FakeClock } from '../testing/fake-clock.js';
import { InMemoryLeaseLock, InMemoryLeaseStore } from '../testing/in-memory-lease-lock.js';
import { LeaderScheduler, type ScheduledJob } from './leader-scheduler.js';
import type { RunContext } from './run-context.js';
import { cronTimetable, intervalTimetable } from './timetable.js';

const KEY = 'nestjs-lease-election/schedule';
const silent = { log: () => {}, warn: () => {}, error: () => {} };

/** A fake clock whose wall clock can be stepped (NTP, a resumed VM) apart from the monotonic one. */
class SteppedClock extends FakeClock {
  wallStep = 0;
  override wallNow(): Date {
    return new Date(super.wallNow().getTime() + this.wallStep);
  }
}

/** Refuses writes whose annotations pass the apiserver's 256 KiB in total, as it does (422). */
class AnnotationLimitLock extends InMemoryLeaseLock {
  override update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot> {
    const merged = { ...basedOn.annotations, ...annotations };
    const size = Object.entries(merged).reduce((total, [key, value]) => total + key.length + (value?.length ?? 0), 0);
    if (size > 256 * 1024) return Promise.reject(new LockError('invalid', `metadata.annotations: Too long: must have at most 262144 bytes`));
    return super.update(record, basedOn, signal, annotations);
  }
}

interface Instance { elector: LeaderElector; scheduler: LeaderScheduler; logs: string[]; exits: number[] }

let clock: SteppedClock;
const started: LeaderElector[] = [];

function instance(identity: string, store: InMemoryLeaseStore, options: { record?: 'on-completion' | 'on-renewal'; lock?: InMemoryLeaseLock } = {}): Instance {
  const logs: string[] = [];
  const exits: number[] = [];
  const logger = { log: (m: string) => logs.push(m), warn: (m: string) => logs.push(`WARN ${m}`), error: (m: string) => logs.push(`ERROR ${m}`) };
  const elector = new LeaderElector(
    { leaseName: 'lease', namespace: 'default', identity, lossPolicy: 'rejoin', leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 },
    { lock: options.lock ?? new InMemoryLeaseLock(store), clock, random: () => 0.5, exit: (code) => exits.push(code), logger: silent },
  );
  const scheduler = new LeaderScheduler(elector, clock, { annotationKey: KEY, record: options.record ?? 'on-completion' }, logger);
  return { elector, scheduler, logs, exits };
}

function start(node: Instance): Instance {
  node.elector.start((term) => node.scheduler.runTerm(term));
  started.push(node.elector);
  return node;
}

function every(name: string, ms: number, run: (context: RunContext) => unknown, extra: Partial<ScheduledJob> = {}): ScheduledJob {
  return { name, timetable: intervalTimetable(ms), waitForCompletion: false, missed: 'catch-up', maxCatchUp: 100, run, ...extra };
}

/** A previous term's record for job `j` (free Lease, fencing token 3). */
function seedRecord(store: InMemoryLeaseStore, jobs: Record<string, { done: string; also?: string[] }>): void {
  store.put({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 }, { [KEY]: JSON.stringify({ v: 1, jobs }) });
}

function recordOf(store: InMemoryLeaseStore): { jobs: Record<string, { done: string; also?: string[] }> } {
  return JSON.parse(store.snapshot()!.annotations[KEY]) as { jobs: Record<string, { done: string; also?: string[] }> };
}

/** Resolves after `ms` of fake time, or rejects with the signal's reason when it aborts. */
function busy(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = clock.setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clock.clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

const wholeSecond = (): number => Math.floor(clock.wallNow().getTime() / 1000) * 1000;

afterEach(async () => {
  const stopping = Promise.all(started.splice(0).map((elector) => elector.stop()));
  await clock.advance(120_000);
  await stopping;
});

describe('LeaderScheduler', () => {
  it('a job added again while its removal settles starts once the old run settled, from its record; the lease is never released under a run', async () => {
    clock = new SteppedClock();
    const store = new InMemoryLeaseStore();
    const a = start(instance('a', store));
    const running = new Set<string>();
    const overlaps: string[] = [];
    const job = (label: string, ms: number): ScheduledJob => every('x', 1000, async ({ tick, signal }) => {
      if (running.size > 0) overlaps.push(`${label} ${tick.id} beside ${[...running].join()}`);
      running.add(`${label} ${tick.id}`);
      try {
        await busy(ms, signal);
      } finally {
        running.delete(`${label} ${tick.id}`);
      }
    });
    a.scheduler.add(job('old', 2_500));
    await clock.advance(1_200); // a run of the old job in flight
    const removal = a.scheduler.remove('x'); // not awaited
    a.scheduler.add(job('new', 500));
    await clock.advance(5_000);
    await removal;
    expect(recordOf(store).jobs).toHaveProperty('x');
    let releasedUnderARun = false;
    const stopping = a.elector.stop();
    await clock.runUntil(() => {
      if (store.snapshot()!.free && running.size > 0) releasedUnderARun = true;
      return store.snapshot()!.free;
    }, 60_000);
    await stopping;
    expect({ overlaps, releasedUnderARun, exits: a.exits }).toEqual({ overlaps: [], releasedUnderARun: false, exits: [] });
  });

  it('a run that never settles keeps the record bounded: the leader keeps its lease and says which tick it stopped holding open', async () => {
    clock = new SteppedClock();
    const store = new InMemoryLeaseStore();
    const a = start(instance('a', store, { record: 'on-renewal', lock: new AnnotationLimitLock(store) }));
    let first = true;
    a.scheduler.add(every('j', 100, () => {
      if (!first) return undefined;
      first = false;
      return new Promise(() => {}); // a hung call that ignores its signal
    }));
    const lost: string[] = [];
    a.elector.events$.subscribe((event) => { if (event.type === 'lost') lost.push(event.reason); });
    await clock.advance(1_200_000); // 12,000 ticks
    expect(lost).toEqual([]);
    expect(store.snapshot()!.annotations[KEY].length).toBeLessThan(4_000);
    expect(recordOf(store).jobs.j.also ?? []).toHaveLength(100);
    expect(a.logs.filter((line) => line.includes('still running after 100 later ticks settled'))).toHaveLength(1);
  }, 60_000);

  it('a forward wall-clock step within a term runs the latest tick and applies the policy to the rest (skip: none; catch-up: maxCatchUp)', async () => {
    for (const missed of ['skip', 'catch-up'] as const) {
      clock = new SteppedClock();
      const store = new InMemoryLeaseStore();
      const a = start(instance('a', store));
      const kinds: string[] = [];
      a.scheduler.add(every('j', 1000, ({ tick }) => void kinds.push(tick.kind), { missed, maxCatchUp: 5 }));
      await clock.advance(3_000);
      kinds.length = 0;
      clock.wallStep = 600_000; // NTP steps the clock ten minutes ahead (a resumed VM): 600 ticks due at once
      await clock.advance(1_000);
      expect({ missed, kinds }).toEqual({ missed, kinds: missed === 'skip' ? ['scheduled'] : ['catch-up', 'catch-up', 'catch-up', 'catch-up', 'catch-up', 'scheduled'] });
      expect(a.logs.filter((line) => line.includes('fell due together'))).toHaveLength(missed === 'skip' ? 1 : 2); // skipped; caught up
      await a.elector.stop();
      started.splice(0);
    }
  });

  it('a record whose watermark is far in the future (an edit, a clock a year ahead) is not waited for: a warning, and the job goes on from now', async () => {
    clock = new SteppedClock();
    const store = new InMemoryLeaseStore();
    seedRecord(store, { j: { done: new Date(wholeSecond() + 365 * 86_400_000).toISOString() } });
    const a = instance('a', store);
    let runs = 0;
    a.scheduler.add(every('j', 1000, () => void runs++));
    start(a);
    await clock.advance(60_000);
    expect(runs).toBe(60);
    expect(a.logs.filter((line) => line.startsWith('WARN') && line.includes('in the future for this replica'))).toHaveLength(1);
  });

  it('counting thousands of missed cron ticks at term start does not block the event loop: each job counts in turns of its own', async () => {
    clock = new SteppedClock();
    const store = new InMemoryLeaseStore();
    const eightDaysAgo = new Date(clock.wallNow().getTime() - 8 * 86_400_000).toISOString();
    const jobs: Record<string, { done: string }> = {};
    for (let i = 0; i < 4; i++) jobs[`j${i}`] = { done: eightDaysAgo };
    seedRecord(store, jobs);
    const a = instance('a', store);
    for (let i = 0; i < 4; i++) {
      a.scheduler.add({ name: `j${i}`, timetable: cronTimetable({ cronTime: '0 * * * * *', timeZone: 'UTC' }), waitForCompletion: false,
        missed: 'catch-up', maxCatchUp: 100, run: () => {} });
    }
    let synchronous = 0;
    a.elector.start((term) => {
      const before = performance.now();
      const running = a.scheduler.runTerm(term);
      synchronous = performance.now() - before;
      return running;
    });
    started.push(a.elector);
    await clock.advance(0);
    expect(synchronous).toBeLessThan(50); // was seconds: every job counted its ticks at once
    // 11,520 missed per job, more than are counted: all skipped, each job recorded from now.
    expect(Object.values(recordOf(store).jobs).every(({ done }) => Date.parse(done) >= clock.wallNow().getTime() - 1000)).toBe(true);
    expect(a.logs.filter((line) => line.includes('more than 1000 missed, too many to catch up'))).toHaveLength(4);
  }, 60_000);

  it('remove(), add() twice while the first removal settles, and right as the term starts: the last job goes on from the record (found by review)', async () => {
    clock = new SteppedClock();
    let store = new InMemoryLeaseStore();
    let a = start(instance('a', store));
    const job = (ms: number): ScheduledJob => every('x', 1000, ({ signal }) => busy(ms, signal).catch(() => {}));
    a.scheduler.add(job(2_500));
    await clock.advance(5_200);
    void a.scheduler.remove('x');
    a.scheduler.add(job(10));
    void a.scheduler.remove('x');
    a.scheduler.add(job(10));
    await clock.advance(5_000);
    expect(a.logs.filter((line) => line.includes('has no record'))).toHaveLength(1); // the first job's first term only

    store = new InMemoryLeaseStore();
    seedRecord(store, { x: { done: new Date(wholeSecond() - 10_000).toISOString() } });
    a = instance('b', store);
    const kinds: string[] = [];
    a.scheduler.add(every('x', 1000, ({ tick }) => void kinds.push(tick.kind)));
    const scheduler = a.scheduler;
    a.elector.start((term) => {
      const running = scheduler.runTerm(term);
      void scheduler.remove('x'); // before the job counted its missed ticks
      scheduler.add(every('x', 1000, ({ tick }) => void kinds.push(tick.kind)));
      return running;
    });
    started.push(a.elector);
    await clock.advance(500);
    expect({ noRecord: a.logs.filter((line) => line.includes('has no record')), catchUps: kinds.filter((kind) => kind === 'catch-up').length })
      .toEqual({ noRecord: [], catchUps: 10 });
  });

  it('remove() of an unknown job throws at once, not in a rejected promise', () => {
    clock = new SteppedClock();
    const a = instance('a', new InMemoryLeaseStore());
    expect(() => a.scheduler.remove('nope')).toThrow('no leader-only job named "nope"');
  });

  it('maxCatchUp 0 catches up nothing: every missed tick is skipped', async () => {
    clock = new SteppedClock();
    const store = new InMemoryLeaseStore();
    seedRecord(store, { j: { done: new Date(wholeSecond() - 50_000).toISOString() } });
    const a = instance('a', store);
    const kinds: string[] = [];
    a.scheduler.add(every('j', 1000, ({ tick }) => void kinds.push(tick.kind), { maxCatchUp: 0 }));
    start(a);
    await clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    expect(kinds).toEqual([]);
    expect(a.logs.filter((line) => line.includes('beyond maxCatchUp 0'))).toHaveLength(1);
  });

  it('a run that ignores its signal after stepDown(): the lease is kept until it settles, so the successor never runs that tick beside it', async () => {
    clock = new SteppedClock();
    const store = new InMemoryLeaseStore();
    const inFlight = new Map<string, string>();
    const overlaps: string[] = [];
    let hang = false;
    const run = (who: string) => async ({ tick }: RunContext): Promise<void> => {
      if (inFlight.has(tick.id)) overlaps.push(`${tick.id} on ${inFlight.get(tick.id)} and ${who}`);
      inFlight.set(tick.id, who);
      if (who === 'a' && hang) {
        hang = false;
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 25_000)); // ignores its signal, within settleTimeout
      }
      inFlight.delete(tick.id);
    };
    const a = instance('a', store);
    const b = instance('b', store);
    a.scheduler.add(every('j', 1000, run('a')));
    b.scheduler.add(every('j', 1000, run('b')));
    start(a);
    await clock.advance(0);
    start(b);
    await clock.advance(3_000);
    hang = true;
    await clock.advance(1_000);
    void a.elector.stepDown();
    await clock.advance(60_000);
    expect(b.elector.isLeader()).toBe(true);
    expect({ overlaps, exits: a.exits }).toEqual({ overlaps: [], exits: [] });
  });
});
