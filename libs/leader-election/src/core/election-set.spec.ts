import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../testing/fake-clock.js';
import { InMemoryLeaseNamespace, type InMemoryLeaseLock } from '../testing/in-memory-lease-lock.js';
import { assignElections } from './assignment.js';
import { ElectionSet, memberLeaseName, SET_LABEL } from './election-set.js';
import { InvalidElectorOptionsError } from './options.js';
import type { LeaseSnapshot } from './lease-record.js';
import type { Term } from './term.js';

const silent = { log: () => {}, warn: () => {}, error: () => {} };
const TIMINGS = { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 };
const names = (count: number): string[] => Array.from({ length: count }, (_, i) => String(i));

function loads(plan: Map<string, string>): number[] {
  const counts = new Map<string, number>();
  for (const member of plan.values()) counts.set(member, (counts.get(member) ?? 0) + 1);
  return [...counts.values()].sort((a, b) => b - a);
}

function moves(before: Map<string, string>, after: Map<string, string>): number {
  return [...after].filter(([election, member]) => before.get(election) !== member).length;
}

/** The replicas that lead each election, as their electors say (clock-checked). */
function leaders(sets: ElectionSet[]): Map<string, string[]> {
  const byElection = new Map<string, string[]>();
  for (const set of sets) {
    for (const election of set.leading()) byElection.set(election, [...byElection.get(election) ?? [], set.identity]);
  }
  return byElection;
}

function shares(sets: ElectionSet[]): number[] {
  return sets.map((set) => set.leading().length);
}

describe('assignElections', () => {
  it('gives every election one member, loads differing by at most one, the same whatever the order of the members', () => {
    for (const [count, members] of [[12, 3], [12, 4], [13, 4], [3, 5], [100, 7]] as const) {
      const ids = Array.from({ length: members }, (_, i) => `pod-${i}`);
      const plan = assignElections('shards', names(count), ids);
      expect(plan.size).toBe(count);
      const counted = loads(plan);
      expect(counted.reduce((a, b) => a + b, 0)).toBe(count);
      expect(counted[0]! - (counted.length === members ? counted.at(-1)! : 0)).toBeLessThanOrEqual(1);
      expect(assignElections('shards', names(count), ids.toReversed())).toEqual(plan);
    }
    expect(assignElections('shards', names(4), []).size).toBe(0);
  });

  it('moves few elections when a member joins or leaves: within a third of the minimum on average, never twice it', () => {
    // 200 sets of 12 elections: 3 members → 4 (the newcomer's share, 3, is the minimum) and back (the leaver's 3).
    let joined = 0;
    let left = 0;
    for (let set = 0; set < 200; set++) {
      const three = assignElections(`set-${set}`, names(12), ['pod-a', 'pod-b', 'pod-c']);
      const four = assignElections(`set-${set}`, names(12), ['pod-a', 'pod-b', 'pod-c', 'pod-d']);
      const join = moves(three, four);
      const leave = moves(four, three);
      expect(join).toBeGreaterThanOrEqual(3);
      expect(join).toBeLessThan(6);
      expect(leave).toBeGreaterThanOrEqual(3);
      expect(leave).toBeLessThan(6);
      joined += join;
      left += leave;
    }
    expect(joined / 200).toBeLessThan(4);
    expect(left / 200).toBeLessThan(4);
  });
});

describe('memberLeaseName', () => {
  it('is the identity when it makes a Lease name, else a cleaned name with a hash that tells identities apart', () => {
    expect(memberLeaseName('shards', 'controller-7d9f-x2')).toBe('shards-member-controller-7d9f-x2');
    const upper = memberLeaseName('shards', 'Pod_A');
    expect(upper).toMatch(/^shards-member-pod-a-[0-9a-f]{10}$/);
    expect(memberLeaseName('shards', 'pod-a')).not.toBe(upper);
    expect(memberLeaseName('shards', 'x'.repeat(300)).length).toBeLessThanOrEqual(253);
  });
});

