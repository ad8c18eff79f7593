import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { LockError, type ElectionEvent, type Term } from 'nestjs-lease-election';
import { LeaderElector, type LeaseLock, type LeaderElectorOptions } from 'nestjs-lease-election/core';
import { KubernetesLeaseLock, leaseRoleRule } from 'nestjs-lease-election/kubernetes';
import { ControlPlane } from '../harness/control-plane.ts';
import { waitFor } from '../harness/eventually.ts';
import { TestCluster } from '../harness/test-cluster.ts';

// Short timings keep the suite quick; the algorithm is the same at any scale.
const TIMINGS = { leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };

/** A LeaseLock that can be made to go silent, as a killed or partitioned process would. */
class KillableLock implements LeaseLock {
  killed = false;
  readonly description: string;
  private readonly inner: KubernetesLeaseLock;

  constructor(inner: KubernetesLeaseLock) {
    this.inner = inner;
    this.description = inner.description;
  }

  private guard(): void {
    if (this.killed) throw new LockError('unavailable', 'process killed');
  }

  get: LeaseLock['get'] = async (signal) => { this.guard(); return this.inner.get(signal); };
  create: LeaseLock['create'] = async (record, signal) => { this.guard(); return this.inner.create(record, signal); };
  update: LeaseLock['update'] = async (record, basedOn, signal) => { this.guard(); return this.inner.update(record, basedOn, signal); };
  watch: LeaseLock['watch'] = (handlers) => this.inner.watch(handlers);
}

interface Contender {
  elector: LeaderElector;
  lock: KillableLock;
  events: Array<ElectionEvent & { at: number }>;
  terms: Term[];
  /** [start, end) of each term's work, on this process's clock. */
  workIntervals: Array<[number, number]>;
}

