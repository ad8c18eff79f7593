import { join } from 'node:path';
import { Controller, Get, Injectable, Module, Scope, type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  InvalidElectorOptionsError, LeaderElectionHealthServer, LeaderElectionModule, LeaderElectionService, OnLeader, type LeaderElectionModuleOptions, type Term,
} from 'nestjs-lease-election';
import { LeaderElectionHealthIndicator } from 'nestjs-lease-election/terminus';
import { TcpProxy } from '../harness/tcp-proxy.ts';
import { waitFor } from '../harness/eventually.ts';
import { TestCluster } from '../harness/test-cluster.ts';

const TIMINGS = { leaseDuration: 3_000, renewDeadline: 2_000, retryPeriod: 500 };
const cluster = new TestCluster(inject('cluster'));

/** Records every run of its @OnLeader methods, per app. */
@Injectable()
class Work {
  static runs: Array<{ app: string; election: string; term: Term; ended?: number }> = [];
  app = '';

  @OnLeader()
  async reconcile(term: Term): Promise<void> {
    await this.until(term, 'default');
  }

  @OnLeader()
  async alsoOnDefault(term: Term): Promise<void> {
    await this.until(term, 'default-2');
  }

  private async until(term: Term, election: string): Promise<void> {
    const run: (typeof Work.runs)[number] = { app: this.app, election, term };
    Work.runs.push(run);
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
    run.ended = performance.now();
  }
}

@Injectable()
class ShardWork {
  static runs: Array<{ app: string; shard: string }> = [];
  app = '';

  @OnLeader('shard-a')
  async shardA(term: Term): Promise<void> {
    ShardWork.runs.push({ app: this.app, shard: 'a' });
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
  }

  @OnLeader({ election: 'shard-b' })
  async shardB(term: Term): Promise<void> {
    ShardWork.runs.push({ app: this.app, shard: 'b' });
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
  }
}

@Injectable()
class FlakyWork {
  static calls: Array<{ app: string; term: number }> = [];
  app = '';

  @OnLeader()
  async run(term: Term): Promise<void> {
    FlakyWork.calls.push({ app: this.app, term: term.fencingToken });
    if (FlakyWork.calls.length < 3) throw new Error('reconcile failed');
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
  }
}

@Injectable()
class FailingWork {
  app = '';

  @OnLeader({ onError: 'step-down' })
  async run(term: Term): Promise<void> {
    if (this.app === 'a') throw new Error('cannot reconcile here');
    await new Promise((resolve) => term.signal.addEventListener('abort', resolve, { once: true }));
  }
}

@Controller('health')
class HealthController {
  constructor(private readonly health: HealthCheckService, private readonly election: LeaderElectionHealthIndicator) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.election.isHealthy()]);
  }
}

const apps: Array<INestApplicationContext> = [];

async function startContext(name: string, moduleOptions: LeaderElectionModuleOptions, providers: Array<new (...args: never[]) => unknown> = [Work]): Promise<INestApplicationContext> {
  @Module({ imports: [LeaderElectionModule.forRoot(moduleOptions)], providers })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  for (const provider of providers) (app.get(provider) as { app: string }).app = name;
  apps.push(app);
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  Work.runs = [];
  ShardWork.runs = [];
});

function options(namespace: string, identity: string, extra: Partial<LeaderElectionModuleOptions> = {}): LeaderElectionModuleOptions {
  return {
    leaseName: 'controller', namespace, identity, kubeConfig: cluster.info.adminKubeconfig,
    lossPolicy: 'rejoin', ...TIMINGS, ...extra,
  };
}

