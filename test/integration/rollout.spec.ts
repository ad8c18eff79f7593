// A simulated rolling update of 3 replicas of the example app on the real control plane: Pods exist
// as objects (no kubelet runs them: the test creates them, marks them Ready through the status
// subresource, and runs one example process per Pod with the Pod's name as its identity). New pods
// come up one at a time and an old one is SIGTERMed after each, the leader first. With
// handoverOnShutdown 'rollout' leadership moves exactly once, into the new revision; with a plain
// release it moves as the race falls (printed, for comparison).
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { eventsRoleRule, leaseRoleRule, rolloutRoleRule } from 'nestjs-lease-election/kubernetes';
import { waitFor } from '../harness/eventually.ts';
import { nextLine, OverlapDetector, Replica } from '../harness/replicas.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 };
const WAIT = 30_000;

describe('a rolling update of 3 replicas', () => {
  const cluster = new TestCluster(inject('cluster'));
  const replicas: Replica[] = [];

  afterEach(async () => {
    for (const replica of replicas.splice(0)) replica.signal('SIGKILL');
  });

  /** Runs the rolling update; returns the leaders in order and the replicas' overlaps. */
  async function rollingUpdate(handover: boolean): Promise<{ leaders: string[]; tokens: number[]; overlaps: string[] }> {
    const namespace = await cluster.createNamespace(handover ? 'rollout' : 'release');
    const user = await cluster.mintUser(namespace, 'app');
    await cluster.grant(namespace, 'app', user.subject, [leaseRoleRule(), rolloutRoleRule(), eventsRoleRule()]);
    const overlap = new OverlapDetector();
    const leaders: string[] = [];
    const tokens: number[] = [];
    const uids: Record<string, string> = { old: randomUUID(), new: randomUUID() };

    const pod = async (name: string, revision: 'old' | 'new'): Promise<Replica> => {
      await cluster.core.createNamespacedPod({ namespace, body: {
        metadata: { name, labels: { app: 'app', 'pod-template-hash': revision },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `app-${revision}`, uid: uids[revision]!, controller: true }] },
        spec: { containers: [{ name: 'app', image: 'example' }] },
      } });
      const replica = new Replica({ id: name, kubeconfig: user.kubeconfigPath, namespace, timings: TIMINGS,
        extraArgs: handover ? ['--handover-on-shutdown', 'rollout'] : [] });
      replica.onLine((line) => {
        overlap.observe(line);
        if (line.event === 'started-leading' && line.election === undefined) {
          leaders.push(line.id);
          tokens.push(line.term!);
        }
      });
      replicas.push(replica);
      await nextLine([replica], (line) => line.event === 'ready', WAIT, `${name} to start`, 0);
      // Ready once the app answers, as a readiness probe would mark it.
      const current = await cluster.core.readNamespacedPod({ name, namespace });
      await cluster.core.replaceNamespacedPodStatus({ name, namespace, body: { ...current,
        status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date() }] } } });
      return replica;
    };
    const current = (): string | undefined => leaders.at(-1);

    const old = [await pod('app-old-0', 'old'), await pod('app-old-1', 'old'), await pod('app-old-2', 'old')];
    await waitFor('a first leader', () => current());
    // The leader goes first, the way that moves leadership most often.
    old.sort((a, b) => Number(b.id === current()) - Number(a.id === current()));
    for (let i = 0; i < 3; i++) {
      await pod(`app-new-${i}`, 'new');
      const leaving = old[i]!;
      const wasLeader = leaving.id === current();
      leaving.signal('SIGTERM');
      expect((await leaving.exited).clean).toBe(true);
      await cluster.core.deleteNamespacedPod({ name: leaving.id, namespace });
      if (wasLeader) await waitFor('a successor', () => current() !== leaving.id, WAIT);
    }
    // Whoever leads now keeps it once the old pods are gone.
    await waitFor('a new pod to lead', () => current()?.startsWith('app-new-'), WAIT);
    return { leaders, tokens, overlaps: overlap.overlaps() };
  }

  it("with handoverOnShutdown 'rollout' leadership moves exactly once, into the new revision, with no overlap", async () => {
    const { leaders, tokens, overlaps } = await rollingUpdate(true);
    console.log(`rolling update, handover to the rollout: leaders ${leaders.join(' → ')} (${leaders.length - 1} move)`);
    expect(leaders).toHaveLength(2);
    expect(leaders[1]).toMatch(/^app-new-/);
    // Handed over, not raced for: the handover's term, then the successor's own.
    expect(tokens[1]).toBe(tokens[0]! + 2);
    expect(overlaps).toEqual([]);
  });

  it('with a plain release the race decides (measured), still with no overlap', async () => {
    const { leaders, overlaps } = await rollingUpdate(false);
    console.log(`rolling update, plain release: leaders ${leaders.join(' → ')} (${leaders.length - 1} moves)`);
    expect(leaders.length).toBeGreaterThanOrEqual(2);
    expect(overlaps).toEqual([]);
  });
});
