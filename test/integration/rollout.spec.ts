// A simulated rolling update of 3 replicas of the example app on the real control plane
// (test/harness/rolling-update.ts: Pods as objects, marked Ready through the status subresource, one
// process per Pod, the leader terminated first). With handoverOnShutdown 'rollout' leadership moves
// exactly once, into the new revision; with a plain release it moves as the race falls (printed, for
// comparison; `BENCH_ONLY=rollout npm run bench` sets both against client-go).
import { afterEach, describe, expect, inject, it } from 'vitest';
import { eventsRoleRule, leaseRoleRule, rolloutRoleRule } from 'nestjs-lease-election/kubernetes';
import type { Replica } from '../harness/replicas.ts';
import { rollingUpdate, type RollingUpdateResult } from '../harness/rolling-update.ts';
import { TestCluster } from '../harness/test-cluster.ts';

describe('a rolling update of 3 replicas', () => {
  const cluster = new TestCluster(inject('cluster'));
  const started: Replica[] = [];

  afterEach(async () => {
    for (const replica of started.splice(0)) replica.signal('SIGKILL');
  });

  async function run(handover: boolean): Promise<RollingUpdateResult> {
    const namespace = await cluster.createNamespace(handover ? 'rollout' : 'release');
    const user = await cluster.mintUser(namespace, 'app');
    await cluster.grant(namespace, 'app', user.subject, [leaseRoleRule(), rolloutRoleRule(), eventsRoleRule()]);
    return rollingUpdate({
      core: cluster.core, namespace, kubeconfig: user.kubeconfigPath, implementation: { kind: 'example' }, started,
      timings: { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 }, extraArgs: handover ? ['--handover-on-shutdown', 'rollout'] : [],
    });
  }

  it("with handoverOnShutdown 'rollout' leadership moves exactly once, into the new revision, with no overlap", async () => {
    const { leaders, tokens, overlaps } = await run(true);
    console.log(`rolling update, handover to the rollout: leaders ${leaders.join(' → ')} (${leaders.length - 1} move)`);
    expect(leaders).toHaveLength(2);
    expect(leaders[1]).toMatch(/^app-new-/);
    // Handed over, not raced for: the handover's term, then the successor's own.
    expect(tokens[1]).toBe(tokens[0]! + 2);
    expect(overlaps).toEqual([]);
  });

  it('with a plain release the race decides (measured), still with no overlap', async () => {
    const { leaders, overlaps } = await run(false);
    console.log(`rolling update, plain release: leaders ${leaders.join(' → ')} (${leaders.length - 1} moves)`);
    expect(leaders.length).toBeGreaterThanOrEqual(2);
    expect(overlaps).toEqual([]);
  });
});
