import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { LeaderElector } from 'nestjs-lease-election/core';
import { KubernetesLeaseLock, leaseRoleRule } from 'nestjs-lease-election/kubernetes';
import type { KubeConfig } from '@kubernetes/client-node';
import { waitFor } from '../harness/eventually.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };
const LEASES = 40;

/** Established TCP connections this process has open to `port` (Linux: its socket fds matched against /proc/net/tcp). */
function connectionsTo(port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('socket:[')) inodes.add(target.slice(8, -1));
    } catch { /* closed meanwhile */ }
  }
  let count = 0;
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      if (Number.parseInt(fields[2].split(':')[1], 16) === port && fields[3] === '01' && inodes.has(fields[9])) count++;
    }
  }
  return count;
}

/** One election; began and ended: when each of its terms' work began and ended, on this process's clock. */
interface Holder { elector: LeaderElector; lease: string; began: number[]; ended: number[] }

describe('many elections in one process', () => {
  const cluster = new TestCluster(inject('cluster'));
  const running: LeaderElector[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((elector) => elector.stop()));
  });

  function hold(kubeConfig: KubeConfig, namespace: string, identity: string): Holder[] {
    return Array.from({ length: LEASES }, (_, i) => {
      const lease = `shard-${i}`;
      const elector = new LeaderElector({ leaseName: lease, namespace, identity, lossPolicy: 'rejoin', ...TIMINGS },
        { lock: new KubernetesLeaseLock(kubeConfig, lease, namespace), logger: silent, exit: () => {} });
      const holder: Holder = { elector, lease, began: [], ended: [] };
      elector.start(async (term) => {
        holder.began.push(performance.now());
        await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
        holder.ended.push(performance.now());
      });
      running.push(elector);
      return holder;
    });
  }

  it('share one connection pool and one watch per namespace, and hand every Lease over one leader at a time', async () => {
    const namespace = await cluster.createNamespace('many');
    const [a, b] = await Promise.all(['a', 'b'].map(async (id) => {
      const user = await cluster.mintUser(namespace, `many-${id}`);
      // The documented least-privilege Role is enough for the namespace's shared watch.
      await cluster.grant(namespace, `many-${id}`, user.subject, [leaseRoleRule()]);
      return user;
    }));
    const port = Number(new URL(cluster.info.server).port);
    const before = connectionsTo(port);
    const first = hold(a.kubeConfig, namespace, 'a');
    await waitFor(`all ${LEASES} Leases held by a`, () => first.every(({ elector }) => elector.isLeader()));
    const second = hold(b.kubeConfig, namespace, 'b');
    await waitFor(`b to see a lead all ${LEASES}`, () => second.every(({ elector }) => elector.leader === 'a'));
    const connections = connectionsTo(port) - before;
    // Two processes' worth of elections (two kubeconfigs): a pool and a watch each, not two connections per election.
    expect(connections).toBeLessThan(LEASES / 2);

    await Promise.all(first.map(({ elector }) => elector.stop()));
    await waitFor(`b to take all ${LEASES} over`, () => second.every(({ began }) => began.length > 0));
    // Per Lease, b's work began only after a's had ended: never two leaders of one election.
    const overlaps = first.filter(({ ended }, i) => !(ended.length === 1 && second[i].began[0] >= ended[0])).map(({ lease }) => lease);
    expect(overlaps).toEqual([]);
  });
});