describe('LeaderElectionModule in real Nest apps on the real control plane', () => {
  it('two apps contend: @OnLeader methods run on exactly one, all of them on the same acquisition', async () => {
    const namespace = await cluster.createNamespace('nest');
    const a = await startContext('a', options(namespace, 'a'));
    const b = await startContext('b', options(namespace, 'b'));
    await waitFor('both methods to start', () => Work.runs.length === 2);
    await new Promise((resolve) => setTimeout(resolve, TIMINGS.leaseDuration));
    expect(Work.runs).toHaveLength(2);
    const leaderApp = Work.runs[0].app;
    expect(Work.runs.every((run) => run.app === leaderApp && run.term.fencingToken === 0)).toBe(true);
    const [leader, follower] = leaderApp === 'a' ? [a, b] : [b, a];
    expect(leader.get(LeaderElectionService).isLeader()).toBe(true);
    expect(follower.get(LeaderElectionService).isLeader()).toBe(false);
    expect(follower.get(LeaderElectionService).election().leader).toBe(leaderApp);
  });

  it('leadership moves on shutdown: work is aborted and awaited, then the lease released to the other app', async () => {
    const namespace = await cluster.createNamespace('nest-close');
    const a = await startContext('a', options(namespace, 'a'));
    await waitFor('a to lead', () => a.get(LeaderElectionService).isLeader());
    await startContext('b', options(namespace, 'b'));
    await waitFor('b to follow', () => Work.runs.length === 2);
    await a.close();
    apps.splice(apps.indexOf(a), 1);
    expect(Work.runs.filter((run) => run.app === 'a').every((run) => run.ended !== undefined)).toBe(true);
    await waitFor('b to run the work', () => Work.runs.filter((run) => run.app === 'b').length === 2);
    const aEnded = Math.max(...Work.runs.filter((run) => run.app === 'a').map((run) => run.ended!));
    const bTerm = Work.runs.find((run) => run.app === 'b')!.term;
    expect(bTerm.fencingToken).toBe(1);
    expect(aEnded).toBeLessThan(performance.now());
    const lease = await cluster.coordination.readNamespacedLease({ name: 'controller', namespace });
    expect(lease.spec?.holderIdentity).toBe('b');
  });

  it('stepDown() hands over to the other app, and whenLeader() resolves there', async () => {
    const namespace = await cluster.createNamespace('nest-step');
    const a = await startContext('a', options(namespace, 'a'));
    const aService = a.get(LeaderElectionService);
    const term = await aService.whenLeader();
    expect(term.fencingToken).toBe(0);
    const b = await startContext('b', options(namespace, 'b'));
    const bService = b.get(LeaderElectionService);
    await waitFor('b to see a', () => bService.election().leader === 'a');
    const bLeads = bService.whenLeader();
    await aService.stepDown();
    expect(term.signal.aborted).toBe(true);
    expect((await bLeads).fencingToken).toBe(1);
    expect(aService.isLeader()).toBe(false);
  });

  it('whenLeader() rejects with a clear error when the app shuts down first', async () => {
    const namespace = await cluster.createNamespace('nest-when');
    await startContext('a', options(namespace, 'a'));
    const b = await startContext('b', options(namespace, 'b'));
    const waiting = b.get(LeaderElectionService).whenLeader();
    await b.close();
    apps.splice(apps.indexOf(b), 1);
    await expect(waiting).rejects.toThrow('the application shut down before b became leader');
  });

  it('named elections run independently, each on its own Lease', async () => {
    const namespace = await cluster.createNamespace('nest-named');
    const shards = { 'shard-a': { leaseName: 'shard-a' }, 'shard-b': { leaseName: 'shard-b' } };
    const a = await startContext('a', options(namespace, 'a', { elections: shards }), [ShardWork]);
    await waitFor('a to lead both shards', () => ShardWork.runs.length === 2);
    const b = await startContext('b', options(namespace, 'b', { elections: shards }), [ShardWork]);
    await a.get(LeaderElectionService).stepDown('shard-b');
    await waitFor('b to lead shard-b', () => ShardWork.runs.some((run) => run.app === 'b' && run.shard === 'b'));
    const aService = a.get(LeaderElectionService);
    const bService = b.get(LeaderElectionService);
    expect(aService.isLeader('shard-a')).toBe(true);
    expect(aService.isLeader('shard-b')).toBe(false);
    expect(bService.isLeader('shard-b')).toBe(true);
    expect(ShardWork.runs.filter((run) => run.shard === 'a').map((run) => run.app)).toEqual(['a']);
    const leases = await cluster.coordination.listNamespacedLease({ namespace });
    expect(leases.items.map((lease) => [lease.metadata?.name, lease.spec?.holderIdentity]).sort()).toEqual([
      ['controller', 'a'], ['shard-a', 'a'], ['shard-b', 'b'],
    ]);
  });

  it("a method that throws is restarted with backoff while still leading ('restart')", async () => {
    const namespace = await cluster.createNamespace('nest-restart');
    FlakyWork.calls = [];
    const a = await startContext('a', options(namespace, 'a'), [FlakyWork]);
    await waitFor('the third call', () => FlakyWork.calls.length === 3);
    expect(FlakyWork.calls).toEqual([{ app: 'a', term: 0 }, { app: 'a', term: 0 }, { app: 'a', term: 0 }]);
    expect(a.get(LeaderElectionService).isLeader()).toBe(true);
  });

  it("a method that throws under 'step-down' hands the lease to a peer", async () => {
    const namespace = await cluster.createNamespace('nest-stepdown');
    const a = await startContext('a', options(namespace, 'a'), [FailingWork]);
    const lost = new Promise((resolve) => a.get(LeaderElectionService).events$.subscribe((e) => e.type === 'lost' && resolve(e.reason)));
    await a.get(LeaderElectionService).whenLeader();
    const b = await startContext('b', options(namespace, 'b'), [FailingWork]);
    expect(await lost).toBe('stepped-down');
    const term = await b.get(LeaderElectionService).whenLeader();
    expect(term.fencingToken).toBeGreaterThanOrEqual(1);
  });

  it('forRootAsync takes its options from ConfigService', async () => {
    const namespace = await cluster.createNamespace('nest-async');
    @Module({
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          load: [() => ({ LEASE: 'from-config', NAMESPACE: namespace, KUBECONFIG_PATH: cluster.info.adminKubeconfig })],
        }),
        LeaderElectionModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            leaseName: config.getOrThrow<string>('LEASE'),
            namespace: config.getOrThrow<string>('NAMESPACE'),
            kubeConfig: config.getOrThrow<string>('KUBECONFIG_PATH'),
            identity: 'configured', ...TIMINGS,
          }),
        }),
      ],
    })
    class AsyncModule {}
    const app = await NestFactory.createApplicationContext(AsyncModule, { logger: false });
    apps.push(app);
    await app.get(LeaderElectionService).whenLeader();
    const lease = await cluster.coordination.readNamespacedLease({ name: 'from-config', namespace });
    expect(lease.spec?.holderIdentity).toBe('configured');
  });

  it('refuses @OnLeader on a request-scoped provider at bootstrap, naming it', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @OnLeader()
      async work(): Promise<void> {}
    }
    const namespace = await cluster.createNamespace('nest-scope');
    @Module({ imports: [LeaderElectionModule.forRoot(options(namespace, 'a'))], providers: [PerRequest] })
    class ScopedModule {}
    await expect(NestFactory.createApplicationContext(ScopedModule, { logger: false, abortOnError: false }))
      .rejects.toThrow('PerRequest.work is on a request-scoped provider');
  });

  it('stops the app at bootstrap with every invalid option listed', async () => {
    @Module({
      imports: [LeaderElectionModule.forRoot({
        leaseName: 'Not_Valid', namespace: 'x', identity: 'a', kubeConfig: cluster.info.adminKubeconfig,
        leaseDuration: 15, renewDeadline: 10, retryPeriod: 20,
      })],
    })
    class BadModule {}
    const failure = await NestFactory.createApplicationContext(BadModule, { logger: false, abortOnError: false })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(InvalidElectorOptionsError);
    const problems = (failure as InvalidElectorOptionsError).problems.join('\n');
    expect(problems).toContain('leaseName "Not_Valid" is not a valid Lease name');
    expect(problems).toContain('did you mean 15000?');
    expect(problems).toContain('renewDeadline (10) must be greater than 1.2 × retryPeriod (24)');
  });

  it('names the kubeconfig file that cannot be used', async () => {
    @Module({ imports: [LeaderElectionModule.forRoot({ leaseName: 'x', namespace: 'x', kubeConfig: '/nonexistent/kubeconfig' })] })
    class NoConfigModule {}
    await expect(NestFactory.createApplicationContext(NoConfigModule, { logger: false, abortOnError: false }))
      .rejects.toThrow('kubeconfig file /nonexistent/kubeconfig does not exist');
  });
});

