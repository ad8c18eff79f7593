import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, settle } from '../testing/fake-clock.js';
import { InMemoryLeaseLock, InMemoryLeaseStore } from '../testing/in-memory-lease-lock.js';
import { LockError } from './lease-lock.js';
import type { Candidacy } from './candidacy.js';
import {
  HANDOVER_ANNOTATION, HANDOVER_INTENT_ANNOTATION, LeaderElector, type ElectionEvent, type LeaderElectorDependencies, type LeaderWork,
} from './leader-elector.js';
import { formatMicroTime } from './lease-record.js';
import { LeadershipLostError, type Term } from './term.js';
import type { LeaderElectorOptions } from './options.js';

const silent = { log: () => {}, warn: () => {}, error: () => {} };
const TIMINGS = { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 };

interface Candidate {
  elector: LeaderElector;
  lock: InMemoryLeaseLock;
  events: ElectionEvent[];
  exits: number[];
  warnings: string[];
}

/** Fires every timer early, by up to 2 ms and never more than half its delay, as Node's do against performance.now(). */
class EarlyClock extends FakeClock {
  override setTimeout(callback: () => void, ms: number): unknown {
    return super.setTimeout(callback, ms - Math.min(2, Math.max(0, ms) / 2));
  }
}

describe('LeaderElector', () => {
  let clock: FakeClock;
  let store: InMemoryLeaseStore;
  const started: LeaderElector[] = [];

  function candidate(identity: string, options: Partial<LeaderElectorOptions> = {}, random = () => 0.5,
    dependencies: Partial<LeaderElectorDependencies> = {}): Candidate {
    const lock = new InMemoryLeaseLock(store);
    const exits: number[] = [];
    const warnings: string[] = [];
    const elector = new LeaderElector(
      { leaseName: 'lease', namespace: 'default', identity, lossPolicy: 'rejoin', ...TIMINGS, ...options },
      { lock, clock, random, exit: (code) => exits.push(code), logger: { ...silent, warn: (m) => warnings.push(m) }, ...dependencies },
    );
    const events: ElectionEvent[] = [];
    elector.events$.subscribe((event) => events.push(event));
    return { elector, lock, events, exits, warnings };
  }

  function start(c: Candidate, work?: LeaderWork): Candidate {
    c.elector.start(work);
    started.push(c.elector);
    return c;
  }

  function setup(): void {
    clock = new FakeClock();
    store = new InMemoryLeaseStore();
  }

  /** `a` leads, and each term's work runs until finish() is called; terms() counts the terms begun. */
  async function leaderWithHeldWork(): Promise<{ a: Candidate; finish: () => void; terms: () => number }> {
    let release: (() => void) | undefined;
    let begun = 0;
    const a = start(candidate('a'), () => {
      begun++;
      return new Promise<void>((resolve) => { release = resolve; });
    });
    await clock.advance(0);
    return { a, finish: () => release!(), terms: () => begun };
  }

  afterEach(async () => {
    const stopping = Promise.all(started.splice(0).map((elector) => elector.stop()));
    await clock.advance(60_000); // past any settleTimeout a test's unfinished work runs into
    await stopping;
  });

  it('creates the Lease on first acquisition, with client-go fields and fencing token 0', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.elector.term?.fencingToken).toBe(0);
    const spec = store.object!.spec!;
    expect(spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(spec.acquireTime).toBe(spec.renewTime);
  });

  it('lets exactly one of three candidates lead, and the others report it as leader', async () => {
    setup();
    const all = ['a', 'b', 'c'].map((id) => start(candidate(id)));
    await clock.advance(10_000);
    expect(all.filter((c) => c.elector.isLeader())).toHaveLength(1);
    const leader = store.holder;
    for (const c of all) expect(c.elector.leader).toBe(leader);
    // Losing racers met 409s, not errors.
    expect(all.flatMap((c) => c.events).filter((e) => e.type === 'error')).toHaveLength(0);
  });

  it('renews every retryPeriod with the cached object, without reading first', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    const gets = a.lock.requests.get;
    await clock.advance(20_000);
    expect(a.lock.requests.update).toBe(10);
    expect(a.lock.requests.get).toBe(gets);
    expect(a.elector.term?.fencingToken).toBe(0);
  });

  it('takes over a dead leader only after a full leaseDuration since it last saw the record change', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    const b = start(candidate('b'));
    await clock.advance(1_000);
    expect(b.elector.leader).toBe('a');
    // The leader dies: its requests fail from now on. The last change b saw was a's renewal at 0 or 2 s.
    a.lock.failure = 'unavailable';
    const seenAt = b.elector['observed']!.at;
    const waited = await clock.advanceUntil(() => b.elector.isLeader(), 30_000, 5);
    const takeoverAt = clock.now();
    expect(takeoverAt).toBeGreaterThanOrEqual(seenAt + 15_000);
    // Scheduled for the instant of expiry (plus at most 20 ms spread), not the next poll.
    expect(takeoverAt - (seenAt + 15_000)).toBeLessThanOrEqual(25);
    expect(waited).toBeGreaterThan(0);
    expect(store.object!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(b.elector.term?.fencingToken).toBe(1);
  });

  it('steps down exactly renewDeadline after the last renewal it sent, before anyone can take over', async () => {
    setup();
    let term: Term | undefined;
    const a = start(candidate('a'), (t) => { term = t; });
    await clock.advance(0);
    const b = start(candidate('b'));
    await clock.advance(1_000);
    a.lock.failure = 'unavailable';
    const lastRenewal = a.elector.lastRenewedAt!;
    await clock.advanceUntil(() => term!.signal.aborted, 20_000, 1);
    expect(clock.now()).toBe(lastRenewal + 10_000);
    expect((term!.signal.reason as Error).message).toContain('renew-deadline');
    expect(b.elector.isLeader()).toBe(false);
    expect(a.events.some((e) => e.type === 'lost' && e.reason === 'renew-deadline')).toBe(true);
  });

  it('ends the term at its deadline even when timers fire early (Node runs them up to ~2 ms early)', async () => {
    clock = new EarlyClock();
    store = new InMemoryLeaseStore();
    let term: Term | undefined;
    const a = start(candidate('a'), (t) => { term = t; });
    await clock.advance(0);
    let abortedAt: number | undefined;
    term!.signal.addEventListener('abort', () => { abortedAt = clock.now(); });
    a.lock.hang = true; // renewals hang until their 5 s request timeout, so only the deadline timer can end the term
    await clock.advance(10_000);
    expect(abortedAt).toBe(10_000);
    expect(a.events.some((e) => e.type === 'lost' && e.reason === 'renew-deadline')).toBe(true);
    a.lock.hang = false;
  });

  it('knows it lost the moment a paused process resumes, before any timer fires', async () => {
    setup();
    let term: Term | undefined;
    const a = start(candidate('a'), (t) => { term = t; });
    await clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    clock.jump(10_000); // SIGSTOP for renewDeadline: no timer ran
    expect(a.elector.isLeader()).toBe(false);
    expect(term!.isValid()).toBe(false);
    expect(a.elector.term).toBeUndefined();
  });

  describe('after a pause past the deadline, every way of asking says the term is over the first time anything asks', () => {
    const ways: Array<[string, (term: Term, elector: LeaderElector) => boolean]> = [
      ['signal.aborted', (term) => !term.signal.aborted],
      ['signal.throwIfAborted()', (term) => {
        try {
          term.signal.throwIfAborted();
          return true;
        } catch (error) {
          expect(error).toBeInstanceOf(LeadershipLostError);
          return false;
        }
      }],
      ['term.isValid()', (term) => term.isValid()],
      ['isLeader()', (_term, elector) => elector.isLeader()],
    ];
    for (const [first, ask] of ways) {
      it(`asked first through ${first}`, async () => {
        setup();
        let term: Term | undefined;
        const a = start(candidate('a'), (t) => { term = t; });
        await clock.advance(0);
        clock.jump(10_000); // SIGSTOP past the deadline: on resume, the work's own timer may run first
        expect(ask(term!, a.elector)).toBe(false);
        // The same instant, no microtask in between: the other ways agree.
        for (const [, other] of ways) expect(other(term!, a.elector)).toBe(false);
        expect((term!.signal.reason as LeadershipLostError).reason).toBe('renew-deadline');
      });
    }
  });

  it('a lease won with an answer that arrives after renewDeadline (paused mid-request) begins no term (found by the simulator)', async () => {
    setup();
    let answer: (() => void) | undefined;
    const tokens: number[] = [];
    const a = candidate('a');
    const create = a.lock.create.bind(a.lock);
    const answered = new Promise<void>((resolve) => { answer = resolve; });
    a.lock.create = async (record, signal) => {
      const created = await create(record, signal); // applied by the apiserver...
      await answered; // ...but the answer waits while the process is frozen
      return created;
    };
    start(a, (term) => { tokens.push(term.fencingToken); });
    await clock.advance(0);
    clock.jump(10_000); // frozen while its create was in flight
    answer!();
    await clock.advance(100);
    // Term 0 was over before anyone here could know it began; the lease, still ours, is taken again as term 1.
    expect(tokens).toEqual([1]);
    expect(a.events.filter((e) => e.type === 'acquired').map((e) => (e as { fencingToken: number }).fencingToken)).toEqual([1]);
    expect(a.elector.isLeader()).toBe(true);
  });

  it('a renewal that lands after the deadline passed does not revive the term', async () => {
    setup();
    const terms: Term[] = [];
    let workEnded = false;
    const a = start(candidate('a'), async (t) => {
      terms.push(t);
      // Work that polls isValid(), as the example's reconcile loop does.
      while (t.isValid()) await new Promise((resolve) => setImmediate(resolve));
      workEnded = true;
    });
    await clock.advance(0);
    let open!: () => void;
    a.lock.gate = new Promise((resolve) => { open = resolve; });
    await clock.advance(2_000); // a renewal is sent and hangs
    clock.jump(9_000); // time passes without timers (a stall): the deadline (10 s) is behind us
    await settle();
    expect(workEnded).toBe(true);
    a.lock.gate = undefined;
    open(); // the renewal sent at 2 s now succeeds
    await settle();
    expect(terms[0].signal.aborted).toBe(true);
    expect(terms[0].isValid()).toBe(false);
    expect(a.events.filter((e) => e.type === 'lost')).toEqual([{ type: 'lost', identity: 'a', reason: 'renew-deadline' }]);
    // Under 'rejoin' the instance competes again: any new leadership is a new term with a new token.
    expect(terms.slice(1).every((t) => t.fencingToken > terms[0].fencingToken)).toBe(true);
  });

  it('on a 409 when renewing, re-reads the Lease and keeps leading if it is still ours', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    // Someone bumps the version without changing the holder (e.g. a label edit).
    // Without a watch the leader cannot know of the edit until its cached write is refused.
    a.lock.breakWatch();
    a.lock.watchSupported = false;
    store.put({ ...store.object!.spec });
    await clock.advance(2_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events.some((e) => e.type === 'slow-path')).toBe(true);
    expect(a.elector.term?.fencingToken).toBe(0);
  });

  it('steps down at once when the Lease is taken by someone else', async () => {
    setup();
    let term: Term | undefined;
    const a = start(candidate('a'), (t) => { term = t; });
    await clock.advance(0);
    store.put({ ...store.object!.spec, holderIdentity: 'intruder', leaseTransitions: 1 });
    await settle();
    expect(term!.signal.aborted).toBe(true);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.events).toContainEqual({ type: 'lost', identity: 'a', reason: 'lease-taken' });
  });

  it('releases on stop only after the work has settled, and a watching follower takes over at once', async () => {
    setup();
    let finishWork!: () => void;
    const order: string[] = [];
    const a = start(candidate('a'), (term) => new Promise<void>((resolve) => {
      term.signal.addEventListener('abort', () => order.push('aborted'));
      finishWork = () => { order.push('work settled'); resolve(); };
    }));
    await clock.advance(0);
    const b = start(candidate('b'));
    await clock.advance(500);
    const stopping = a.elector.stop();
    await settle();
    expect(store.holder).toBe('a'); // still waiting for the work
    finishWork();
    await stopping;
    expect(order).toEqual(['aborted', 'work settled']);
    expect(store.object!.spec).toMatchObject({ leaseDurationSeconds: 1, leaseTransitions: 0 });
    await clock.advance(20); // the follower's spread after a release event
    expect(store.holder).toBe('b');
    expect(b.elector.isLeader()).toBe(true);
    expect(store.object!.spec!.leaseTransitions).toBe(1);
  });

  it('leaves the lease to expire when the work ignores its signal past settleTimeout', async () => {
    setup();
    const a = start(candidate('a', { settleTimeout: 1_000 }), () => new Promise<void>(() => {}));
    await clock.advance(0);
    const stopping = a.elector.stop();
    await clock.advance(1_000);
    await stopping;
    expect(store.holder).toBe('a');
  });

  it('elections won together renew spread over retryPeriod, not in one burst: the first renewal comes a random part early', async () => {
    setup();
    const renewals: number[] = [];
    for (let i = 0; i < 10; i++) {
      store = new InMemoryLeaseStore(`lease-${i}`);
      const c = start(candidate(`a${i}`, {}, () => i / 10));
      c.elector.events$.subscribe((event) => { if (event.type === 'renewed') renewals.push(clock.now()); });
    }
    await clock.advance(TIMINGS.retryPeriod);
    // random() = i / 10: at retryPeriod × (1 - i / 20).
    expect(renewals).toEqual(Array.from({ length: 10 }, (_, i) => 1_100 + 100 * i));
    renewals.length = 0;
    await clock.advance(TIMINGS.retryPeriod);
    // And they stay spread: each renews a retryPeriod after its last.
    expect(new Set(renewals).size).toBe(10);
  });

  it('a create that lands after an operator deleted a live term it saw meanwhile begins no term until that lease is over (found by the simulator)', async () => {
    setup();
    const b = candidate('b');
    let land!: () => void;
    const landing = new Promise<void>((resolve) => (land = resolve));
    const create = b.lock.create.bind(b.lock);
    b.lock.create = async (record, signal) => {
      await landing;
      return create(record, signal);
    };
    start(b);
    await clock.advance(0); // b read "no Lease"; its create is in flight
    store.put({ holderIdentity: 'c', leaseDurationSeconds: 15, leaseTransitions: 0 }); // c begins a term, b's watch shows it
    await clock.advance(10);
    store.delete(); // an operator deletes the Lease under c's live term
    await clock.advance(10);
    land();
    await clock.advance(0);
    expect({ holder: store.holder, leads: b.elector.isLeader() }).toEqual({ holder: 'b', leads: false });
    expect(b.warnings.filter((line) => line.includes('begins no term for'))).toHaveLength(1);
    await clock.advance(14_900);
    expect(b.elector.isLeader()).toBe(false);
    await clock.advance(200);
    expect(b.elector.isLeader()).toBe(true);
  });

  it('never touches a lease someone else holds when stopping', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    a.lock.watchSupported = false;
    const b = start(candidate('b'));
    await clock.advance(100);
    await a.elector.stop();
    await clock.advance(100);
    const version = store.snapshot()!.resourceVersion;
    expect(b.elector.isLeader()).toBe(true);
    await b.elector.stop(); // releases its own
    expect(store.snapshot()!.resourceVersion).not.toBe(version);
    // a's stop left b's record alone: one release by a, then b's term and release.
    expect(a.lock.requests.update).toBe(1);
  });

  it("exits with code 1 after an involuntary loss under lossPolicy 'exit', once the work settled", async () => {
    setup();
    const a = start(candidate('a', { lossPolicy: 'exit' }));
    await clock.advance(0);
    a.lock.failure = 'unavailable';
    await clock.advance(10_000);
    await settle();
    expect(a.exits).toEqual([1]);
  });

  it("under lossPolicy 'rejoin' waits for the work to settle, then competes again", async () => {
    setup();
    let finishWork!: () => void;
    let terms = 0;
    const a = start(candidate('a'), () => {
      terms++;
      return new Promise<void>((resolve) => { finishWork = resolve; });
    });
    await clock.advance(0);
    a.lock.failure = 'unavailable';
    await clock.advance(10_000);
    expect(a.elector.isLeader()).toBe(false);
    a.lock.failure = undefined;
    await clock.advance(10_000);
    expect(terms).toBe(1); // not rejoined: the work has not settled
    finishWork();
    await clock.advanceUntil(() => a.elector.isLeader(), 10_000);
    expect(terms).toBe(2);
    expect(a.elector.term?.fencingToken).toBe(1);
    expect(a.exits).toEqual([]);
  });

  it('hands out growing fencing tokens even when the Lease is deleted and re-created', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    await a.elector.stepDown();
    store.delete();
    await clock.advanceUntil(() => a.elector.isLeader(), 40_000);
    expect(a.elector.term?.fencingToken).toBe(1);
  });

  it('steps down when the Lease it holds is deleted', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    store.delete();
    await settle();
    expect(a.events).toContainEqual({ type: 'lost', identity: 'a', reason: 'lease-deleted' });
  });

  it('stepDown hands over to a peer and sits out instead of re-taking the lease', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    const b = start(candidate('b'));
    await clock.advance(100);
    await a.elector.stepDown();
    await clock.advance(50);
    expect(b.elector.isLeader()).toBe(true);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.leader).toBe('b');
  });

  it('stepDown whose release fails still hands over: it sits out until a follower that saw its last write can take the lease', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(1_000);
    a.lock.failure = 'unavailable'; // the apiserver is slow or gone for a moment: the release does not land
    await a.elector.stepDown();
    a.lock.failure = undefined;
    await clock.advance(100);
    // A follower that first saw a's last write just after the step-down: it may take over a lease later.
    const b = start(candidate('b'));
    await clock.advance(30_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.events.filter((e) => e.type === 'acquired')).toHaveLength(1);
  });

  describe('stepDown({ to }): a handover to a chosen successor', () => {
    it('hands over after the work settled: the successor leads at once, with a higher token, and no other follower races it', async () => {
      setup();
      let finish: (() => void) | undefined;
      const a = start(candidate('a'), () => new Promise<void>((resolve) => { finish = resolve; }));
      await clock.advance(0);
      const b = start(candidate('b'));
      const c = start(candidate('c'));
      await clock.advance(1_000);
      const token = a.elector.term!.fencingToken;
      const handing = a.elector.stepDown({ to: 'b' });
      await clock.advance(3_000);
      expect(store.holder).toBe('a'); // kept while its work settles
      expect(b.elector.isLeader()).toBe(false);
      finish!();
      await handing;
      await clock.advance(20);
      expect(b.elector.isLeader()).toBe(true);
      expect(b.elector.term!.fencingToken).toBeGreaterThan(token);
      expect(store.snapshot()!.annotations[HANDOVER_ANNOTATION]).toBeUndefined();
      await clock.advance(60_000);
      expect(b.elector.isLeader()).toBe(true);
      expect(c.events.filter((e) => e.type === 'acquired')).toHaveLength(0);
      expect(a.events.filter((e) => e.type === 'acquired')).toHaveLength(1);
    });

    it('to a candidate that takes no part: the others take the Lease once it expires, as after a crash', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const c = start(candidate('c'));
      await clock.advance(1_000);
      await a.elector.stepDown({ to: 'ghost' });
      const handedAt = clock.now();
      expect(store.holder).toBe('ghost');
      const took = await clock.runUntil(() => c.elector.isLeader(), 60_000);
      expect(took).toBeGreaterThanOrEqual(TIMINGS.leaseDuration);
      expect(clock.now() - handedAt).toBeLessThan(TIMINGS.leaseDuration + 3 * TIMINGS.retryPeriod);
    });

    it('refuses to hand over to itself, to no one, or while not leading, saying why', async () => {
      setup();
      const a = start(candidate('a'));
      const b = start(candidate('b'));
      await clock.advance(100);
      await expect(a.elector.stepDown({ to: 'a' })).rejects.toThrow('a cannot hand lease default/lease over to itself');
      await expect(a.elector.stepDown({ to: ' ' })).rejects.toThrow("stepDown({ to }) needs a candidate's identity");
      await expect(b.elector.stepDown({ to: 'a' })).rejects.toThrow('b does not lead lease default/lease: there is nothing to hand over to a');
      expect(a.elector.isLeader()).toBe(true);
    });

    it('of two processes with the successor\'s identity only one begins a term; a marker on a renewed record is no handover', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const twins = [start(candidate('b')), start(candidate('b'))];
      await clock.advance(1_000);
      await a.elector.stepDown({ to: 'b' });
      await clock.advance(20);
      expect(twins.filter((twin) => twin.elector.isLeader())).toHaveLength(1);
      await clock.advance(60_000);
      expect(twins.flatMap((twin) => twin.events.filter((e) => e.type === 'acquired'))).toHaveLength(1);

      // A record naming d, marked as handed over, but renewed since (a client-go successor renews it as its own): d waits it out.
      setup();
      const d = start(candidate('d'));
      const now = clock.wallNow();
      store.put({ holderIdentity: 'd', leaseDurationSeconds: 15, acquireTime: formatMicroTime(now),
        renewTime: formatMicroTime(new Date(now.getTime() + 500)), leaseTransitions: 4 }, { [HANDOVER_ANNOTATION]: JSON.stringify({ from: 'x', term: 3 }) });
      await clock.advance(10_000);
      expect(d.elector.isLeader()).toBe(false);
      await clock.advance(10_000);
      expect(d.elector.isLeader()).toBe(true);
    });
  });

  describe("spec.preferredHolder", () => {
    it('naming another candidate, the leader hands over to it once its work settled; the handover clears the fulfilled preference, renewals keep strategy', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const b = start(candidate('b'));
      const c = start(candidate('c'));
      await clock.advance(1_000);
      const current = store.snapshot()!;
      store.put({ ...current.object.spec, preferredHolder: 'c', strategy: 'OldestEmulationVersion' });
      await clock.advance(50);
      expect(c.elector.isLeader()).toBe(true);
      expect(a.elector.isLeader()).toBe(false);
      await clock.advance(10_000);
      expect(c.elector.isLeader()).toBe(true);
      expect(b.events.filter((e) => e.type === 'acquired')).toHaveLength(0);
      expect(store.snapshot()!.object.spec).toMatchObject({ strategy: 'OldestEmulationVersion' });
      // client-go's coordinated elector does not renew a Lease that still prefers anyone.
      expect(store.snapshot()!.object.spec!.preferredHolder).toBeUndefined();
    });

    it('naming a candidate that never takes the handover: whoever takes the Lease after it expired keeps it', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      store.put({ ...store.snapshot()!.object.spec, preferredHolder: 'ghost' });
      await clock.advance(50);
      expect(store.holder).toBe('ghost');
      await clock.runUntil(() => a.elector.isLeader() || b.elector.isLeader(), 60_000);
      const leader = a.elector.isLeader() ? a : b;
      await clock.advance(60_000);
      expect(leader.elector.isLeader()).toBe(true);
      expect(store.holder).toBe(leader.elector.identity);
    });

    it('a leader whose work never settles exits without handing over; the next leader does not follow that preference again', async () => {
      setup();
      const a = start(candidate('a', { settleTimeout: 5_000 }), () => new Promise<void>(() => {}));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      store.put({ ...store.snapshot()!.object.spec, preferredHolder: 'ghost' });
      await clock.advance(10_000);
      expect(a.exits).toEqual([1]);
      expect(store.snapshot()!.annotations[HANDOVER_INTENT_ANNOTATION]).toBe(JSON.stringify({ to: 'ghost', term: 0 }));
      await clock.runUntil(() => b.elector.isLeader(), 60_000);
      await clock.advance(60_000);
      expect(b.elector.isLeader()).toBe(true);
      expect(store.holder).toBe('b');
      expect(store.snapshot()!.annotations[HANDOVER_INTENT_ANNOTATION]).toBeUndefined();
    });

    it('stop({ to }) hands over instead of releasing', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const b = start(candidate('b'));
      const c = start(candidate('c'));
      await clock.advance(1_000);
      await expect(a.elector.stop({ to: 'a' })).rejects.toThrow('stop({ to }) needs another candidate');
      await a.elector.stop({ to: 'c' });
      await clock.advance(50);
      expect(c.elector.isLeader()).toBe(true);
      expect(b.events.filter((e) => e.type === 'acquired')).toHaveLength(0);
    });
  });

  /** A candidacy as the tests drive it: announced at once unless told otherwise; the live set answers isLive(). */
  function candidacy(live: Set<string> = new Set(), served = true): Candidacy & { calls: string[]; failures: number } {
    const calls: string[] = [];
    const fake = {
      description: 'fake candidacy', calls, failures: 0,
      start: async () => {
        calls.push('start');
        if (fake.failures > 0) {
          fake.failures--;
          throw new Error('not allowed to create leasecandidates');
        }
        return served;
      },
      stop: async () => { calls.push(`stop (holder ${JSON.stringify(store.holder)})`); },
      isLive: async (identity: string) => live.has(identity),
    };
    return fake;
  }
  /** The controller names `identity`, as the apiserver's does: holder, a 5 s lease, no acquireTime, no preference. */
  function name(identity: string): void {
    const spec = { ...store.snapshot()?.object.spec };
    delete spec.acquireTime;
    delete spec.preferredHolder;
    store.put({ ...spec, holderIdentity: identity, leaseDurationSeconds: 5, renewTime: formatMicroTime(new Date()), strategy: 'OldestEmulationVersion' });
  }

  describe('coordinated leader election (a candidacy)', () => {
    it('takes neither a missing nor a free Lease, only one the controller names it in, at once and with a token of its own', async () => {
      setup();
      const a = start(candidate('a', {}, () => 0.5, { candidacy: candidacy() }));
      await clock.advance(30_000);
      expect(a.elector.isCoordinated).toBe(true);
      expect(store.snapshot()).toBeUndefined();
      store.put({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 4 });
      await clock.advance(30_000);
      expect(a.elector.isLeader()).toBe(false);
      name('a');
      await clock.advance(50);
      expect(a.elector.isLeader()).toBe(true);
      expect(a.elector.term?.fencingToken).toBe(5);
      expect(store.snapshot()!.object.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, strategy: 'OldestEmulationVersion' });
      expect(store.snapshot()!.record.acquireTime).toBeDefined();
    });

    it("named over a live holder's term, it waits that term's lease out on its own clock: the controller's wall clock is not trusted", async () => {
      setup();
      const b = start(candidate('b', {}, () => 0.5, { candidacy: candidacy() }));
      const a = start(candidate('a', {}, () => 0.5, { candidacy: candidacy() }));
      await clock.advance(0);
      name('b');
      await clock.advance(1_000);
      expect(b.elector.isLeader()).toBe(true);
      // A controller whose clock runs ahead names a while b still renews: b loses at its next renewal, a waits b's 15 s out.
      name('a');
      await clock.advance(14_900);
      expect(b.elector.isLeader()).toBe(false);
      expect(a.elector.isLeader()).toBe(false);
      await clock.runUntil(() => a.elector.isLeader(), 1_000);
    });

    it("a named record that follows the holder's release is taken at once", async () => {
      setup();
      const b = start(candidate('b'));
      await clock.advance(0);
      const a = start(candidate('a', {}, () => 0.5, { candidacy: candidacy() }));
      await clock.advance(1_000);
      await b.elector.stop();
      name('a');
      await clock.advance(50);
      expect(a.elector.isLeader()).toBe(true);
    });

    it('runs the ordinary election where the cluster does not serve LeaseCandidates', async () => {
      setup();
      const a = start(candidate('a', {}, () => 0.5, { candidacy: candidacy(new Set(), false) }));
      await clock.advance(0);
      expect(a.elector.isCoordinated).toBe(false);
      expect(a.elector.isLeader()).toBe(true);
    });

    it('retries an announcement that fails, reporting each failure, and never leads meanwhile', async () => {
      setup();
      const fake = candidacy();
      fake.failures = 3;
      const a = start(candidate('a', {}, () => 0.5, { candidacy: fake }));
      store.put({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });
      await clock.advance(2_000 + 4_000 + 8_000 - 1);
      expect(a.events.filter((e) => e.type === 'error')).toHaveLength(3);
      expect(a.elector.isLeader()).toBe(false);
      expect(a.elector.isCoordinated).toBe(false);
      await clock.advance(1);
      expect(a.elector.isCoordinated).toBe(true);
      expect(fake.calls).toEqual(['start', 'start', 'start', 'start']);
    });

    it('on stop it withdraws before giving the lease up, to the candidate the controller prefers, and clears that preference', async () => {
      setup();
      const fake = candidacy(new Set(['b']));
      const a = start(candidate('a', {}, () => 0.5, { candidacy: fake }));
      const b = start(candidate('b', {}, () => 0.5, { candidacy: candidacy() }));
      await clock.advance(0);
      name('a');
      await clock.advance(6_000);
      expect(a.elector.isLeader()).toBe(true);
      // The controller saw a's candidacy go and prefers b: the lease goes to b, not free for anyone.
      store.put({ ...store.snapshot()!.object.spec, preferredHolder: 'b' });
      const stopping = a.elector.stop();
      await clock.advance(50);
      await stopping;
      expect(fake.calls).toEqual(['start', 'stop (holder "a")']);
      expect(b.elector.isLeader()).toBe(true);
      expect(store.snapshot()!.object.spec!.preferredHolder).toBeUndefined();
      expect(b.elector.term!.fencingToken).toBe(store.snapshot()!.record.leaseTransitions);
    });

    it('stepDown() withdraws the candidacy before the release and stands again after the sit-out; so does work that outlived its term', async () => {
      setup();
      const fake = candidacy();
      let hang = false;
      const a = start(candidate('a', { settleTimeout: 1_000 }, () => 0.5, { candidacy: fake }), (term) => (hang
        ? new Promise<void>(() => {})
        : new Promise<void>((resolve) => term.signal.addEventListener('abort', () => resolve(), { once: true }))));
      await clock.advance(0);
      name('a');
      await clock.advance(50);
      expect(a.elector.isLeader()).toBe(true);
      await a.elector.stepDown();
      expect(fake.calls).toEqual(['start', 'stop (holder "a")']);
      expect(store.holder).toBe('');
      await clock.advance(15_000);
      expect(fake.calls).toHaveLength(2);
      await clock.advance(10_000);
      expect(fake.calls).toEqual(['start', 'stop (holder "a")', 'start']);
      // Named again; this term's work will not settle: withdrawn while it runs on.
      hang = true;
      name('a');
      await clock.advance(50);
      expect(a.elector.isLeader()).toBe(true);
      void a.elector.stepDown();
      await clock.advance(2_000);
      expect(fake.calls.at(-1)).toBe('stop (holder "a")');
      expect(a.elector.isLeader()).toBe(false);
    });

    it('refuses a handover to a candidate that is not live, and hands over to a live one', async () => {
      setup();
      const a = start(candidate('a', {}, () => 0.5, { candidacy: candidacy(new Set(['b'])) }));
      const b = start(candidate('b', {}, () => 0.5, { candidacy: candidacy() }));
      await clock.advance(0);
      name('a');
      await clock.advance(6_000);
      await expect(a.elector.stepDown({ to: 'ghost' })).rejects.toThrow('ghost is not a live candidate for lease default/lease (no LeaseCandidate of it answers');
      expect(a.elector.isLeader()).toBe(true);
      await a.elector.stepDown({ to: 'b' });
      await clock.advance(50);
      expect(b.elector.isLeader()).toBe(true);
    });

    it('outside coordinated mode the liveness check refuses a dead target, and an unknown answer lets the handover go ahead', async () => {
      setup();
      const answers = new Map<string, boolean | undefined>([['dead', false], ['b', undefined]]);
      const a = start(candidate('a', {}, () => 0.5, { liveness: async (identity) => answers.get(identity) }));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      await expect(a.elector.stepDown({ to: 'dead' })).rejects.toThrow('dead is not a live candidate for lease default/lease (no Ready pod of that name)');
      expect(a.elector.isLeader()).toBe(true);
      await a.elector.stepDown({ to: 'b' });
      await clock.advance(50);
      expect(b.elector.isLeader()).toBe(true);
    });
  });

  describe('standBy() and campaign()', () => {
    it('standing by from the start, it makes no request and takes no free lease; campaign() takes it at once', async () => {
      setup();
      const a = candidate('a');
      void a.elector.standBy();
      start(a);
      await clock.advance(60_000);
      expect(a.lock.requests.get + a.lock.requests.create + a.lock.requests.update).toBe(0);
      expect(store.holder).toBeUndefined();
      a.elector.campaign();
      await clock.advance(0);
      expect(a.elector.isLeader()).toBe(true);
    });

    it('standBy() while leading ends the term as a step-down (work settled, then released) and makes no attempt until campaign(), with no sit-out', async () => {
      setup();
      const { a, finish, terms } = await leaderWithHeldWork();
      const standing = a.elector.standBy();
      await clock.advance(1_000);
      expect(a.elector.isLeader()).toBe(false);
      expect(store.holder).toBe('a'); // its work still runs
      finish();
      await standing;
      expect(store.holder).toBe('');
      const requests = a.lock.requests.get + a.lock.requests.update;
      await clock.advance(60_000);
      expect(a.lock.requests.get + a.lock.requests.update).toBe(requests);
      a.elector.campaign();
      await clock.advance(0);
      expect(a.elector.isLeader()).toBe(true);
      expect(terms()).toBe(2);
    });

    it('campaign() while a stood-down term still settles: after the release it campaigns at once, without a sit-out', async () => {
      setup();
      const { a, finish, terms } = await leaderWithHeldWork();
      const standing = a.elector.standBy();
      await clock.advance(500);
      a.elector.campaign();
      finish();
      await standing;
      await clock.advance(TIMINGS.retryPeriod * 2.2);
      expect(terms()).toBe(2);
      expect(a.elector.isLeader()).toBe(true);
    });

    it('a standing-by follower keeps observing: on campaign() after the leader died it takes over when the lease expires, not a leaseDuration later', async () => {
      setup();
      const b = start(candidate('b'));
      await clock.advance(0);
      const a = candidate('a');
      void a.elector.standBy();
      start(a);
      await clock.advance(1_000);
      b.lock.hang = true; // b dies: its lease is not renewed after its last write
      const lastWrite = store.snapshot()!.record.renewTime!.getTime() - clock.wallNow().getTime() + clock.now();
      await clock.advance(12_000);
      a.elector.campaign();
      const at = lastWrite + TIMINGS.leaseDuration;
      await clock.advanceUntil(() => a.elector.isLeader(), 20_000, 10);
      expect(clock.now()).toBeGreaterThanOrEqual(at);
      expect(clock.now()).toBeLessThan(at + 2 * TIMINGS.retryPeriod);
    });

  });

  it('stepDown() called synchronously from inside the work releases only after that work settled', async () => {
    setup();
    let finish: (() => void) | undefined;
    const a: Candidate = start(candidate('a'), () => {
      void a.elector.stepDown();
      return new Promise<void>((resolve) => { finish = resolve; });
    });
    await clock.advance(1_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(store.holder).toBe('a'); // its work still runs
    finish!();
    await clock.advance(0);
    expect(store.holder).toBe('');
  });

  describe('stepDown() with work slow to settle', () => {
    it('takes no new term while the old work runs past leaseDuration, and the old release never touches the next term', async () => {
      setup();
      let finish: (() => void) | undefined;
      let terms = 0;
      const a = start(candidate('a'), () => {
        terms++;
        if (terms === 1) return new Promise<void>((resolve) => { finish = resolve; });
      });
      await clock.advance(0);
      void a.elector.stepDown();
      await clock.advance(20_000); // past the one-leaseDuration sit-out, within settleTimeout
      expect(terms).toBe(1);
      expect(store.holder).toBe('a'); // not released while that work runs
      finish!();
      await clock.advance(30_000); // released, then the sit-out again from there: nobody took over
      expect(terms).toBe(2);
      await clock.advance(20_000);
      expect(a.elector.isLeader()).toBe(true);
      expect(store.holder).toBe('a');
      expect(a.events.filter((e) => e.type === 'lost')).toHaveLength(1);
      expect(a.exits).toEqual([]);
    });

    it('work that outlives settleTimeout: the lease is left to expire, and this instance campaigns again once that work settles', async () => {
      setup();
      let finish: (() => void) | undefined;
      let terms = 0;
      const a = start(candidate('a', { settleTimeout: 1_000 }), () => {
        terms++;
        if (terms === 1) return new Promise<void>((resolve) => { finish = resolve; });
      });
      await clock.advance(0);
      void a.elector.stepDown();
      const b = start(candidate('b'));
      await clock.advance(60_000);
      expect(a.exits).toEqual([1]); // exits (here: a no-op) so the work cannot run beside the next leader
      expect(b.elector.isLeader()).toBe(true); // took it after expiry, not from a release
      expect(terms).toBe(1);
      await b.elector.stop();
      await clock.advance(60_000);
      expect(terms).toBe(1); // a does not campaign while its old work runs
      finish!();
      await clock.advance(5_000);
      expect(terms).toBe(2);
    });

    it('keeps the lease renewed while the work settles, past leaseDuration, so no peer leads beside it; then releases', async () => {
      setup();
      let settledAt: number | undefined;
      const a = start(candidate('a'), (term) => new Promise<void>((resolve) => {
        // Ignores its signal and ends 25 s later: past leaseDuration, within settleTimeout.
        term.signal.addEventListener('abort', () => clock.setTimeout(() => { settledAt = clock.now(); resolve(); }, 25_000));
      }));
      await clock.advance(0);
      const b = start(candidate('b'));
      let bLedAt: number | undefined;
      b.elector.events$.subscribe((event) => { if (event.type === 'acquired') bLedAt = clock.now(); });
      await clock.advance(100);
      void a.elector.stepDown();
      await clock.advance(24_000);
      expect({ holder: store.holder, bLeads: b.elector.isLeader() }).toEqual({ holder: 'a', bLeads: false });
      await clock.advance(2_000);
      expect(b.elector.isLeader()).toBe(true);
      expect(bLedAt! - settledAt!).toBeLessThan(100); // from the release, at once
      expect(a.exits).toEqual([]);
    });

    it('work past settleTimeout (stop() too): exits while the lease it kept is still valid, so no peer ever leads beside that work', async () => {
      for (const end of ['stepDown', 'stop'] as const) {
        setup();
        const a = start(candidate('a', { settleTimeout: 20_000 }), () => new Promise<void>(() => {}));
        let exitedAt: number | undefined;
        a.elector.events$.subscribe(() => {});
        await clock.advance(0);
        const b = start(candidate('b'));
        let bLedAt: number | undefined;
        b.elector.events$.subscribe((event) => { if (event.type === 'acquired') bLedAt = clock.now(); });
        await clock.advance(100);
        const endedAt = clock.now();
        void (end === 'stepDown' ? a.elector.stepDown() : a.elector.stop());
        await clock.runUntil(() => a.exits.length > 0, 60_000);
        exitedAt = clock.now();
        await clock.advance(60_000);
        expect({ end, exits: a.exits, exitedAfter: exitedAt - endedAt }).toEqual({ end, exits: [1], exitedAfter: 20_000 });
        // A real exit ends the work here; the kept lease expires a leaseDuration after its last renewal.
        expect(bLedAt! - exitedAt).toBeGreaterThanOrEqual(TIMINGS.leaseDuration - TIMINGS.retryPeriod);
        started.splice(0);
      }
    });

    it('the kept lease cannot be renewed (apiserver down): an involuntary loss from there, so work that settles within settleTimeout costs no exit', async () => {
      for (const settlesAfter of [1_000, Infinity]) {
        setup();
        const a = start(candidate('a'), (term) => new Promise<void>((resolve) => {
          term.signal.addEventListener('abort', () => { if (settlesAfter < Infinity) clock.setTimeout(resolve, settlesAfter); });
        }));
        await clock.advance(0);
        a.lock.failure = 'unavailable';
        await clock.advance(9_500); // renewals failing, the term about to expire (found by review)
        void a.elector.stepDown();
        await clock.advance(40_000);
        expect({ settlesAfter, exits: a.exits }).toEqual({ settlesAfter, exits: settlesAfter < Infinity ? [] : [1] });
        started.splice(0);
      }
    });

    it('stop() during stepDown() waits for the work before it releases', async () => {
      setup();
      let finish: (() => void) | undefined;
      const a = start(candidate('a'), () => new Promise<void>((resolve) => { finish = resolve; }));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(100);
      void a.elector.stepDown();
      const stopped = a.elector.stop();
      await clock.advance(5_000);
      expect(store.holder).toBe('a');
      expect(b.elector.isLeader()).toBe(false);
      finish!();
      await clock.advance(0);
      await stopped;
      await clock.advance(100);
      expect(b.elector.isLeader()).toBe(true);
    });
  });

  it('after resourceVersions go backwards (etcd restored from a backup), followers still see every renewal and nobody takes a renewed lease', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    const b = start(candidate('b'));
    await clock.advance(3_000);
    store.rewindVersions(50);
    await clock.advance(60_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    expect(a.events.filter((e) => e.type === 'lost')).toHaveLength(0);
    expect(store.object!.spec).toMatchObject({ holderIdentity: 'a', leaseTransitions: 0 });
  });

  it('releases only after a fresh read: a resourceVersion reused by an etcd restore for another term is left alone (found by the simulator)', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    const ours = store.snapshot()!.resourceVersion;
    clock.jump(10_000); // paused past its deadline
    store.rewindVersions(Number(ours) - 1); // restored from a backup: the same version now holds b's term
    store.put({ holderIdentity: 'b', leaseDurationSeconds: 15, leaseTransitions: 5 });
    expect(store.snapshot()!.resourceVersion).toBe(ours);
    await clock.advance(100);
    expect(a.elector.isLeader()).toBe(false);
    expect(store.object!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 5 });
  });

  it('its own last term brought back by a restored backup is not taken while the holder it replaced may still work (found by the simulator)', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    const ourTerm = structuredClone(store.object!.spec!);
    a.lock.failure = 'unavailable'; // cut off: its term ends, b takes over after the lease runs out
    const b = start(candidate('b'));
    await clock.advance(20_000);
    a.lock.failure = undefined;
    await clock.advance(5_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(a.elector.leader).toBe('b');
    store.put(ourTerm); // etcd restored to a's term, while b still works
    await clock.advance(10_000);
    expect(a.elector.isLeader()).toBe(false);
  });

  describe('two processes with one identity (two containers on one POD_NAME, a force-replaced pod)', () => {
    it('never lead at the same time: a record naming us that we did not write is someone else\'s', async () => {
      setup();
      const first = start(candidate('a'));
      await clock.advance(0);
      const second = candidate('a');
      second.lock.watchSupported = false; // polls, as a pod whose watch is not yet open
      start(second);
      for (let t = 0; t < 60_000; t += 100) {
        await clock.advance(100);
        expect([first, second].filter((c) => c.elector.isLeader()).length).toBeLessThanOrEqual(1);
      }
      expect(first.elector.isLeader()).toBe(true);
    });

    it('a leader that sees its identity with a term not its own has lost', async () => {
      setup();
      const first = start(candidate('a'));
      await clock.advance(0);
      // The other process writes a term of its own under the same name (it judged our lease expired).
      const record = store.snapshot()!.record;
      store.put({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: record.leaseTransitions + 1,
        acquireTime: '2026-01-02T03:05:00.000000Z', renewTime: '2026-01-02T03:05:00.000000Z' });
      await clock.advance(2_100);
      expect(first.elector.isLeader()).toBe(false);
      expect(first.events).toContainEqual({ type: 'lost', identity: 'a', reason: 'lease-taken' });
      expect(store.snapshot()!.record.leaseTransitions).toBe(record.leaseTransitions + 1); // its term left alone
    });
  });

  it('waits out a valid peer\'s long lease in full (client-go with LeaseDuration 2 h writes 7200), and says so once', async () => {
    setup();
    store.put({ holderIdentity: 'go', leaseDurationSeconds: 7200, leaseTransitions: 3,
      acquireTime: '2026-01-02T03:04:05.000000Z', renewTime: '2026-01-02T03:04:05.000000Z' });
    const a = start(candidate('a'));
    await clock.advance(7_199_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.warnings.filter((w) => w.includes('7200'))).toHaveLength(1);
    expect(a.warnings.some((w) => w.includes('edited by hand'))).toBe(false);
    await clock.advance(2_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.elector.term?.fencingToken).toBe(4);
  });

  describe('a live holder replaced by anything but its own release (found by the simulator)', () => {
    const replacements: Array<[string, () => void]> = [
      ['a hand edit naming a ghost with a 1 s lease', () => { store.put({ holderIdentity: 'ghost', leaseDurationSeconds: 1, leaseTransitions: 8 }); }],
      ['a hand edit into nonsense', () => { store.put({ holderIdentity: 42 }); }],
      ['the Lease deleted', () => store.delete()],
      ['a hand edit that empties the spec (free-looking, but not a release)', () => { store.put({}); }],
      ['a hand edit to holderIdentity "" (not shaped as a release)', () => { store.put({ holderIdentity: '', leaseTransitions: 7 }); }],
      ['a restored backup naming an older term, which its owner then releases', () => {
        store.put({ holderIdentity: 'y', leaseDurationSeconds: 15, leaseTransitions: 3 });
        store.put({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 });
      }],
    ];
    for (const [what, replace] of replacements) {
      it(`${what}: the holder it replaced is waited out in full, since its work may still run`, async () => {
        setup();
        store.put({ holderIdentity: 'x', leaseDurationSeconds: 15, leaseTransitions: 7 });
        const b = start(candidate('b'));
        await clock.advance(5_000);
        replace();
        // x may have renewed after b last saw it, and what replaced it erased the trace: its lease counts from 5 s.
        await clock.advance(14_900);
        expect(b.elector.isLeader()).toBe(false);
        await clock.advance(200);
        expect(b.elector.isLeader()).toBe(true);
      });
    }
  });

  describe('found by a hostile review', () => {
    it('stepDown() from a leadership$ subscriber waits for the work before releasing', async () => {
      setup();
      let finish: (() => void) | undefined;
      const a = candidate('a');
      a.elector.leadership$.subscribe((leading) => { if (leading) void a.elector.stepDown(); });
      start(a, () => new Promise<void>((resolve) => { finish = resolve; }));
      await clock.advance(1_000);
      expect(store.holder).toBe('a');
      finish!();
      await clock.advance(0);
      expect(store.holder).toBe('');
    });

    it('a term counts from its write, not from the read before it: slow reads (795 ms) do not keep it from leading with renewDeadline 800 ms', async () => {
      setup();
      const a = candidate('a', { leaseDuration: 1_000, renewDeadline: 800, retryPeriod: 200 });
      for (const [verb, latency] of [['get', 795], ['create', 10], ['update', 10]] as const) {
        const call = (a.lock[verb] as (...args: unknown[]) => Promise<unknown>).bind(a.lock);
        (a.lock as unknown as Record<string, unknown>)[verb] = async (...args: unknown[]) => {
          const result = await call(...args);
          await new Promise<void>((resolve) => clock.setTimeout(resolve, latency));
          return result;
        };
      }
      start(a);
      await clock.advance(5_000);
      expect(a.elector.isLeader()).toBe(true);
      expect(store.snapshot()!.record.leaseTransitions).toBe(0);
    });

    it.each(['stepDown', 'standBy'] as const)('%s() while an acquire is in flight: a lease won then is given back, no term begins', async (give) => {
      setup();
      let answer: (() => void) | undefined;
      const a = candidate('a');
      a.lock.gate = new Promise((resolve) => { answer = resolve; });
      let terms = 0;
      start(a, () => { terms++; });
      await clock.advance(0);
      const steppedDown = a.elector[give]();
      a.lock.gate = undefined;
      answer!();
      await clock.advance(0);
      await steppedDown;
      expect(terms).toBe(0);
      expect(a.elector.isLeader()).toBe(false);
      expect(store.holder).toBe('');
      // campaign() after a stand-by campaigns again at once; after a step-down it changes nothing (the sit-out holds).
      a.elector.campaign();
      await clock.advance(0);
      expect(terms).toBe(give === 'standBy' ? 1 : 0);
    });

    it('a late deletion event (from before it re-created the Lease) does not end a valid term', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      for (const watcher of store.watchers) watcher.onChange(undefined);
      await clock.advance(100);
      expect(a.elector.isLeader()).toBe(true);
      expect(a.events.filter((e) => e.type === 'lost')).toHaveLength(0);
    });
  });

  describe('malformed Leases edited by hand', () => {
    const free: Array<[string, Record<string, unknown> | undefined]> = [
      ['negative transitions and no holder', { holderIdentity: '', leaseTransitions: -3 }],
    ];
    for (const [what, spec] of free) {
      it(`${what}: nobody validly holds it, so it is taken at once`, async () => {
        setup();
        store.put(spec);
        const a = start(candidate('a'));
        await clock.advance(0);
        expect(a.elector.isLeader()).toBe(true);
        expect(store.object!.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15 });
      });
    }

    // A holder that cannot be read may be a live leader's record edited by hand: waited out as any holder.
    const held: Array<[string, Record<string, unknown> | undefined]> = [
      ['no spec', undefined],
      ['a non-string holder', { holderIdentity: 42, leaseDurationSeconds: 15 }],
      ['a negative duration', { holderIdentity: 'x', leaseDurationSeconds: -5 }],
      ['a duration beyond int32', { holderIdentity: 'x', leaseDurationSeconds: 2 ** 31 }],
      ['a string duration', { holderIdentity: 'x', leaseDurationSeconds: '15' }],
      ['unparsable times', { holderIdentity: 'x', leaseDurationSeconds: 15, renewTime: 'yesterday', acquireTime: 7 }],
    ];
    for (const [what, spec] of held) {
      it(`a holder with ${what}: respected for our own leaseDuration, logged, then taken`, async () => {
        setup();
        store.put(spec);
        const a = start(candidate('a'));
        await clock.advance(14_900);
        expect(a.elector.isLeader()).toBe(false);
        expect(a.warnings.some((w) => w.includes('edited by hand'))).toBe(true);
        await clock.advance(200);
        expect(a.elector.isLeader()).toBe(true);
        expect(store.object!.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15 });
      });
    }
  });

  describe('followers and the watch', () => {
    it('a follower with a healthy watch makes no periodic reads', async () => {
      setup();
      start(candidate('a'));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      const before = { ...b.lock.requests };
      await clock.advance(60_000);
      expect(b.lock.requests).toEqual(before);
      expect(b.elector.isLeader()).toBe(false);
    });

    it('takes a released lease at once with one read and one write', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      const before = { ...b.lock.requests };
      await a.elector.stop();
      await clock.advance(10);
      expect(b.elector.isLeader()).toBe(true);
      expect(b.lock.requests).toEqual({ ...before, get: before.get + 1, update: before.update + 1 });
    });

    it('reads before a takeover: a watched version that a restored etcd reused for a live term is not overwritten (found by the simulator)', async () => {
      setup();
      const a = candidate('a');
      a.lock.watchSupported = false; // only b watches
      start(a);
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      const live = store.snapshot()!;
      const version = Number(live.resourceVersion);
      store.rewindVersions(version - 1);
      store.put({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 }); // b sees a free Lease at that version...
      const watchers = [...store.watchers];
      store.watchers.clear(); // ...and its watch lags while the version is reused for a's live term
      store.rewindVersions(version - 1);
      store.put(live.object.spec);
      for (const watcher of watchers) store.watchers.add(watcher);
      await clock.advance(100);
      expect(b.elector.isLeader()).toBe(false);
      expect(store.holder).toBe('a');
    });

    it('falls back to jittered polling when the watch breaks, and stops polling once it is back', async () => {
      setup();
      start(candidate('a'));
      await clock.advance(0);
      const b = start(candidate('b'));
      await clock.advance(1_000);
      b.lock.watchBroken = true;
      b.lock.breakWatch();
      const gets = b.lock.requests.get;
      await clock.advance(10_000);
      // Polled with jitter while the watch was down: 2 to 4.4 s apart.
      expect(b.lock.requests.get - gets).toBeGreaterThanOrEqual(3);
      expect(b.lock.requests.watch).toBeGreaterThanOrEqual(3); // kept trying to re-open it
      b.lock.watchBroken = false;
      await clock.advance(30_000); // longest backoff
      const settled = b.lock.requests.get;
      await clock.advance(60_000);
      expect(b.lock.requests.get).toBe(settled);
      expect(b.elector.leader).toBe('a');
    });

    it('polls every retryPeriod × [1, 2.2) without a watch', async () => {
      for (const [random, interval] of [[0, 2_000], [0.999, 2_000 * (1 + 0.999 * 1.2)]] as const) {
        setup();
        store.put({ holderIdentity: 'x', leaseDurationSeconds: 3600 });
        const b = candidate('b', {}, () => random);
        b.lock.watchSupported = false;
        start(b);
        await clock.advance(0);
        const times: number[] = [];
        const get = b.lock.get.bind(b.lock);
        b.lock.get = (signal) => { times.push(clock.now()); return get(signal); };
        await clock.advance(30_000);
        const gaps = times.slice(1).map((t, i) => t - times[i]);
        expect(gaps.length).toBeGreaterThan(3);
        for (const gap of gaps) expect(gap).toBeCloseTo(interval, 3);
        await b.elector.stop();
      }
    });
  });

  describe('annotations a term writes (the record of leader-only scheduled jobs)', () => {
    const KEY = 'example.com/record';

    it('a successor finds what the previous term wrote, carried by its release', async () => {
      setup();
      let last: Promise<void> | undefined;
      const a = candidate('a');
      // Staged after the signal aborted, while the work settles: the release carries it.
      start(a, async (current) => {
        await new Promise((resolve) => current.signal.addEventListener('abort', resolve, { once: true }));
        last = a.elector.annotate(current, { [KEY]: 'two' });
      });
      await clock.advance(0);
      const term = a.elector.term!;
      expect(a.elector.annotationsAtStart(term)).toEqual({});
      const written = a.elector.annotate(term, { [KEY]: 'one' });
      await clock.advance(TIMINGS.retryPeriod); // carried by the next renewal
      await written;
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'one' });
      const b = candidate('b');
      await a.elector.stop();
      await last;
      expect(store.snapshot()!.free).toBe(true);
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'two' });
      start(b);
      await clock.advance(0);
      expect(b.elector.annotationsAtStart(b.elector.term!)).toEqual({ [KEY]: 'two' });
    });

    it('flush writes at once, as an early renewal, and coalesces with a renewal in flight', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const term = a.elector.term!;
      const updates = a.lock.requests.update;
      await clock.advance(500);
      await a.elector.annotate(term, { [KEY]: 'now' }, { flush: true });
      expect(clock.now()).toBe(500);
      expect(a.lock.requests.update).toBe(updates + 1);
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'now' });
      // A slow write in flight does not carry a flush staged after it was sent: the next one goes out right after it.
      let open!: () => void;
      a.lock.gate = new Promise((resolve) => (open = resolve));
      await clock.advance(TIMINGS.retryPeriod); // the renewal is sent and waits at the gate
      const flushed = a.elector.annotate(term, { [KEY]: 'later' }, { flush: true });
      const before = a.lock.requests.update;
      a.lock.gate = undefined;
      open();
      await clock.advance(0);
      await flushed;
      expect(a.lock.requests.update).toBe(before + 1);
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'later' });
    });

    it('annotations the apiserver refuses (422) are dropped and their waiters told; the lease is renewed without them and kept', async () => {
      setup();
      const a = candidate('a');
      const update = a.lock.update.bind(a.lock);
      a.lock.update = (record, basedOn, signal, annotations) => annotations?.[KEY] === 'too big'
        ? Promise.reject(new LockError('invalid', 'metadata.annotations: Too long: must have at most 262144 bytes'))
        : update(record, basedOn, signal, annotations);
      start(a);
      await clock.advance(0);
      const term = a.elector.term!;
      const refused = a.elector.annotate(term, { [KEY]: 'too big' }, { flush: true });
      const outcome = refused.then(() => 'written', (error: Error) => error.message);
      await clock.advance(0);
      expect(await outcome).toContain('the apiserver refused the annotations: metadata.annotations: Too long');
      await clock.advance(3 * TIMINGS.leaseDuration);
      expect(a.elector.isLeader()).toBe(true);
      expect(a.events.filter((event) => event.type === 'lost')).toEqual([]);
      expect(store.snapshot()!.annotations).toEqual({});
      // Later changes go through as usual.
      await a.elector.annotate(term, { [KEY]: 'small' }, { flush: true });
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'small' });
    });

    it('stop() while a lost term settles: its release carries what the term staged last (found by the scheduled-jobs simulator)', async () => {
      setup();
      const a = candidate('a');
      start(a, async (term) => {
        await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 500));
        void a.elector.annotate(term, { [KEY]: 'last' }).catch(() => {});
      });
      await clock.advance(0);
      a.lock.failure = 'unavailable'; // renewals fail until the deadline: the term is lost
      await clock.runUntil(() => !a.elector.isLeader(), 20_000);
      a.lock.failure = undefined;
      const stopping = a.elector.stop(); // while the lost term's work settles
      await clock.advance(1_000);
      await stopping;
      expect(store.snapshot()!.free).toBe(true);
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'last' });
    });

    it('keeps annotations written by others (kubectl annotate, a client-go peer) and renews over them', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      store.annotate({ 'someone.else/note': 'hi' });
      await a.elector.annotate(a.elector.term!, { [KEY]: 'mine' }, { flush: true });
      await clock.advance(TIMINGS.retryPeriod * 3);
      expect(a.elector.isLeader()).toBe(true);
      expect(store.snapshot()!.annotations).toEqual({ 'someone.else/note': 'hi', [KEY]: 'mine' });
      await a.elector.annotate(a.elector.term!, { [KEY]: null }, { flush: true });
      expect(store.snapshot()!.annotations).toEqual({ 'someone.else/note': 'hi' });
    });

    it('a deposed leader never writes its staged annotations, and is told so', async () => {
      setup();
      const a = start(candidate('a'));
      await clock.advance(0);
      const term = a.elector.term!;
      a.lock.failure = 'unavailable';
      const staged = a.elector.annotate(term, { [KEY]: 'stale' }, { flush: true });
      const outcome = staged.then(() => 'written', (error: unknown) => error);
      await clock.advance(TIMINGS.renewDeadline);
      expect(a.elector.isLeader()).toBe(false);
      const b = start(candidate('b'));
      await clock.advance(TIMINGS.leaseDuration);
      a.lock.failure = undefined;
      await clock.advance(TIMINGS.retryPeriod * 2);
      expect(b.elector.isLeader()).toBe(true);
      expect(await outcome).toBeInstanceOf(LeadershipLostError);
      expect(store.snapshot()!.annotations).toEqual({});
      await expect(a.elector.annotate(term, { [KEY]: 'late' })).rejects.toBeInstanceOf(LeadershipLostError);
    });

    it('under releaseOnStop false, stop() writes the unwritten annotations and keeps the lease', async () => {
      setup();
      const a = start(candidate('a', { releaseOnStop: false }));
      await clock.advance(0);
      const term = a.elector.term!;
      const written = a.elector.annotate(term, { [KEY]: 'kept' });
      await a.elector.stop();
      await written;
      expect(store.holder).toBe('a');
      expect(store.snapshot()!.annotations).toEqual({ [KEY]: 'kept' });
    });
  });

  it('leaves no per-request listener or dependant signal on its lifetime signal (Node 20 keeps every AbortSignal.any dependant)', async () => {
    setup();
    const a = start(candidate('a'));
    await clock.advance(0);
    await clock.advance(500 * 2_000); // 500 renewals
    const lifetime = (a.elector as unknown as { stopController: AbortController }).stopController.signal;
    expect(getEventListeners(lifetime, 'abort')).toHaveLength(0);
    const dependants = Object.getOwnPropertySymbols(lifetime).find((symbol) => symbol.description === 'kDependantSignals');
    expect(dependants === undefined ? 0 : (lifetime as unknown as Record<symbol, Set<unknown>>)[dependants]!.size).toBe(0);
  });

  it('aborts a hung request after max(1 s, renewDeadline / 2)', async () => {
    setup();
    const a = candidate('a');
    a.lock.hang = true;
    start(a);
    await clock.advance(4_999);
    expect(a.events.filter((e) => e.type === 'error')).toHaveLength(0);
    await clock.advance(1);
    const errors = a.events.filter((e) => e.type === 'error' && e.during === 'acquire');
    expect(errors).toHaveLength(1);
    expect((errors[0] as { error: Error }).error.message).toContain('5000 ms');
    a.lock.hang = false;
  });
});
