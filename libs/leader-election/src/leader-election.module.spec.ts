// The Nest layer without a cluster: the real module's providers on the testing kit's in-memory
// Lease and fake clock. The same behaviours on the real control plane are in test/e2e.
import { Injectable, Logger, Module, Scope, type INestApplicationContext, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { firstValueFrom, skip } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from './core/clock.js';
import { LeaderElector, type ElectionEvent } from './core/leader-elector.js';
import type { Term } from './core/term.js';
import { OnLeader } from './decorators/on-leader.decorator.js';
import type { LeaseBackend } from './interfaces/lease-backend.interface.js';
import { LEASE_BACKEND } from './leader-election.constants.js';
import { LeaderElectionModule } from './leader-election.module.js';
import { LeaderElectionService } from './leader-election.service.js';
import { LeaderElectionTestingModule, overrideLeaderElection, type LeaderElectionTestingOptions } from './testing/leader-election-testing.module.js';
import { LeadershipControl } from './testing/leadership-control.js';
import { PEER_IDENTITY } from './testing/in-memory-lease.backend.js';
import { InMemoryLeaseLock, InMemoryLeaseStore } from './testing/in-memory-lease-lock.js';

/** Resolves when the signal aborts. */
const aborted = (signal: AbortSignal): Promise<void> => new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

async function boot(providers: Type[], options: LeaderElectionTestingOptions = {}): Promise<{ app: INestApplicationContext; control: LeadershipControl }> {
  const moduleRef = await Test.createTestingModule({
    imports: [LeaderElectionTestingModule.forRoot({ lossPolicy: 'rejoin', ...options })],
    providers,
  }).compile();
  const app = await moduleRef.init();
  return { app, control: app.get(LeadershipControl) };
}

describe('LeaderElectionModule on the testing kit', () => {
  let apps: INestApplicationContext[] = [];
  beforeEach(() => {
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => {});
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => {});
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    vi.restoreAllMocks();
  });
  const started = async (...args: Parameters<typeof boot>): ReturnType<typeof boot> => {
    const booted = await boot(...args);
    apps.push(booted.app);
    return booted;
  };

  it("@OnLeader('<set>/*') runs once per election of the set this instance leads, with the election's name; the service shows the assignment", async () => {
    @Injectable()
    class ShardWorker {
      readonly running = new Map<string, Term>();

      @OnLeader('shards/*')
      async run(term: Term, shard: string): Promise<void> {
        this.running.set(shard, term);
        await aborted(term.signal);
        this.running.delete(shard);
      }
    }
    const { app, control } = await started([ShardWorker], { sets: { shards: { elections: ['eu', 'us', 'ap'] } } });
    const service = app.get(LeaderElectionService);
    const worker = app.get(ShardWorker);
    expect(service.set('shards').elections).toEqual(['eu', 'us', 'ap']);
    await control.advance(5_000); // the only member, counted once its member Lease is renewed
    expect([...worker.running.keys()].sort()).toEqual(['ap', 'eu', 'us']);
    expect(await firstValueFrom(service.assignment$('shards'))).toEqual(['eu', 'us', 'ap']);
    expect(service.isLeader('shards/eu')).toBe(true);
    expect(worker.running.get('us')!.fencingToken).toBe(service.term('shards/us')!.fencingToken);
    expect(() => service.election('shards/xx')).toThrow('no election named "shards/xx"; configured: default, shards/{eu,us,ap}');
    const terms = [...worker.running.values()];
    await app.close();
    apps = apps.filter((a) => a !== app);
    expect(terms.every((term) => term.signal.aborted)).toBe(true);
    expect(worker.running.size).toBe(0);
  });

  it('refuses @OnLeader on a set that is not configured, and bad sets, with the problem named', async () => {
    @Injectable()
    class Lost {
      @OnLeader('nope/*')
      run(): void {}
    }
    await expect(boot([Lost], { sets: { shards: { elections: 2 } } })).rejects.toThrow(
      'Lost.run names set "nope", which is not configured (configured: default, shards/*)');
    await expect(boot([], { sets: { Shards: { elections: 0 }, ok: { elections: ['a'], retryPeriod: -1 } } })).rejects.toThrow(
      /sets\.Shards: the set's name "Shards" must be[\s\S]*sets\.Shards: elections must be a count[\s\S]*sets\.ok: retryPeriod must be greater than 0/);
  });

  it('refuses two coordinated elections in one namespace, and coordinated sets, with the problem named; a coordinated default does not reach sets', async () => {
    const coordinated = { binaryVersion: '1.2.3' };
    await expect(boot([], { coordinated, elections: { jobs: { leaseName: 'jobs' } } })).rejects.toThrow(
      'elections "default" and "jobs" are both coordinated in namespace default');
    await expect(boot([], { elections: { jobs: { leaseName: 'jobs', coordinated } }, sets: { shards: { elections: 2, coordinated } as never } })).rejects.toThrow(
      'sets.shards: coordinated is not supported for sets');
    const { app } = await boot([], { coordinated, elections: { jobs: { leaseName: 'jobs', coordinated: undefined } }, sets: { shards: { elections: 2 } } });
    await app.close();
  });

  it('refuses a waitForPodReady that is not a boolean', async () => {
    await expect(boot([], { waitForPodReady: 'yes' as unknown as boolean })).rejects.toThrow('waitForPodReady must be true or false, got "yes"');
  });

  it("a method that throws under onError 'step-down' gives the lease up", async () => {
    @Injectable()
    class Fragile {
      @OnLeader({ onError: 'step-down' })
      run(): void {
        throw new Error('cannot reconcile');
      }
    }
    const { app, control } = await started([Fragile]);
    const events: ElectionEvent[] = [];
    app.get(LeaderElectionService).events$.subscribe((event) => events.push(event));
    const term = await control.grant();
    await control.advance(0);
    expect(term.signal.aborted).toBe(true);
    expect(events).toContainEqual({ type: 'lost', identity: 'this-instance', reason: 'stepped-down' });
    expect(control.lease().store.snapshot()?.free).toBe(true);
  });

  it('on shutdown, aborts the work, waits for it, and only then releases the lease', async () => {
    const order: string[] = [];
    let control: LeadershipControl;
    @Injectable()
    class Slow {
      @OnLeader()
      async run(term: Term): Promise<void> {
        await aborted(term.signal);
        order.push('aborted');
        // Winding down takes a while: the lease must still be ours meanwhile.
        await control.clock.advance(0);
        await new Promise((resolve) => setTimeout(resolve, 20));
        order.push(`finished while the lease names ${control.lease().store.holder || 'nobody'}`);
      }
    }
    const booted = await boot([Slow]);
    control = booted.control;
    await control.grant();
    control.lease().store.watchers.add({
      onOpen: () => {},
      onClose: () => {},
      onChange: (snapshot) => {
        if (snapshot?.free) order.push('released');
      },
    });
    await booted.app.close();
    expect(order).toEqual(['aborted', 'finished while the lease names this-instance', 'released']);
  });

  it('named elections run their own methods, on their own Leases, with per-election streams', async () => {
    const ran: string[] = [];
    @Injectable()
    class Jobs {
      @OnLeader()
      main(): void {
        ran.push('default');
      }

      @OnLeader('jobs')
      jobs(): void {
        ran.push('jobs');
      }
    }
    const { app, control } = await started([Jobs], { elections: { jobs: { leaseName: 'jobs' } } });
    const service = app.get(LeaderElectionService);
    const leading = firstValueFrom(service.leadershipOf('jobs').pipe(skip(1)));
    const term = await control.grant('jobs');
    await control.advance(0);
    expect(await leading).toBe(true);
    expect(ran).toEqual(['jobs']);
    expect(service.isLeader('jobs')).toBe(true);
    expect(service.isLeader()).toBe(false);
    expect(service.term('jobs')).toBe(term);
    expect(control.lease('jobs').store.holder).toBe('this-instance');
    expect(control.lease().store.holder).toBe(PEER_IDENTITY);
    expect(() => service.leadershipOf('nope')).toThrow('no election named "nope"; configured: default, jobs');
  });

  it("revoke('renew-deadline') under lossPolicy 'exit' settles the work, then asks to exit", async () => {
    let settledBeforeExit: boolean | undefined;
    let control: LeadershipControl;
    @Injectable()
    class Worker {
      @OnLeader()
      async run(term: Term): Promise<void> {
        await aborted(term.signal);
        settledBeforeExit = control.exitCode === undefined;
      }
    }
    const booted = await started([Worker], { lossPolicy: 'exit' });
    control = booted.control;
    const term = await control.grant();
    await control.revoke('renew-deadline');
    expect((term.signal.reason as Error).message).toBe('leadership lost: renew-deadline');
    expect(settledBeforeExit).toBe(true);
    expect(control.exitCode).toBe(1);
    expect(control.lease().store.holder).toBe(PEER_IDENTITY);
  });

  it('refuses @OnLeader on a request-scoped provider and an unknown election, naming each', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @OnLeader()
      run(): void {}
    }
    @Injectable()
    class Misnamed {
      @OnLeader('reports')
      run(): void {}
    }
    await expect(boot([PerRequest, Misnamed])).rejects.toThrow(
      '@OnLeader cannot be used as written:\n' +
      '  - PerRequest.run is on a request-scoped provider; @OnLeader methods must live on singleton providers or controllers ' +
      '(default scope, no request-scoped dependencies)\n' +
      '  - Misnamed.run names election "reports", which is not configured (configured: default)');
  });

  it('resolves the options once and reports every problem of every election together', async () => {
    await expect(boot([], {
      leaseDuration: 5, renewDeadline: 2, retryPeriod: 1, workErrorPolicy: 'ignore' as 'restart',
      elections: { a: { leaseName: 'test-election' }, b: { leaseName: 'B!' } },
      healthServer: { port: 70_000 },
    })).rejects.toThrow([
      'invalid leader election options:',
      '  - workErrorPolicy must be \'restart\' or \'step-down\', got "ignore"',
      '  - leaseDuration is in milliseconds and a Lease counts whole seconds: 5 is below 1000 (did you mean 5000?)',
      '  - elections.a: lease default/test-election is already used by election "default"',
      '  - elections.a: workErrorPolicy must be \'restart\' or \'step-down\', got "ignore"',
      '  - elections.a: leaseDuration is in milliseconds and a Lease counts whole seconds: 5 is below 1000 (did you mean 5000?)',
      '  - elections.b: workErrorPolicy must be \'restart\' or \'step-down\', got "ignore"',
      '  - elections.b: leaseName "B!" is not a valid Lease name (lowercase letters, digits, \'-\' and \'.\', at most 253 characters)',
      '  - elections.b: leaseDuration is in milliseconds and a Lease counts whole seconds: 5 is below 1000 (did you mean 5000?)',
      '  - healthServer.port must be a TCP port from 0 to 65535, got 70000',
    ].join('\n'));
  });

  it('overrideLeaderElection() runs an app built with LeaderElectionModule on the kit, with its own options', async () => {
    @Injectable()
    class Worker {
      terms: number[] = [];
      @OnLeader()
      run(term: Term): void {
        this.terms.push(term.fencingToken);
      }
    }
    @Module({ imports: [LeaderElectionModule.forRoot({ leaseName: 'from-app', identity: 'pod-a', lossPolicy: 'rejoin' })], providers: [Worker] })
    class AppModule {}
    const app = await (await overrideLeaderElection(Test.createTestingModule({ imports: [AppModule] })).compile()).init();
    apps.push(app);
    const control = LeadershipControl.of(app);
    const term = await control.grant();
    await control.advance(0);
    expect(app.get(Worker).terms).toEqual([term.fencingToken]);
    expect(control.lease().store.name).toBe('from-app');
    expect(control.lease().store.holder).toBe('pod-a');
    await control.revoke();
    expect(term.signal.aborted).toBe(true);
    expect(() => control.lease('other')).toThrow('no election named "other"; configured: default');
    await expect(control.revoke()).rejects.toThrow('this instance does not lead election "default": grant() it first');
  });

  it('LeadershipControl.of() says how to get a kit when the app does not run on one', async () => {
    @Module({ imports: [LeaderElectionModule.forRoot({ leaseName: 'real' })] })
    class AppModule {}
    const notTheKit: LeaseBackend = {
      clock: systemClock,
      identity: () => 'pod-a',
      defaultNamespace: () => 'default',
      createElector: (options, logger) => new LeaderElector(options, { lock: new InMemoryLeaseLock(new InMemoryLeaseStore()), logger }),
      createElectionSet: () => {
        throw new Error('no sets in this app');
      },
      attach: () => [],
    };
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).overrideProvider(LEASE_BACKEND).useValue(notTheKit).compile();
    expect(() => LeadershipControl.of(moduleRef)).toThrow('this app runs its elections on a cluster: compile its testing module with overrideLeaderElection()');
  });
});
