// Coordinated leader election on the real control plane with the apiserver's controller on (feature
// gate CoordinatedLeaderElection, coordination.k8s.io/v1beta1 served): candidates of ours and of
// client-go announce LeaseCandidates with mixed versions, and the controller's strategy picks who
// leads. Also: a control plane that does not serve LeaseCandidates runs the ordinary election, and a
// Role without the leasecandidates rule gets an error naming it.
import type { KubeConfig, V1beta1LeaseCandidate } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LeaderElector } from 'nestjs-lease-election/core';
import { createLeaderElector, leaseCandidateRoleRule, leaseRoleRule } from 'nestjs-lease-election/kubernetes';
import { ensureClientGoPeer } from '../harness/binaries.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import { waitFor } from '../harness/eventually.ts';
import { nextLine, OverlapDetector, Replica } from '../harness/replicas.ts';
import { recordTerms, expectNoOverlap, type TermWork } from '../harness/term-work.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 };
const SECONDS = { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 };

/** One in-process candidate: its log lines, and its terms' work. */
interface Candidate extends TermWork { elector: LeaderElector; logs: string[] }

function candidate(kubeConfig: KubeConfig, namespace: string, leaseName: string, identity: string, binaryVersion?: string): Candidate {
  const logs: string[] = [];
  const log = (message: string): void => { logs.push(message); };
  const elector = createLeaderElector({ kubeConfig, namespace, leaseName, identity, lossPolicy: 'rejoin', ...TIMINGS,
    ...binaryVersion ? { coordinated: { binaryVersion } } : {} }, { logger: { log, warn: log, error: log }, exit: () => {} });
  const made: Candidate = { elector, logs, spans: [], tokens: [] };
  elector.start(recordTerms(made));
  return made;
}

