import { ApiException, CoordinationV1Api, V1MicroTime, VersionApi, type V1Lease } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { controlPlaneVersions } from '../harness/binaries.ts';
import { eventually } from '../harness/eventually.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const SIX_DIGIT_MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

describe('the local control plane', () => {
  const cluster = new TestCluster(inject('cluster'));
  let namespace: string;

  beforeAll(async () => {
    namespace = await cluster.createNamespace('cp');
  });

  it('is a real kube-apiserver of the version built here', async () => {
    const version = await cluster.admin.makeApiClient(VersionApi).getCode();
    // Against TEST_KUBECONFIG any real release will do; locally, exactly the one built from test/k8s.
    const expected = process.env.TEST_KUBECONFIG ? /^v1\.\d+\.\d+/ : new RegExp(`^${controlPlaneVersions().kubernetes}$`);
    expect(version.gitVersion).toMatch(expected);
    expect(version.goVersion).toMatch(/^go1\./);
  });

  it('creates, reads and replaces a Lease with MicroTime timestamps', async () => {
    const now = new V1MicroTime();
    const created = await cluster.coordination.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: 'crud' },
        spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 0 },
      },
    });
    const read = await cluster.coordination.readNamespacedLease({ name: 'crud', namespace });
    expect(read.spec?.holderIdentity).toBe('a');
    expect(read.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
    // Values read back are the wire strings, with exactly six fractional digits.
    expect(String(read.spec?.renewTime)).toMatch(SIX_DIGIT_MICROTIME);

    const renewed: V1Lease = { ...read, spec: { ...read.spec, holderIdentity: 'b', renewTime: new V1MicroTime(), leaseTransitions: 1 } };
    const replaced = await cluster.coordination.replaceNamespacedLease({ name: 'crud', namespace, body: renewed });
    expect(replaced.spec?.holderIdentity).toBe('b');
    expect(replaced.spec?.leaseTransitions).toBe(1);
    expect(replaced.metadata?.resourceVersion).not.toBe(read.metadata?.resourceVersion);
  });

  it('rejects a replace based on a stale resourceVersion with 409 Conflict', async () => {
    const lease = await cluster.coordination.createNamespacedLease({
      namespace, body: { metadata: { name: 'stale' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } },
    });
    await cluster.coordination.replaceNamespacedLease({
      name: 'stale', namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } },
    });
    const stale = cluster.coordination.replaceNamespacedLease({
      name: 'stale', namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: 'c' } },
    });
    await expect(stale).rejects.toSatisfy((error) => statusOf(error) === 409);
  });

  it('enforces RBAC: a user without rights gets 403 until a Role for leases is bound', async () => {
    const user = await cluster.mintUser(namespace);
    const leases = user.kubeConfig.makeApiClient(CoordinationV1Api);
    const denied = await leases.listNamespacedLease({ namespace }).catch((error: unknown) => error);
    expect(statusOf(denied)).toBe(403);
    expect(String((denied as ApiException<string>).body)).toContain(user.subject.name);

    await cluster.grant(namespace, 'lease-reader', user.subject, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list'] },
    ]);
    const list = await eventually(() => leases.listNamespacedLease({ namespace }));
    expect(list.items.map((lease) => lease.metadata?.name)).toContain('crud');
    // Only what was granted: writing is still forbidden.
    const write = await leases.createNamespacedLease({ namespace, body: { metadata: { name: 'nope' } } })
      .catch((error: unknown) => error);
    expect(statusOf(write)).toBe(403);
  });
});