describe('health', () => {
  it('the Terminus endpoint turns 503 when the leader cannot renew, and healthy again once it can', async () => {
    const namespace = await cluster.createNamespace('nest-health');
    const proxy = await TcpProxy.start(Number(new URL(cluster.info.server).port));
    const kubeConfig = proxy.kubeconfig(cluster.info.adminKubeconfig, join(cluster.info.workDir ?? '/tmp', `proxied-${namespace}.kubeconfig`));
    @Module({
      imports: [TerminusModule, LeaderElectionModule.forRoot(options(namespace, 'a', { kubeConfig, healthTolerance: 500 }))],
      controllers: [HealthController],
      providers: [LeaderElectionHealthIndicator, Work],
    })
    class HealthModule {}
    const app: INestApplication = await NestFactory.create(HealthModule, { logger: false });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    const url = `${await app.getUrl()}/health`;
    const status = async (): Promise<{ code: number; body: { details: { leaderElection: Record<string, unknown> } } }> => {
      const response = await fetch(url);
      return { code: response.status, body: await response.json() as never };
    };
    try {
      await app.get(LeaderElectionService).whenLeader();
      const up = await status();
      expect(up.code).toBe(200);
      expect(up.body.details.leaderElection).toMatchObject({ status: 'up', elections: { default: { identity: 'a', leader: 'a', isLeader: true } } });

      proxy.blackhole();
      const down = await pollStatus(status, 503);
      expect(down.body.details.leaderElection).toMatchObject({ status: 'down', elections: { default: { healthy: false, isLeader: false } } });
      const age = (down.body.details.leaderElection.elections as { default: { lastRenewAgeMs: number } }).default.lastRenewAgeMs;
      // Unhealthy is decided on the age as reported (rounded), so it is past the limit, never at it.
      expect(age).toBeGreaterThan(TIMINGS.leaseDuration + 500);

      proxy.restore();
      await pollStatus(status, 200);
      await app.get(LeaderElectionService).whenLeader();
    } finally {
      await proxy.close();
    }
  });

  it('the standalone health server answers /healthz, /livez and /readyz without an HTTP app, with the app\'s own check', async () => {
    const namespace = await cluster.createNamespace('nest-server');
    let appHealthy = true;
    const app = await startContext('a', options(namespace, 'a', {
      healthServer: { port: 0, host: '127.0.0.1' },
      livenessCheck: () => { if (!appHealthy) throw new Error('database unreachable: password=hunter2'); },
    }));
    await app.get(LeaderElectionService).whenLeader();
    const port = app.get(LeaderElectionHealthServer).address()!.port;
    for (const path of ['/healthz', '/livez', '/readyz']) {
      expect((await fetch(`http://127.0.0.1:${port}${path}`)).status).toBe(200);
    }
    appHealthy = false;
    const response = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(response.status).toBe(503);
    const body = await response.text();
    expect(JSON.parse(body)).toMatchObject({ status: 'error', liveness: 'down', elections: { default: { healthy: true } } });
    expect(body).not.toContain('hunter2'); // the check's error is logged, never served
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
  });
});

async function pollStatus<T extends { code: number }>(status: () => Promise<T>, code: number, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await status();
    if (result.code === code) return result;
    if (Date.now() > deadline) throw new Error(`health stayed ${result.code}, expected ${code}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