describe('LeaderElector on the real control plane', () => {
  const cluster = new TestCluster(inject('cluster'));
  const contenders: Contender[] = [];

  function contend(kubeConfig: KubeConfig, namespace: string, identity: string, options: Partial<LeaderElectorOptions> = {}): Contender {
    const lock = new KillableLock(new KubernetesLeaseLock(kubeConfig, 'controller', namespace));
    const elector = new LeaderElector(
      { leaseName: 'controller', namespace, identity, lossPolicy: 'rejoin', ...TIMINGS, ...options },
      { lock, logger: silent, exit: () => {} },
    );
    const contender: Contender = { elector, lock, events: [], terms: [], workIntervals: [] };
    elector.events$.subscribe((event) => contender.events.push({ ...event, at: performance.now() }));
    elector.start(async (term) => {
      contender.terms.push(term);
      const begun = performance.now();
      await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
      contender.workIntervals.push([begun, performance.now()]);
    });
    contenders.push(contender);
    return contender;
  }

  afterEach(async () => {
    for (const c of contenders) c.lock.killed = false;
    await Promise.all(contenders.splice(0).map((c) => c.elector.stop()));
  });

  function assertNoOverlap(all: Contender[]): void {
    const intervals = all.flatMap((c) => c.workIntervals).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < intervals.length; i++) expect(intervals[i][0]).toBeGreaterThanOrEqual(intervals[i - 1][1]);
  }

  it('three contenders: exactly one leads, the Lease names it, and the others see it', async () => {
    const namespace = await cluster.createNamespace('elect');
    const all = ['a', 'b', 'c'].map((id) => contend(cluster.admin, namespace, id));
    const leader = await waitFor('a leader', () => all.find((c) => c.elector.isLeader()));
    await waitFor('everyone to see the leader', () => all.every((c) => c.elector.leader === leader.elector.identity));
    // Hold for several renewals: still exactly one.
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMINGS.leaseDuration));
    expect(all.filter((c) => c.elector.isLeader()).map((c) => c.elector.identity)).toEqual([leader.elector.identity]);
    const lease = await cluster.coordination.readNamespacedLease({ name: 'controller', namespace });
    expect(lease.spec?.holderIdentity).toBe(leader.elector.identity);
    expect(lease.spec?.leaseDurationSeconds).toBe(3);
    expect(lease.spec?.leaseTransitions).toBe(0);
    expect(leader.events.filter((e) => e.type === 'renewed').length).toBeGreaterThanOrEqual(8);
  });

  it('graceful handover: the leader stops, releases after its work ended, and a follower takes over', async () => {
    const namespace = await cluster.createNamespace('handover');
    const a = contend(cluster.admin, namespace, 'a');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = contend(cluster.admin, namespace, 'b');
    await waitFor('b to follow a', () => b.elector.leader === 'a');
    await a.elector.stop();
    expect(a.workIntervals).toHaveLength(1);
    await waitFor('b to lead', () => b.elector.isLeader());
    assertNoOverlap([a, b]);
    // b took over because a released, not because a's lease ran out.
    const acquired = b.events.find((e) => e.type === 'acquired')!;
    expect(acquired.at - a.workIntervals[0][1]).toBeLessThan(TIMINGS.leaseDuration);
    const lease = await cluster.coordination.readNamespacedLease({ name: 'controller', namespace });
    expect(lease.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(b.terms[0].fencingToken).toBe(1);
  });

  it('a leader that stops renewing is replaced only after leaseDuration, and has stepped down before', async () => {
    const namespace = await cluster.createNamespace('killed');
    const a = contend(cluster.admin, namespace, 'a');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = contend(cluster.admin, namespace, 'b');
    await waitFor('b to follow a', () => b.elector.leader === 'a');
    a.lock.killed = true;
    const killedAt = performance.now();
    await waitFor('b to lead', () => b.elector.isLeader());
    const acquiredAt = b.events.find((e) => e.type === 'acquired')!.at;
    const lostAt = a.events.find((e) => e.type === 'lost')!.at;
    expect(a.events.find((e) => e.type === 'lost')).toMatchObject({ reason: 'renew-deadline' });
    // Safety: a's term ended before b's began; b waited a full lease after a's last renewal.
    expect(lostAt).toBeLessThan(acquiredAt);
    expect(acquiredAt - killedAt).toBeGreaterThanOrEqual(TIMINGS.leaseDuration - TIMINGS.retryPeriod);
    assertNoOverlap([a, b]);
  });

  it('a user with only the documented Role rule can elect; one without gets a 403 that names the fix', async () => {
    const namespace = await cluster.createNamespace('rbac');
    const allowed = await cluster.mintUser(namespace, 'allowed');
    await cluster.grant(namespace, 'leader-election', allowed.subject, [leaseRoleRule()]);
    const denied = await cluster.mintUser(namespace, 'denied');

    const errors: Error[] = [];
    const d = contend(denied.kubeConfig, namespace, 'denied');
    d.elector.events$.subscribe((e) => { if (e.type === 'error') errors.push(e.error); });
    const error = await waitFor('a 403 on get', () => errors.find((e) => e instanceof LockError && e.kind === 'forbidden' && e.message.includes(' get ')));
    expect(error.message).toContain('not allowed to get leases.coordination.k8s.io in namespace');
    expect(error.message).toContain('denied"'); // the apiserver's own words name the user (or service account)
    expect(error.message).toContain('verbs: ["get", "list", "watch", "create", "update"]');
    await d.elector.stop();

    const ok = contend(allowed.kubeConfig, namespace, 'allowed');
    await waitFor('the allowed user to lead', () => ok.elector.isLeader());
    expect(ok.events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('names a missing namespace', async () => {
    const errors: Error[] = [];
    const c = contend(cluster.admin, 'no-such-namespace', 'a');
    c.elector.events$.subscribe((e) => { if (e.type === 'error') errors.push(e.error); });
    const error = await waitFor('an error', () => errors.find((e) => e instanceof LockError && e.kind === 'namespace-not-found'));
    expect(error.message).toContain('namespace "no-such-namespace" does not exist');
  });
});

describe('LeaderElector through an apiserver outage', () => {
  let plane: ControlPlane | undefined;
  let cluster: TestCluster;

  beforeAll(async () => {
    // A private control plane: this test stops its apiserver.
    if (inject('cluster').pkiDir === undefined) return;
    plane = await ControlPlane.start();
    cluster = new TestCluster(plane.info);
  });

  afterAll(async () => {
    await plane?.stop();
  });

  it('the leader steps down within renewDeadline when the apiserver goes away, and the election recovers', async (context) => {
    if (!plane) return context.skip('needs the local control plane (TEST_KUBECONFIG is set)');
    const namespace = await cluster.createNamespace('outage');
    const events: Array<ElectionEvent & { at: number }> = [];
    const electors = ['a', 'b'].map((identity) => {
      const elector = new LeaderElector(
        { leaseName: 'controller', namespace, identity, lossPolicy: 'rejoin', ...TIMINGS },
        { lock: new KubernetesLeaseLock(cluster.admin, 'controller', namespace), logger: silent, exit: () => {} },
      );
      elector.events$.subscribe((event) => events.push({ ...event, at: performance.now() }));
      elector.start();
      return elector;
    });
    try {
      const leader = await waitFor('a leader', () => electors.find((e) => e.isLeader()));
      await plane.stopApiserver();
      const stoppedAt = performance.now();
      const lost = await waitFor('the leader to step down', () => events.find((e) => e.type === 'lost'));
      expect(lost).toMatchObject({ identity: leader.identity, reason: 'renew-deadline' });
      // Within renewDeadline of its last renewal (plus timer slack), and well before anyone could take over.
      const lastRenewal = events.filter((e) => (e.type === 'renewed' || e.type === 'acquired') && e.identity === leader.identity && e.at < lost.at).at(-1)!;
      expect(lost.at - lastRenewal.at).toBeLessThanOrEqual(TIMINGS.renewDeadline + 250);
      expect(lost.at - stoppedAt).toBeLessThan(TIMINGS.leaseDuration);
      expect(electors.some((e) => e.isLeader())).toBe(false);

      await plane.startApiserver();
      await waitFor('a leader again', () => electors.find((e) => e.isLeader()));
      expect(electors.filter((e) => e.isLeader())).toHaveLength(1);
    } finally {
      await Promise.all(electors.map((e) => e.stop()));
    }
  });
});
