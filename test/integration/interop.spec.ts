import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureClientGoPeer } from '../harness/binaries.ts';
import { nextLine, OverlapDetector, Replica, type Implementation } from '../harness/replicas.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 };
const WAIT = 30_000;

describe('interop with client-go on one Lease', () => {
  const cluster = new TestCluster(inject('cluster'));
  const replicas: Replica[] = [];
  const overlap = new OverlapDetector();
  let namespace: string;
  let goPeer: Implementation;

  beforeAll(async () => {
    goPeer = { kind: 'client-go', binary: ensureClientGoPeer() };
    namespace = await cluster.createNamespace('interop');
  });

  afterAll(async () => {
    for (const replica of replicas) replica.signal('SIGKILL');
    await Promise.all(replicas.map((replica) => replica.exited));
  });

  function start(id: string, implementation: Implementation): Replica {
    const replica = new Replica({ id, kubeconfig: cluster.info.adminKubeconfig, namespace, timings: TIMINGS, implementation });
    replica.onLine((line) => overlap.observe(line));
    replicas.push(replica);
    return replica;
  }

  async function lease(): Promise<{ holder: string | undefined; transitions: number | undefined }> {
    const object = await cluster.admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'example-controller', namespace });
    return { holder: object.spec?.holderIdentity, transitions: object.spec?.leaseTransitions };
  }

  const worksAfter = (id: string, since: number) =>
    nextLine(replicas, (line) => line.event === 'work' && line.id === id, WAIT, `${id} to work`, since);

  it('hands leadership back and forth between client-go and ours, one leader at a time', async () => {
    // 1. client-go leads; ours follows and names it.
    const go1 = start('go-1', goPeer);
    await worksAfter('go-1', 0);
    expect(await lease()).toEqual({ holder: 'go-1', transitions: 0 });
    const ts1 = start('ts-1', { kind: 'example' });
    await nextLine([ts1], (line) => line.event === 'new-leader' && line.leader === 'go-1', WAIT, 'ts-1 to see go-1', 0);

    // 2. client-go releases on SIGTERM (ReleaseOnCancel): ours takes over.
    let since = performance.now();
    go1.signal('SIGTERM');
    const ts1Work = await worksAfter('ts-1', since);
    expect(ts1Work.term).toBe(1);
    expect(await lease()).toEqual({ holder: 'ts-1', transitions: 1 });

    // 3. A client-go follower names ours as leader; ours releases on SIGTERM and client-go takes over.
    const go2 = start('go-2', goPeer);
    await nextLine([go2], (line) => line.event === 'new-leader' && line.leader === 'ts-1', WAIT, 'go-2 to see ts-1', 0);
    since = performance.now();
    ts1.signal('SIGTERM');
    await worksAfter('go-2', since);
    expect(await lease()).toEqual({ holder: 'go-2', transitions: 2 });
    expect((await ts1.exited).clean).toBe(true);

    // 4. client-go is killed (no release): ours takes over once the lease has expired.
    const ts2 = start('ts-2', { kind: 'example' });
    await nextLine([ts2], (line) => line.event === 'new-leader' && line.leader === 'go-2', WAIT, 'ts-2 to see go-2', 0);
    since = performance.now();
    go2.signal('SIGKILL');
    const taken = await worksAfter('ts-2', since);
    expect(taken.at - since).toBeGreaterThan((TIMINGS.leaseDuration - TIMINGS.retryPeriod) * 1000);
    expect(await lease()).toEqual({ holder: 'ts-2', transitions: 3 });

    // Throughout: no overlap, and neither side reported an error (e.g. rejecting the other's timestamps).
    expect(overlap.overlaps()).toEqual([]);
    expect(overlap.terms).toBe(4);
    const errors = replicas.flatMap((replica) => replica.lines).filter((line) => line.event === 'error');
    expect(errors).toEqual([]);
  });
});
