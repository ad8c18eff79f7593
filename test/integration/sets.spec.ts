// A set of 12 elections shared out over replicas of the example app (--shards 12), as processes on the
// real control plane under the documented Role: the shares, a join, a graceful leave (SIGTERM) and a
// crash (SIGKILL), with every election's work checked for overlap throughout.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { assignElections } from 'nestjs-lease-election/core';
import { electionSetRoleRule, eventsRoleRule, leaseRoleRule } from 'nestjs-lease-election/kubernetes';
import { waitFor } from '../harness/eventually.ts';
import { OverlapDetector, Replica, type ObservedLine } from '../harness/replicas.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 };
const SHARDS = 12;
const ELECTIONS = Array.from({ length: SHARDS }, (_, i) => String(i));
const WAIT = 30_000;

const moved = (before: Map<string, string>, after: Map<string, string>): number =>
  ELECTIONS.filter((election) => before.get(election) !== after.get(election)).length;

describe('a set of 12 elections over replicas', () => {
  const cluster = new TestCluster(inject('cluster'));
  const replicas: Replica[] = [];
  /** One detector per election: two replicas working on one shard at once is the failure. */
  const overlaps = new Map<string, OverlapDetector>();
  /** Who leads each election now, from the started-leading and stopped-leading lines. */
  const leaders = new Map<string, string>();
  /** Every change of leader, per election, with when it was seen. */
  const changes: Array<{ election: string; from: string | undefined; to: string | undefined; at: number }> = [];
  let namespace: string;
  let kubeconfig: string;

  beforeAll(async () => {
    namespace = await cluster.createNamespace('sets');
    const user = await cluster.mintUser(namespace, 'shards');
    await cluster.grant(namespace, 'shards', user.subject, [leaseRoleRule(), electionSetRoleRule(), eventsRoleRule()]);
    kubeconfig = user.kubeconfigPath;
  });

  afterAll(async () => {
    for (const replica of replicas) replica.signal('SIGKILL');
    await Promise.all(replicas.map((replica) => replica.exited));
  });

  function observe(line: ObservedLine): void {
    const election = (line.election as string | undefined)?.replace(/^shards\//, '');
    if (election === undefined) return;
    let detector = overlaps.get(election);
    if (!detector) overlaps.set(election, detector = new OverlapDetector());
    detector.observe(line);
    const before = leaders.get(election);
    if (line.event === 'started-leading') leaders.set(election, line.id);
    else if (line.event === 'stopped-leading' && before === line.id) leaders.delete(election);
    else return;
    changes.push({ election, from: before, to: leaders.get(election), at: line.at });
  }

  function start(id: string): Replica {
    const replica = new Replica({ id, kubeconfig, namespace, timings: TIMINGS, extraArgs: ['--shards', String(SHARDS)] });
    replica.onLine(observe);
    replicas.push(replica);
    return replica;
  }

  /** How many elections each of `ids` leads, once every election has a leader among them. */
  function shares(ids: string[]): number[] | undefined {
    if (ELECTIONS.some((election) => !ids.includes(leaders.get(election) ?? ''))) return undefined;
    return ids.map((id) => [...leaders.values()].filter((leader) => leader === id).length);
  }

  const snapshot = (): Map<string, string> => new Map(ELECTIONS.map((election) => [election, leaders.get(election)!]));
  /** Every election led by the member the plan names for `members`. */
  const onPlan = (members: string[]): boolean => {
    const plan = assignElections('shards', ELECTIONS, members);
    return ELECTIONS.every((election) => leaders.get(election) === plan.get(election));
  };

  it('shares out evenly, rebalances on a join with the plan\'s moves, hands over on SIGTERM at once and after expiry on SIGKILL, one leader per election', async () => {
    // 1. Three replicas: 4 elections each, every one led.
    for (const id of ['pod-a', 'pod-b', 'pod-c']) start(id);
    await waitFor('3 replicas to lead the elections the plan gives them', () => onPlan(['pod-a', 'pod-b', 'pod-c']), WAIT);
    expect(shares(['pod-a', 'pod-b', 'pod-c'])).toEqual([4, 4, 4]);
    const three = snapshot();

    // 2. A fourth joins: 3 each, and the elections that moved are exactly those the plan moves, each once.
    const joinedAt = changes.length;
    start('pod-d');
    await waitFor('4 replicas to lead the elections the plan gives them', () => onPlan(['pod-a', 'pod-b', 'pod-c', 'pod-d']), WAIT);
    expect(shares(['pod-a', 'pod-b', 'pod-c', 'pod-d'])).toEqual([3, 3, 3, 3]);
    const four = snapshot();
    expect(moved(three, four)).toBeGreaterThanOrEqual(3);
    expect(changes.slice(joinedAt).filter((change) => change.to !== undefined)).toHaveLength(moved(three, four));

    // 3. SIGTERM: pod-b releases its member Lease and its elections; the others take each well before a lease could expire.
    const leaving = replicas[1]!;
    const share = ELECTIONS.filter((election) => four.get(election) === 'pod-b');
    const termAt = performance.now();
    leaving.signal('SIGTERM');
    await waitFor('pod-b\'s share to be led by others', () => share.every((election) => ['pod-a', 'pod-c', 'pod-d'].includes(leaders.get(election) ?? '')), WAIT);
    const handedOver = Math.max(...share.map((election) => changes.findLast((change) => change.election === election && change.to !== undefined)!.at));
    expect(handedOver - termAt).toBeLessThan(TIMINGS.leaseDuration * 1000);
    expect((await leaving.exited).clean).toBe(true);
    // It deleted its member Lease on the way out (the optional delete rule).
    const { items } = await cluster.coordination.listNamespacedLease({ namespace, labelSelector: 'nestjs-lease-election/set=shards' });
    expect(items.map((lease) => lease.metadata!.name).sort()).toEqual(['shards-member-pod-a', 'shards-member-pod-c', 'shards-member-pod-d']);
    await waitFor('3 replicas to lead the elections the plan gives them again', () => onPlan(['pod-a', 'pod-c', 'pod-d']), WAIT);

    // 4. SIGKILL: pod-d's elections are taken only after its Leases expire.
    const crashed = replicas[3]!;
    const lost = ELECTIONS.filter((election) => leaders.get(election) === 'pod-d');
    const lastWork = (): number => Math.max(...crashed.lines.filter((line) => line.event === 'work').map((line) => line.at));
    crashed.signal('SIGKILL');
    await crashed.exited;
    const killedAt = lastWork();
    for (const election of lost) leaders.delete(election); // it cannot say so itself
    await waitFor('pod-d\'s share to be taken', () => lost.every((election) => ['pod-a', 'pod-c'].includes(leaders.get(election) ?? '')), WAIT);
    const takenAt = Math.min(...lost.map((election) => changes.findLast((change) => change.election === election && change.to !== undefined)!.at));
    expect(takenAt - killedAt).toBeGreaterThanOrEqual((TIMINGS.leaseDuration - TIMINGS.retryPeriod) * 1000);
    await waitFor('2 replicas to lead the elections the plan gives them', () => onPlan(['pod-a', 'pod-c']), WAIT);
    expect(shares(['pod-a', 'pod-c'])).toEqual([6, 6]);

    // Throughout: never two replicas working on one election.
    expect([...overlaps.values()].flatMap((detector) => detector.overlaps())).toEqual([]);
    expect(overlaps.size).toBe(SHARDS);
  });
});