describe('coordinated leader election, with the apiserver controller on', () => {
  const cluster = new TestCluster(inject('cluster'));
  const candidates: Candidate[] = [];
  const processes: Replica[] = [];
  let kubeConfig: KubeConfig;
  let kubeconfigPath: string;
  let namespace: string;

  beforeAll(async () => {
    namespace = await cluster.createNamespace('coordinated');
    const user = await cluster.mintUser(namespace, 'candidate');
    await cluster.grant(namespace, 'candidate', user.subject, [leaseRoleRule(), leaseCandidateRoleRule()]);
    kubeConfig = user.kubeConfig;
    kubeconfigPath = user.kubeconfigPath;
  });

  afterEach(async () => {
    await Promise.all(candidates.splice(0).map((c) => c.elector.stop()));
    for (const replica of processes.splice(0)) {
      replica.signal('SIGKILL');
      await replica.exited;
    }
  });

  const join = (leaseName: string, identity: string, version: string): Candidate => {
    const made = candidate(kubeConfig, namespace, leaseName, identity, version);
    candidates.push(made);
    return made;
  };
  const lease = (name: string) => cluster.coordination.readNamespacedLease({ name, namespace });
  const leaseCandidate = async (name: string): Promise<V1beta1LeaseCandidate | undefined> => {
    try {
      return await cluster.coordinationBeta.readNamespacedLeaseCandidate({ name, namespace });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  };

  it('mixed versions, ours and client-go: the oldest leads; on its crash the controller names the next, on a release the next', async () => {
    const overlap = new OverlapDetector();
    const spawn = (id: string, version: string, goPeer = false): Replica => {
      const replica = new Replica({ id, kubeconfig: kubeconfigPath, namespace, leaseName: 'mixed', timings: SECONDS, extraArgs: ['--coordinated', version],
        ...goPeer ? { implementation: { kind: 'client-go', binary: ensureClientGoPeer() } } : {} });
      replica.onLine((line) => overlap.observe(line));
      processes.push(replica);
      return replica;
    };
    const newest = spawn('ours-1-36', '1.36.0');
    const oldest = spawn('ours-1-34', '1.34.0');
    // The controller elects among the candidates announced so far, and moves leadership (preferredHolder) when an
    // older one announces later: whichever of the two starts first may lead for a moment, the older one leads after.
    await nextLine([oldest], (line) => line.event === 'started-leading', 60_000, 'the oldest version to lead', 0);
    const middle = spawn('go-1-35', '1.35.0', true);
    const all = [newest, oldest, middle];
    await nextLine([middle], (line) => line.event === 'new-leader' && line.leader === 'ours-1-34', 60_000, 'client-go to follow the oldest', 0);
    expect((await lease('mixed')).spec).toMatchObject({ holderIdentity: 'ours-1-34', strategy: 'OldestEmulationVersion' });
    const newestCandidate = await waitFor('ours-1-36 to announce itself', () => leaseCandidate('ours-1-36'), 30_000, 50);
    expect(newestCandidate.spec).toMatchObject({ leaseName: 'mixed', binaryVersion: '1.36.0', emulationVersion: '1.36.0' });
    const goCandidate = await waitFor('client-go to announce itself', () => leaseCandidate('go-1-35'), 30_000, 50);
    expect(goCandidate.spec).toMatchObject({ leaseName: 'mixed', binaryVersion: '1.35.0' });
    // Announced, older than ours-1-36 and younger than the leader: the controller leaves the lease where it is.
    expect((await lease('mixed')).spec?.holderIdentity).toBe('ours-1-34');

    // A crash leaves its LeaseCandidate behind, silent: the controller pings it, gives up on it, and names client-go's.
    let since = performance.now();
    oldest.signal('SIGKILL');
    const second = await nextLine(all, (line) => line.event === 'started-leading', 60_000, 'a leader after the crash', since);
    expect(second.id).toBe('go-1-35');
    await nextLine([middle], (line) => line.event === 'work', 30_000, 'client-go to work', since);

    // client-go releases on SIGTERM; the controller names ours, which takes the Lease at once.
    since = performance.now();
    middle.signal('SIGTERM');
    const third = await nextLine(all, (line) => line.event === 'started-leading', 60_000, 'a leader after the release', since);
    expect(third.id).toBe('ours-1-36');
    await nextLine([newest], (line) => line.event === 'work', 30_000, 'ours to work', since);
    expect(overlap.overlaps()).toEqual([]);
  });

  it('a newcomer with an older version is preferred, and the leader hands over to it after its work settled: token +2, preference cleared', async () => {
    const a = join('prefer-older', 'a-1-32', '1.32.0');
    await waitFor('a to be named and lead', () => a.elector.isLeader(), 60_000);
    const b = join('prefer-older', 'b-1-30', '1.30.0');
    await waitFor('b to lead', () => b.elector.isLeader(), 60_000);
    expect(b.tokens[0]).toBe(a.tokens[0]! + 2);
    const spec = (await lease('prefer-older')).spec!;
    expect(spec.holderIdentity).toBe('b-1-30');
    expect(spec.preferredHolder).toBeUndefined();
    expectNoOverlap([a, b]);
  });

  it('a leader that stops withdraws its candidacy first, and the controller names the best of the rest; a handover to a non-candidate is refused', async () => {
    const a = join('stop', 'a-1-30', '1.30.0');
    await waitFor('a to be named and lead', () => a.elector.isLeader(), 60_000);
    const b = join('stop', 'b-1-31', '1.31.0');
    const c = join('stop', 'c-1-32', '1.32.0');
    await waitFor('b and c to see a', () => b.elector.leader === 'a-1-30' && c.elector.leader === 'a-1-30', 30_000);
    await waitFor('b and c to be announced', async () => (await leaseCandidate('b-1-31')) !== undefined && (await leaseCandidate('c-1-32')) !== undefined);
    await expect(a.elector.stepDown({ to: 'nobody' })).rejects.toThrow('nobody is not a live candidate for lease');
    expect(a.elector.isLeader()).toBe(true);
    await a.elector.stop();
    expect(await leaseCandidate('a-1-30')).toBeUndefined();
    await waitFor('b to lead', () => b.elector.isLeader(), 60_000);
    expect(c.spans).toHaveLength(0);
    expectNoOverlap([a, b, c]);
  });

  it('without the leasecandidates rule, each attempt reports the rule to grant, and the candidate never leads', async () => {
    const ns = await cluster.createNamespace('coordinated-rbac');
    const user = await cluster.mintUser(ns, 'no-candidates');
    await cluster.grant(ns, 'no-candidates', user.subject, [leaseRoleRule()]);
    const made = candidate(user.kubeConfig, ns, 'denied', 'x-1-0', '1.0.0');
    candidates.push(made);
    await waitFor('the error', () => made.logs.some((line) => line.includes('not allowed to create leasecandidates.coordination.k8s.io')), 30_000);
    const error = made.logs.find((line) => line.includes('not allowed to create leasecandidates'))!;
    expect(error).toContain('resources: ["leasecandidates"], verbs: ["get", "create", "update", "watch", "delete"]');
    expect(made.elector.isCoordinated).toBe(false);
    expect(made.elector.isLeader()).toBe(false);
  });
});

describe('coordinated leader election where the apiserver does not serve LeaseCandidates', () => {
  let plane: ControlPlane;

  beforeAll(async () => {
    plane = await ControlPlane.start();
  }, 120_000);

  afterAll(async () => {
    await plane?.stop();
  });

  it('says so once and runs the ordinary election', async () => {
    const cluster = new TestCluster(plane.info);
    const namespace = await cluster.createNamespace('plain');
    const user = await cluster.mintUser(namespace, 'candidate');
    await cluster.grant(namespace, 'candidate', user.subject, [leaseRoleRule(), leaseCandidateRoleRule()]);
    const made = candidate(user.kubeConfig, namespace, 'plain', 'a-1-0', '1.0.0');
    try {
      await waitFor('a to lead by the ordinary election', () => made.elector.isLeader(), 30_000);
      expect(made.elector.isCoordinated).toBe(false);
      expect(made.logs.filter((line) => line.includes('does not coordinate elections'))).toHaveLength(1);
    } finally {
      await made.elector.stop();
    }
  });
});
