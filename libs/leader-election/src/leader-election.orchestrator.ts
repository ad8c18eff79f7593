/**
 * Runs the elections through Nest's lifecycle: they start after bootstrap (without holding up
 * listen(), so probes answer while this instance still follows) and stop on shutdown in the only
 * safe order: abort the leader work, wait for it, then release the lease.
 */
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { ElectionSet } from './core/election-set.js';
import type { LeaderElector } from './core/leader-elector.js';
import { sleep } from './core/sleep.js';
import type { Term } from './core/term.js';
import type { WorkErrorPolicy } from './interfaces/leader-election-options.interface.js';
import type { LeaseBackend } from './interfaces/lease-backend.interface.js';
import { attachElectionMetrics } from './metrics/election-metrics.js';
import {
  DEFAULT_ELECTION, LEADER_ELECTION_SETS, LEADER_ELECTORS, LEASE_BACKEND, LOGGER_CONTEXT, MAX_RESTART_BACKOFF_MS, RESOLVED_OPTIONS,
} from './leader-election.constants.js';
import { LeaderElectionExplorer, type LeaderMethod } from './leader-election.explorer.js';
import { LeaderWorkRegistry } from './leader-work.registry.js';
import type { ResolvedLeaderElectionOptions } from './leader-election.options.js';

/** How long choosing a successor on shutdown may take before the lease is released instead. */
const SUCCESSOR_TIMEOUT_MS = 2_000;

@Injectable()
export class LeaderElectionOrchestrator implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly detach: Array<() => void | Promise<void>> = [];

  constructor(
    @Inject(LEADER_ELECTORS) private readonly electors: Map<string, LeaderElector>,
    @Inject(LEADER_ELECTION_SETS) private readonly sets: Map<string, ElectionSet>,
    private readonly explorer: LeaderElectionExplorer,
    private readonly works: LeaderWorkRegistry,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedLeaderElectionOptions,
    @Inject(LEASE_BACKEND) private readonly backend: LeaseBackend,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const setElectors = [...this.sets.values()].flatMap((set) => [...set.electors.values()].map((member) => [undefined, member] as const));
    for (const [name, elector] of [...this.electors, ...setElectors]) {
      if (this.options.metrics) this.detach.push(await attachElectionMetrics(elector, this.options.metrics.registry));
      this.detach.push(...this.backend.attach(elector, {
        events: this.options.events,
        // One label per Pod: it follows the default election.
        leaderLabel: name === DEFAULT_ELECTION ? this.options.leaderLabel : undefined,
        waitForPodReady: name !== undefined && this.options.waitForPodReady,
      }));
    }
    for (const [name, elector] of this.electors) {
      elector.start((term) => this.runTerm(name, this.options.elections.get(name)!.workErrorPolicy, elector, term));
    }
    for (const [name, set] of this.sets) {
      const policy = this.options.sets.get(name)!.workErrorPolicy;
      set.start((election, term) => this.runTerm(`${name}/*`, policy, set.electors.get(election)!, term, election));
    }
  }

  /** Earliest shutdown hook, so leader work stops while the providers it uses still exist. */
  async onModuleDestroy(): Promise<void> {
    const successors = await this.successors();
    await Promise.all([
      ...[...this.electors].map(([name, elector]) => elector.stop({ to: successors.get(name) })),
      ...[...this.sets.values()].map((set) => set.stop()),
    ]);
    await Promise.all(this.detach.splice(0).map((detach) => detach()));
  }

  /** Under handoverOnShutdown 'rollout': whom each election this instance leads goes to (none: released). */
  private async successors(): Promise<Map<string, string>> {
    const successors = new Map<string, string>();
    const choose = this.backend.chooseSuccessor?.bind(this.backend);
    if (this.options.handoverOnShutdown !== 'rollout' || !choose) return successors;
    const byNamespace = new Map<string, Promise<string | undefined>>();
    await Promise.all([...this.electors].filter(([, elector]) => elector.isLeader()).map(async ([name, elector]) => {
      const { namespace, identity } = elector.options;
      if (!byNamespace.has(namespace)) {
        const signal = AbortSignal.timeout(SUCCESSOR_TIMEOUT_MS);
        byNamespace.set(namespace, choose(identity, namespace, signal).catch((error: unknown) => {
          this.logger.warn(`no successor chosen from the rollout, releasing instead: ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        }));
      }
      const successor = await byNamespace.get(namespace);
      if (successor) {
        this.logger.log(`${identity} hands ${elector.options.leaseName} over to ${successor} as it shuts down`);
        successors.set(name, successor);
      }
    }));
    return successors;
  }

  /** `election`: the name @OnLeader methods use (`<set>/*` for a set); `member`: which election of the set. */
  private async runTerm(election: string, policy: WorkErrorPolicy, elector: LeaderElector, term: Term, member?: string): Promise<void> {
    await Promise.all([
      ...this.explorer.methodsOf(election).map((method) => this.run(method, method.onError ?? policy, elector, term, member)),
      ...this.works.of(election).map((work) => work(term)),
    ]);
  }

  private async run(method: LeaderMethod, policy: WorkErrorPolicy, elector: LeaderElector, term: Term, member?: string): Promise<void> {
    let backoff = 1000;
    while (!term.signal.aborted) {
      try {
        await method.invoke(term, member);
        return;
      } catch (error) {
        if (term.signal.aborted) return;
        const reason = error instanceof Error ? error.stack ?? error.message : String(error);
        if (policy === 'step-down') {
          this.logger.error(`${method.name} failed while leading ${elector.options.leaseName}; stepping down: ${reason}`);
          void elector.stepDown();
          return;
        }
        this.logger.error(`${method.name} failed while leading ${elector.options.leaseName}; restarting in ${backoff} ms: ${reason}`);
        await sleep(backoff, term.signal, this.backend.clock);
        backoff = Math.min(backoff * 2, MAX_RESTART_BACKOFF_MS);
      }
    }
  }
}
