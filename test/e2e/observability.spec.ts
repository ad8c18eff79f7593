import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventsV1Api, KubeConfig } from '@kubernetes/client-node';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  LeaderElectionHealthServer, LeaderElectionModule, LeaderElectionService, type LeaderElectionModuleOptions,
} from 'nestjs-lease-election';
import { LeaderElector } from 'nestjs-lease-election/core';
import { eventsRoleRule, KubernetesLeaseLock, leaseRoleRule } from 'nestjs-lease-election/kubernetes';
import { writeKubeconfig } from '../harness/kubeconfig.ts';
import { waitFor } from '../harness/eventually.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 };
const cluster = new TestCluster(inject('cluster'));
const apps: INestApplicationContext[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function boot(options: LeaderElectionModuleOptions): Promise<INestApplicationContext> {
  @Module({ imports: [LeaderElectionModule.forRoot(options)] })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  apps.push(app);
  return app;
}

describe('metrics', () => {
  it("exports client-go's leader_election_master_status and friends, into the app's registry and on /metrics", async () => {
    const namespace = await cluster.createNamespace('metrics');
    const registry = new Registry();
    const app = await boot({
      leaseName: 'controller', namespace, identity: 'a', kubeConfig: cluster.info.adminKubeconfig, lossPolicy: 'rejoin', ...TIMINGS,
      metrics: { registry }, healthServer: { port: 0, host: '127.0.0.1' },
    });
    const service = app.get(LeaderElectionService);
    await service.whenLeader();
    await waitFor('a renewal', async () => (await registry.getSingleMetricAsString('leader_election_renew_duration_seconds')).includes('_count{name="controller"} '), 20_000, 50);
    const port = app.get(LeaderElectionHealthServer).address()!.port;
    const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(scraped).toContain('leader_election_master_status{name="controller"} 1');
    expect(scraped).toContain('leader_election_transitions_total{name="controller",to="leader"} 1');
    expect(scraped).toMatch(/leader_election_renew_duration_seconds_count\{name="controller"\} [1-9]/);

    await service.stepDown();
    const after = await registry.metrics();
    expect(after).toContain('leader_election_master_status{name="controller"} 0');
    expect(after).toContain('leader_election_transitions_total{name="controller",to="follower"} 1');
  });
});

describe('Kubernetes Events', () => {
  it('records LeaderElection events on the Lease when leadership starts and stops', async () => {
    const namespace = await cluster.createNamespace('events');
    const app = await boot({ leaseName: 'controller', namespace, identity: 'a', kubeConfig: cluster.info.adminKubeconfig, lossPolicy: 'rejoin', ...TIMINGS });
    await app.get(LeaderElectionService).whenLeader();
    await app.get(LeaderElectionService).stepDown();
    const events = cluster.admin.makeApiClient(EventsV1Api);
    let notes: string[] = [];
    await waitFor('two events', async () => {
      const list = await events.listNamespacedEvent({ namespace });
      notes = list.items.filter((event) => event.reason === 'LeaderElection' && event.regarding?.kind === 'Lease' && event.regarding.name === 'controller')
        .map((event) => event.note ?? '');
      return notes.length === 2;
    }, 20_000, 50);
    expect(notes.sort()).toEqual(['a became leader', 'a stopped leading']);
  });

  it('without the right to create events, says so once and leads anyway', async () => {
    const namespace = await cluster.createNamespace('events-denied');
    const user = await cluster.mintUser(namespace);
    await cluster.grant(namespace, 'leases-only', user.subject, [leaseRoleRule()]);
    const warnings: string[] = [];
    const logger = { log() {}, error() {}, warn: (message: string) => warnings.push(message) };
    const elector = new LeaderElector(
      { leaseName: 'controller', namespace, identity: 'a', lossPolicy: 'rejoin', ...TIMINGS },
      { lock: new KubernetesLeaseLock(user.kubeConfig, 'controller', namespace), logger },
    );
    const { attachLeaderEvents } = await import('nestjs-lease-election/kubernetes');
    const detach = attachLeaderEvents(elector, user.kubeConfig, logger);
    elector.start();
    try {
      await waitFor('leadership', async () => elector.isLeader(), 20_000, 50);
      await elector.stepDown();
      await waitFor('the warning', async () => warnings.some((w) => w.includes('cannot record leader election Events')), 20_000, 50);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(warnings.filter((w) => w.includes('cannot record leader election Events'))).toHaveLength(1);
      expect(warnings[0]).toContain(JSON.stringify(eventsRoleRule().verbs));
    } finally {
      detach();
      await elector.stop();
    }
  });
});

describe('logs', () => {
  it('never contain credentials, whatever goes wrong', async () => {
    const namespace = await cluster.createNamespace('secrets');
    const denied = await cluster.mintUser(namespace);
    const secrets: string[] = [];
    const kubeconfigs: KubeConfig[] = [denied.kubeConfig];
    // A user the apiserver does not know: a bearer token it rejects with 401.
    const token = `sekret-${Math.random().toString(36).slice(2)}`;
    const caPem = Buffer.from(cluster.admin.getCurrentCluster()!.caData ?? '', 'base64').toString();
    const bogus = new KubeConfig();
    bogus.loadFromFile(writeKubeconfig(join(cluster.info.workDir ?? '/tmp', `bogus-${namespace}.kubeconfig`), cluster.info.server, caPem, { name: 'bogus', token }, namespace));
    kubeconfigs.push(bogus);
    secrets.push(token);
    const deniedConfig = JSON.parse(readFileSync(denied.kubeconfigPath, 'utf8')) as { users: Array<{ user: Record<string, string> }> };
    for (const value of Object.values(deniedConfig.users[0].user)) {
      secrets.push(value.slice(20, 60)); // a slice of the base64 key and certificate
      const pem = Buffer.from(value, 'base64').toString();
      secrets.push(pem.split('\n')[1]); // a line of the PEM body
    }

    const lines: string[] = [];
    const capture = { log: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
    for (const [i, kubeConfig] of kubeconfigs.entries()) {
      const elector = new LeaderElector(
        { leaseName: `lease-${i}`, namespace, identity: `who-${i}`, lossPolicy: 'rejoin', ...TIMINGS },
        { lock: new KubernetesLeaseLock(kubeConfig, `lease-${i}`, namespace), logger: capture },
      );
      elector.events$.subscribe((event) => {
        if (event.type === 'error') lines.push(event.error.message, String(event.error.stack));
      });
      // Only this elector's lines, and its own words: a number like 401 can also stand in a random user name.
      const from = lines.length;
      elector.start();
      await waitFor('an error', async () => lines.slice(from).some((line) => line.includes(i === 0 ? 'not allowed to' : 'rejected our credentials (401)')), 20_000, 50);
      await elector.stop();
    }
    expect(lines.join('\n')).toContain('rejected our credentials (401)');
    for (const secret of secrets) expect(lines.join('\n')).not.toContain(secret);
  });
});

describe('leader label', () => {
  it("labels the leader's own Pod while it leads, and removes the label when it stops", async () => {
    const namespace = await cluster.createNamespace('label');
    await cluster.core.createNamespacedPod({
      namespace, body: { metadata: { name: 'controller-0' }, spec: { containers: [{ name: 'c', image: 'example:latest' }] } },
    });
    const labels = async (): Promise<Record<string, string>> =>
      (await cluster.core.readNamespacedPod({ name: 'controller-0', namespace })).metadata?.labels ?? {};
    const app = await boot({
      leaseName: 'controller', namespace, identity: 'controller-0', kubeConfig: cluster.info.adminKubeconfig, lossPolicy: 'rejoin',
      ...TIMINGS, leaderLabel: { key: 'example.com/leader', podName: 'controller-0' },
    });
    await app.get(LeaderElectionService).whenLeader();
    await waitFor('the label', async () => (await labels())['example.com/leader'] === 'true', 20_000, 50);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(await labels()).not.toHaveProperty('example.com/leader');
  });
});
