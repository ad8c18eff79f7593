// A simulated rolling update of 3 replicas on a control plane without a kubelet: Pods exist as
// objects (created here, marked Ready through the status subresource once their process answers),
// one candidate process per Pod with the Pod's name as its identity. New pods come up one at a time
// and an old one is SIGTERMed after each, the leader first (the order that moves leadership most).
// Shared by test/integration/rollout.spec.ts and the benchmark.
import { randomUUID } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import { waitFor } from './eventually.ts';
import { nextLine, OverlapDetector, Replica, type Implementation } from './replicas.ts';

export interface RollingUpdateResult {
  /** Who led, in order, and each term's fencing token. */
  leaders: string[];
  tokens: number[];
  /** The longest time nobody worked, from the first leader on (ms, by the lines' own times). */
  longestGapMs: number;
  overlaps: string[];
}

export interface RollingUpdateOptions {
  core: CoreV1Api;
  namespace: string;
  kubeconfig: string;
  implementation: Implementation;
  timings: { leaseDuration: number; renewDeadline: number; retryPeriod: number };
  extraArgs?: string[];
  /** Every replica started, so the caller can kill what is left. */
  started: Replica[];
}

export async function rollingUpdate(options: RollingUpdateOptions): Promise<RollingUpdateResult> {
  const { core, namespace } = options;
  const overlap = new OverlapDetector();
  const leaders: string[] = [];
  const tokens: number[] = [];
  const work: number[] = [];
  const uids = { old: randomUUID(), new: randomUUID() };

  const pod = async (name: string, revision: 'old' | 'new'): Promise<Replica> => {
    await core.createNamespacedPod({ namespace, body: {
      metadata: { name, labels: { app: 'app', 'pod-template-hash': revision },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `app-${revision}`, uid: uids[revision], controller: true }] },
      spec: { containers: [{ name: 'app', image: 'example' }] },
    } });
    const replica = new Replica({ id: name, kubeconfig: options.kubeconfig, namespace, timings: options.timings,
      implementation: options.implementation, extraArgs: options.extraArgs });
    replica.onLine((line) => {
      overlap.observe(line);
      if (line.event === 'work') work.push(Date.parse(line.time));
      if (line.event === 'started-leading' && line.election === undefined) {
        leaders.push(line.id);
        tokens.push(line.term!);
      }
    });
    options.started.push(replica);
    await nextLine([replica], (line) => line.event === 'ready', 30_000, `${name} to start`, 0);
    // Ready once the app answers, as a readiness probe would mark it.
    const current = await core.readNamespacedPod({ name, namespace });
    await core.replaceNamespacedPodStatus({ name, namespace, body: { ...current,
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date() }] } } });
    return replica;
  };
  const current = (): string | undefined => leaders.at(-1);

  const old = [await pod('app-old-0', 'old'), await pod('app-old-1', 'old'), await pod('app-old-2', 'old')];
  await waitFor('a first leader', () => current());
  old.sort((a, b) => Number(b.id === current()) - Number(a.id === current()));
  for (let i = 0; i < 3; i++) {
    await pod(`app-new-${i}`, 'new');
    const leaving = old[i]!;
    const wasLeader = leaving.id === current();
    leaving.signal('SIGTERM');
    const { clean } = await leaving.exited;
    if (!clean) throw new Error(`${leaving.id} did not shut down cleanly:\n${leaving.log}`);
    await core.deleteNamespacedPod({ name: leaving.id, namespace });
    if (wasLeader) await waitFor('a successor', () => current() !== leaving.id, 30_000);
  }
  await waitFor('a new pod to lead and work', () => current()?.startsWith('app-new-') && work.at(-1)! > Date.now() - 300, 30_000);
  const sorted = work.toSorted((a, b) => a - b);
  const longestGapMs = sorted.slice(1).reduce((longest, at, i) => Math.max(longest, at - sorted[i]!), 0);
  return { leaders, tokens, longestGapMs, overlaps: overlap.overlaps() };
}