describe('ElectionSet', () => {
  let clock: FakeClock;
  let leases: InMemoryLeaseNamespace;
  const started: ElectionSet[] = [];
  /** Every lock a replica made, by identity: a test cuts a replica off through them. */
  const locks = new Map<string, InMemoryLeaseLock[]>();

  function replica(identity: string, elections: number | string[] = 12, work?: (election: string, term: Term) => Promise<void> | void): ElectionSet {
    const set = new ElectionSet({ name: 'shards', elections, namespace: 'default', identity, lossPolicy: 'rejoin', ...TIMINGS }, {
      lockFor: (name, labels) => {
        const lock = leases.lockFor(name, labels);
        locks.set(identity, [...locks.get(identity) ?? [], lock]);
        return lock;
      },
      directory: leases.directory(SET_LABEL, 'shards'),
      clock, logger: silent, random: () => 0.5,
    });
    set.start(work);
    started.push(set);
    return set;
  }

  function setup(): void {
    locks.clear();
    clock = new FakeClock();
    leases = new InMemoryLeaseNamespace();
  }

  function make(name: string, elections: number | string[]): () => ElectionSet {
    return () => new ElectionSet({ name, elections, namespace: 'default', identity: 'pod-a' },
      { lockFor: (lease) => leases.lockFor(lease), directory: leases.directory(SET_LABEL, name), clock, logger: silent });
  }

  afterEach(async () => {
    const stopping = Promise.all(started.splice(0).map((set) => set.stop()));
    await clock.advance(60_000);
    await stopping;
  });

  it('shares 12 elections out as 4 each over 3 replicas, each led by exactly one, and the member Leases are labelled', async () => {
    setup();
    const sets = ['pod-a', 'pod-b', 'pod-c'].map((id) => replica(id));
    await clock.advanceUntil(() => leaders(sets).size === 12, 20_000);
    expect(shares(sets)).toEqual([4, 4, 4]);
    for (const [, holders] of leaders(sets)) expect(holders).toHaveLength(1);
    for (const set of sets) {
      expect(set.members).toEqual(['pod-a', 'pod-b', 'pod-c']);
      expect(set.assignment).toEqual(set.leading());
      expect(leases.store(`shards-${set.assignment[0]}`).holder).toBe(set.identity);
    }
    expect(leases.store('shards-member-pod-a').labels).toEqual({ [SET_LABEL]: 'shards' });
  });

  it('a replica that joins takes its share, moving only what the plan moves; one that stops hands its share over at once', async () => {
    setup();
    const sets = ['pod-a', 'pod-b', 'pod-c'].map((id) => replica(id));
    await clock.advanceUntil(() => leaders(sets).size === 12, 20_000);
    const before = new Map([...leaders(sets)].map(([election, [holder]]) => [election, holder!]));
    const terms = new Map<string, string>();
    sets.push(replica('pod-d', 12, (election, term) => {
      terms.set(election, term.identity);
    }));
    await clock.advanceUntil(() => shares(sets).every((share) => share === 3) && leaders(sets).size === 12, 30_000);
    const after = new Map([...leaders(sets)].map(([election, [holder]]) => [election, holder!]));
    expect(moves(before, after)).toBe(moves(assignElections('shards', names(12), ['pod-a', 'pod-b', 'pod-c']),
      assignElections('shards', names(12), ['pod-a', 'pod-b', 'pod-c', 'pod-d'])));
    expect([...terms.keys()].sort()).toEqual([...sets[3]!.leading()].sort());

    // pod-b leaves: its 3 elections are led by others well before any lease could expire.
    const leaving = sets[1]!;
    const share = leaving.leading();
    const stopped = leaving.stop();
    const took = await clock.advanceUntil(() => share.every((election) => leaders(sets).get(election)?.some((id) => id !== 'pod-b')), 5_000, 1);
    await stopped;
    expect(took).toBeLessThan(100);
    const rest = [sets[0]!, sets[2]!, sets[3]!];
    await clock.advanceUntil(() => shares(rest).every((n) => n === 4), 5_000);
    for (const [, holders] of leaders(sets)) expect(holders).toHaveLength(1);
  });

  it('takes a crashed replica\'s share once its Leases expire, not a leaseDuration after its member Lease does', async () => {
    setup();
    const sets = ['pod-a', 'pod-b', 'pod-c'].map((id) => replica(id));
    await clock.advanceUntil(() => leaders(sets).size === 12, 20_000);
    const crashed = sets[2]!;
    const share = crashed.leading();
    // It stops answering: its member and election Leases are no longer renewed, and it never releases.
    for (const lock of locks.get(crashed.identity)!) lock.hang = true;
    const lastRenewal = clock.now();
    const took = await clock.advanceUntil(() => share.every((election) => leaders([sets[0]!, sets[1]!]).has(election)), 60_000, 50);
    expect(took).toBeGreaterThanOrEqual(TIMINGS.leaseDuration - TIMINGS.retryPeriod - 1);
    expect(clock.now() - lastRenewal).toBeLessThan(TIMINGS.leaseDuration + 2 * TIMINGS.retryPeriod);
    expect(shares([sets[0]!, sets[1]!])).toEqual([6, 6]);
  });

  it('counts a newcomer only once its member Lease has been renewed, and never campaigns while it has no members', async () => {
    setup();
    const a = replica('pod-a');
    expect(a.members).toEqual([]);
    await clock.advance(500);
    expect(a.assignment).toEqual([]);
    expect(a.leading()).toEqual([]);
    await clock.advanceUntil(() => a.leading().length === 12, 10_000);
    expect(a.members).toEqual(['pod-a']);
  });

  it('members running different lists of elections (a rollout that changes the list) plan apart: every election of either list has a leader', async () => {
    setup();
    const wide = Array.from({ length: 16 }, (_, i) => String(i));
    const sets = [replica('pod-a'), replica('pod-b'), replica('pod-c', wide), replica('pod-d', wide)];
    await clock.advanceUntil(() => wide.every((election) => leaders(sets).has(election)), 30_000);
    for (const [, holders] of leaders(sets)) expect(holders).toHaveLength(1);
    expect(sets[0]!.members).toEqual(['pod-a', 'pod-b']);
    expect(sets[2]!.members).toEqual(['pod-c', 'pod-d']);
  });

  it('a replica announces itself only once it has listed the members: one that cannot list yet moves nothing', async () => {
    setup();
    const sets = ['pod-a', 'pod-b', 'pod-c'].map((id) => replica(id));
    await clock.advanceUntil(() => leaders(sets).size === 12, 20_000);
    const before = new Map([...leaders(sets)].map(([election, [holder]]) => [election, holder!]));
    let answer: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => { answer = resolve; });
    const listing = leases.directory(SET_LABEL, 'shards');
    // No watch, and lists that hang (ignoring their signal) until the test lets them through.
    const slow = { description: listing.description, list: (signal: AbortSignal) => gate.then(() => listing.list(signal)) };
    const d = new ElectionSet({ name: 'shards', elections: 12, namespace: 'default', identity: 'pod-d', lossPolicy: 'rejoin', ...TIMINGS },
      { lockFor: (name, labels) => leases.lockFor(name, labels), directory: slow, clock, logger: silent, random: () => 0.5 });
    d.start();
    started.push(d);
    await clock.advance(10_000);
    expect(leases.store('shards-member-pod-d').object).toBeUndefined();
    expect(new Map([...leaders(sets)].map(([election, [holder]]) => [election, holder!]))).toEqual(before);
    expect(d.leading()).toEqual([]);
    answer!();
    const all = [...sets, d];
    await clock.advanceUntil(() => shares(all).every((n) => n === 3) && leaders(all).size === 12, 20_000);
    const after = new Map([...leaders(all)].map(([election, [holder]]) => [election, holder!]));
    expect(after).toEqual(assignElections('shards', names(12), ['pod-a', 'pod-b', 'pod-c', 'pod-d']));
  });

  it('what a late list says of a Lease the watch spoke of meanwhile is dropped: a member that left is not counted again', async () => {
    setup();
    let answer: (() => void) | undefined;
    const gated = leases.directory(SET_LABEL, 'shards');
    const slowList = { ...gated, list: (signal: AbortSignal) => {
      const listed = gated.list(signal);
      return answer ? listed : new Promise<Map<string, LeaseSnapshot>>((resolve) => { answer = () => void listed.then(resolve); });
    } };
    const a = new ElectionSet({ name: 'shards', elections: 12, namespace: 'default', identity: 'pod-a', lossPolicy: 'rejoin', ...TIMINGS },
      { lockFor: (name, labels) => leases.lockFor(name, labels), directory: slowList, clock, logger: silent, random: () => 0.5 });
    answer = () => {};
    a.start();
    started.push(a);
    const c = replica('pod-c');
    await clock.advanceUntil(() => a.members.length === 2, 20_000);
    answer = undefined;
    leases.breakDirectoryWatches();
    // a's next poll opens the watch again and sends a list, held back (within its timeout).
    await clock.advanceUntil(() => answer !== undefined, 5_000, 10);
    await c.stop();
    await clock.advance(10);
    expect(a.members).toEqual(['pod-a']);
    answer!();
    await clock.advance(10);
    expect(a.members).toEqual(['pod-a']);
    expect(a.leading()).toHaveLength(12);
  });

  it('deletes its member Lease when it leaves, and member Leases stale for ten minutes; readiness waits for the directory', async () => {
    setup();
    const a = replica('pod-a');
    expect(a.synced).toBe(false);
    const b = replica('pod-b');
    await clock.advanceUntil(() => a.members.length === 2, 20_000);
    expect(a.synced).toBe(true);
    await b.stop();
    expect(leases.store('shards-member-pod-b').object).toBeUndefined();
    // A member that crashed: its Lease expires, and is deleted once stale.
    const c = replica('pod-c');
    await clock.advanceUntil(() => a.members.length === 2, 20_000);
    for (const lock of locks.get('pod-c')!) lock.hang = true;
    await clock.advance(5 * 60_000);
    expect(leases.store('shards-member-pod-c').object).toBeDefined();
    await clock.advance(6 * 60_000);
    expect(leases.store('shards-member-pod-c').object).toBeUndefined();
    void c;
  });

  it('stop() before start() closes every lock and completes its streams', async () => {
    setup();
    let closed = 0;
    const set = new ElectionSet({ name: 'shards', elections: 3, namespace: 'default', identity: 'pod-a' }, {
      lockFor: (name, labels) => Object.assign(leases.lockFor(name, labels), { close: () => { closed++; } }),
      directory: leases.directory(SET_LABEL, 'shards'), clock, logger: silent,
    });
    let completed = false;
    set.assignment$.subscribe({ complete: () => { completed = true; } });
    await set.stop();
    expect(closed).toBe(4);
    expect(completed).toBe(true);
  });

  it('refuses bad options with every problem at once', () => {
    setup();
    expect(make('Shards', 0)).toThrow(InvalidElectorOptionsError);
    expect(make('s'.repeat(64), 2)).toThrow('at most 63 characters');
    expect(make('shards', ['a', 'a', 'member-x', 'B'])).toThrow(
      /listed twice[\s\S]*starts with "member-"[\s\S]*"B" of set "shards" is not a valid name/);
  });
});
