// Leadership that moves on purpose, on the real control plane under the documented Role:
// stepDown({ to }) to one of ours and to a client-go peer, to a candidate that takes no part, refused
// targets, and spec.preferredHolder set by hand.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { HANDOVER_ANNOTATION, LeaderElector } from 'nestjs-lease-election/core';
import { createLeaderElector, KubernetesLeaseLock, leaseRoleRule, rolloutRoleRule, waitForPodReady } from 'nestjs-lease-election/kubernetes';
import { ensureClientGoPeer } from '../harness/binaries.ts';
import { waitFor } from '../harness/eventually.ts';
import { nextLine, Replica } from '../harness/replicas.ts';
import { recordTerms, expectNoOverlap, type TermWork } from '../harness/term-work.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };

/** One candidate of ours, and its terms' work. */
interface Candidate extends TermWork { elector: LeaderElector }

describe('leadership that moves on purpose', () => {
  const cluster = new TestCluster(inject('cluster'));
  const candidates: Candidate[] = [];
  const processes: Replica[] = [];
  let kubeConfig: KubeConfig;
  let kubeconfigPath: string;
  let namespace: string;

  beforeAll(async () => {
    namespace = await cluster.createNamespace('handover');
    const user = await cluster.mintUser(namespace, 'mover');
    await cluster.grant(namespace, 'mover', user.subject, [leaseRoleRule()]);
    kubeConfig = user.kubeConfig;
    kubeconfigPath = user.kubeconfigPath;
  });

  afterEach(async () => {
    await Promise.all(candidates.splice(0).map((candidate) => candidate.elector.stop()));
    for (const replica of processes.splice(0)) {
      replica.signal('SIGKILL');
      await replica.exited;
    }
  });

  function contender(identity: string, lease: string): Candidate {
    const elector = new LeaderElector({ leaseName: lease, namespace, identity, lossPolicy: 'rejoin', ...TIMINGS },
      { lock: new KubernetesLeaseLock(kubeConfig, lease, namespace), logger: silent, exit: () => {} });
    const made: Candidate = { elector, spans: [], tokens: [] };
    elector.start(recordTerms(made));
    candidates.push(made);
    return made;
  }

  const lease = (name: string) => cluster.coordination.readNamespacedLease({ name, namespace });

  it('stepDown({ to }) hands over to our candidate at once, past a follower that would have raced for a release', async () => {
    const a = contender('a', 'to-ours');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = contender('b', 'to-ours');
    const c = contender('c', 'to-ours');
    await waitFor('followers to see a', () => b.elector.leader === 'a' && c.elector.leader === 'a');
    const askedAt = performance.now();
    await a.elector.stepDown({ to: 'c' });
    await waitFor('c to lead', () => c.elector.isLeader());
    expect(c.spans[0]![0] - askedAt).toBeLessThan(TIMINGS.leaseDuration);
    expect(c.tokens[0]).toBe(a.tokens[0]! + 2);
    expect(b.spans).toHaveLength(0);
    const stored = await lease('to-ours');
    expect(stored.spec?.holderIdentity).toBe('c');
    expect(stored.metadata?.annotations?.[HANDOVER_ANNOTATION]).toBeUndefined();
    expectNoOverlap([a, b, c]);
  });

  it('stepDown({ to }) to a client-go peer: it renews the Lease that names it, and leads', async () => {
    const a = contender('a', 'to-go');
    await waitFor('a to lead', () => a.elector.isLeader());
    const go = new Replica({
      id: 'go-1', kubeconfig: kubeconfigPath, namespace, leaseName: 'to-go',
      timings: { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 }, implementation: { kind: 'client-go', binary: ensureClientGoPeer() },
    });
    processes.push(go);
    await nextLine([go], (line) => line.event === 'new-leader' && line.leader === 'a', 30_000, 'go-1 to see a', 0);
    const since = performance.now();
    await a.elector.stepDown({ to: 'go-1' });
    const started = await nextLine([go], (line) => line.event === 'started-leading', 30_000, 'go-1 to lead', since);
    // client-go takes it at its next poll, well before the lease could have expired.
    expect(started.at - since).toBeLessThan(TIMINGS.leaseDuration);
    expect(started.term).toBe(a.tokens[0]! + 1);
    expect(a.elector.isLeader()).toBe(false);
    await nextLine([go], (line) => line.event === 'work', 30_000, 'go-1 to work', since);
  });

  it('to a candidate that takes no part, the Lease is taken once it expires; bad targets are refused', async () => {
    const a = contender('a', 'to-ghost');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = contender('b', 'to-ghost');
    await waitFor('b to see a', () => b.elector.leader === 'a');
    await expect(a.elector.stepDown({ to: 'a' })).rejects.toThrow('cannot hand lease');
    await expect(b.elector.stepDown({ to: 'a' })).rejects.toThrow('b does not lead');
    const since = performance.now();
    await a.elector.stepDown({ to: 'ghost' });
    expect((await lease('to-ghost')).spec?.holderIdentity).toBe('ghost');
    await waitFor('b to take the expired handover', () => b.elector.isLeader(), 30_000);
    expect(b.spans[0]![0] - since).toBeGreaterThanOrEqual(TIMINGS.leaseDuration - TIMINGS.retryPeriod);
    expectNoOverlap([a, b]);
  });

  it('identities that are Pods: a handover to a Pod that is not Ready, or to a name with no Pod, is refused; to a Ready one it goes', async () => {
    const podUser = await cluster.mintUser(namespace, 'pod-reader');
    await cluster.grant(namespace, 'pod-reader', podUser.subject, [leaseRoleRule(), rolloutRoleRule()]);
    const pod = async (name: string, ready: boolean): Promise<void> => {
      await cluster.core.createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'example' }] } } });
      const current = await cluster.core.readNamespacedPod({ name, namespace });
      await cluster.core.replaceNamespacedPodStatus({ name, namespace, body: { ...current,
        status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date() }] } } });
    };
    await pod('pod-a', true);
    await pod('pod-b', true);
    await pod('pod-starting', false);
    const electors = ['pod-a', 'pod-b'].map((identity) => createLeaderElector({ kubeConfig: podUser.kubeConfig, namespace, leaseName: 'to-pods', identity,
      lossPolicy: 'rejoin', ...TIMINGS }, { logger: silent, exit: () => {} }));
    try {
      electors[0]!.start();
      await waitFor('pod-a to lead', () => electors[0]!.isLeader());
      electors[1]!.start();
      await waitFor('pod-b to see pod-a', () => electors[1]!.leader === 'pod-a');
      await expect(electors[0]!.stepDown({ to: 'pod-starting' })).rejects.toThrow('pod-starting is not a live candidate for lease');
      await expect(electors[0]!.stepDown({ to: 'no-such-pod' })).rejects.toThrow('(no Ready pod of that name)');
      expect(electors[0]!.isLeader()).toBe(true);
      await electors[0]!.stepDown({ to: 'pod-b' });
      await waitFor('pod-b to lead', () => electors[1]!.isLeader());
    } finally {
      await Promise.all(electors.map((elector) => elector.stop()));
    }
  });

  it('waitForPodReady: an instance whose Pod is not Ready does not campaign for a free Lease; once it is Ready it leads', async () => {
    const podUser = await cluster.mintUser(namespace, 'ready-waiter');
    await cluster.grant(namespace, 'ready-waiter', podUser.subject, [leaseRoleRule(), rolloutRoleRule()]);
    await cluster.core.createNamespacedPod({ namespace, body: { metadata: { name: 'pod-warming' }, spec: { containers: [{ name: 'app', image: 'example' }] } } });
    const warnings: string[] = [];
    const logger = { ...silent, warn: (message: string) => { warnings.push(message); } };
    const elector = createLeaderElector({ kubeConfig: podUser.kubeConfig, namespace, leaseName: 'wait-ready', identity: 'pod-warming', lossPolicy: 'rejoin', ...TIMINGS },
      { logger, exit: () => {} });
    // The control: the same, on a Lease of its own, without waiting; by the time it leads, the other would have too.
    const control = createLeaderElector({ kubeConfig: podUser.kubeConfig, namespace, leaseName: 'wait-ready-control', identity: 'control', lossPolicy: 'rejoin',
      ...TIMINGS }, { logger: silent, exit: () => {} });
    const stopWaiting = waitForPodReady(elector, podUser.kubeConfig, logger, 'pod-warming');
    elector.start();
    control.start();
    try {
      await waitFor('the wait to be reported', () => warnings.some((line) => line.includes('pod-warming is not Ready')));
      await waitFor('the control to lead', () => control.isLeader());
      expect(elector.isLeader()).toBe(false);
      await expect(lease('wait-ready')).rejects.toMatchObject({ code: 404 });
      const current = await cluster.core.readNamespacedPod({ name: 'pod-warming', namespace });
      await cluster.core.replaceNamespacedPodStatus({ name: 'pod-warming', namespace, body: { ...current,
        status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date() }] } } });
      await waitFor('pod-warming to lead once Ready', () => elector.isLeader());
    } finally {
      stopWaiting();
      await Promise.all([elector.stop(), control.stop()]);
    }
  });

  it('spec.preferredHolder set by hand moves leadership to that candidate; the handover clears the preference it fulfils', async () => {
    const a = contender('a', 'preferred');
    await waitFor('a to lead', () => a.elector.isLeader());
    const b = contender('b', 'preferred');
    const c = contender('c', 'preferred');
    await waitFor('followers to see a', () => b.elector.leader === 'a' && c.elector.leader === 'a');
    const current = await lease('preferred');
    // The apiserver accepts a preferredHolder only beside a strategy, as the coordinated-leader-election controller writes them.
    await cluster.coordination.replaceNamespacedLease({ name: 'preferred', namespace,
      body: { ...current, spec: { ...current.spec, strategy: 'OldestEmulationVersion', preferredHolder: 'b' } } });
    await waitFor('b to lead', () => b.elector.isLeader(), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMINGS.leaseDuration));
    expect(b.elector.isLeader()).toBe(true);
    expect(c.spans).toHaveLength(0);
    const spec = (await lease('preferred')).spec!;
    expect(spec).toMatchObject({ holderIdentity: 'b', strategy: 'OldestEmulationVersion' });
    // client-go's coordinated elector does not renew a Lease that still prefers anyone.
    expect(spec.preferredHolder).toBeUndefined();
    expectNoOverlap([a, b, c]);
  });
});
