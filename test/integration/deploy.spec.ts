import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CoordinationV1Api, KubeConfig, loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { type ElectionEvent } from 'nestjs-lease-election';
import { LeaderElector } from 'nestjs-lease-election/core';
import { eventsRoleRule, KubernetesLeaseLock, leaseRoleRule } from 'nestjs-lease-election/kubernetes';
import { ensureBinaries } from '../harness/binaries.ts';
import { writeKubeconfig } from '../harness/kubeconfig.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const MANIFESTS = resolve(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');

describe('deploy/kubernetes', () => {
  const cluster = new TestCluster(inject('cluster'));

  function kubectl(...args: string[]): string {
    const result = spawnSync(ensureBinaries().kubectl, ['--kubeconfig', cluster.info.adminKubeconfig, ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  }

  it('is accepted by the apiserver, and its Role is exactly the rules the library documents', async () => {
    const namespace = await cluster.createNamespace('deploy');
    expect(kubectl('apply', '--dry-run=server', '-n', namespace, '-f', MANIFESTS)).toContain('deployment.apps/example-controller created (server dry run)');
    const documents = loadAllYaml(readFileSync(join(MANIFESTS, 'example-controller.yaml'), 'utf8')) as Array<{ kind: string; rules?: unknown }>;
    expect(documents.map((doc) => doc.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding', 'Deployment']);
    expect(documents.find((doc) => doc.kind === 'Role')!.rules).toEqual([leaseRoleRule(), eventsRoleRule()]);
  });

  it("the ServiceAccount it creates can elect with that Role, and do nothing else with Leases", async () => {
    const namespace = await cluster.createNamespace('deploy-sa');
    kubectl('apply', '-n', namespace, '-f', MANIFESTS);
    const token = await cluster.core.createNamespacedServiceAccountToken({
      name: 'example-controller', namespace, body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const caPem = Buffer.from(cluster.admin.getCurrentCluster()!.caData ?? '', 'base64').toString();
    const path = writeKubeconfig(join(cluster.info.workDir ?? '/tmp', `sa-${namespace}.kubeconfig`), cluster.info.server, caPem,
      { name: 'example-controller', token: token.status!.token }, namespace);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(path);

    const events: ElectionEvent[] = [];
    const elector = new LeaderElector(
      { leaseName: 'example-controller', namespace, identity: 'pod-0', leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 },
      { lock: new KubernetesLeaseLock(kubeConfig, 'example-controller', namespace), logger: { log() {}, warn() {}, error() {} } },
    );
    elector.events$.subscribe((event) => events.push(event));
    elector.start();
    try {
      await new Promise<void>((done) => elector.leadership$.subscribe((leading) => leading && done()));
      await new Promise((done) => setTimeout(done, 1_500)); // a few renewals and the watch
      expect(events.filter((event) => event.type === 'error')).toEqual([]);
      expect(events.filter((event) => event.type === 'renewed').length).toBeGreaterThan(0);
    } finally {
      await elector.stop();
    }
    const denied = await kubeConfig.makeApiClient(CoordinationV1Api)
      .deleteNamespacedLease({ name: 'example-controller', namespace }).catch((error: { code?: number }) => error);
    expect((denied as { code?: number }).code).toBe(403);
  });
});
