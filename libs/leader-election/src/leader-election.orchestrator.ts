/**
 * Runs the elections through Nest's lifecycle: they start after bootstrap (without holding up
 * listen(), so probes answer while this instance still follows) and stop on shutdown in the only
 * safe order: abort the leader work, wait for it, then release the lease.
 */
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { KubeConfig } from '@kubernetes/client-node';
import { attachLeaderEvents } from './elector/lease-events.js';
import { attachLeaderLabel } from './elector/leader-label.js';
import type { LeaderElector, Term } from './elector/leader-elector.js';
import { sleep } from './elector/sleep.js';
import { attachElectionMetrics } from './elector/metrics.js';
import type { ElectionOptions, LeaderElectionModuleOptions, WorkErrorPolicy } from './interfaces/leader-election-options.interface.js';
import { DEFAULT_ELECTION, LEADER_ELECTION_KUBECONFIG, LEADER_ELECTORS, LOGGER_CONTEXT, MAX_RESTART_BACKOFF_MS } from './leader-election.constants.js';
import { LeaderElectionExplorer, type LeaderMethod } from './leader-election.explorer.js';
import { LEADER_ELECTION_OPTIONS } from './leader-election.module-definition.js';
import { electionsOf, electorLogger } from './leader-electors.provider.js';

@Injectable()
export class LeaderElectionOrchestrator implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly electors: Map<string, LeaderElector>;
  private readonly explorer: LeaderElectionExplorer;
  private readonly elections: Map<string, ElectionOptions>;
  private readonly options: LeaderElectionModuleOptions;
  private readonly kubeConfig: KubeConfig;
  private readonly detach: Array<() => void | Promise<void>> = [];

  constructor(
    @Inject(LEADER_ELECTORS) electors: Map<string, LeaderElector>,
    explorer: LeaderElectionExplorer,
    @Inject(LEADER_ELECTION_OPTIONS) options: LeaderElectionModuleOptions,
    @Inject(LEADER_ELECTION_KUBECONFIG) kubeConfig: KubeConfig,
  ) {
    this.electors = electors;
    this.explorer = explorer;
    this.options = options;
    this.kubeConfig = kubeConfig;
    this.elections = electionsOf(options);
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const [name, elector] of this.electors) {
      if (this.options.metrics) {
        this.detach.push(await attachElectionMetrics(elector, this.options.metrics === true ? undefined : this.options.metrics.registry));
      }
      if (this.options.events ?? true) this.detach.push(attachLeaderEvents(elector, this.kubeConfig, electorLogger(LOGGER_CONTEXT)));
      // One label per Pod: it follows the default election.
      if (this.options.leaderLabel && name === DEFAULT_ELECTION) {
        this.detach.push(attachLeaderLabel(elector, this.kubeConfig, this.options.leaderLabel, electorLogger(LOGGER_CONTEXT)));
      }
    }
    for (const [name, elector] of this.electors) {
      elector.start((term) => this.runTerm(name, elector, term));
    }
  }

  /** Earliest shutdown hook, so leader work stops while the providers it uses still exist. */
  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.electors.values()].map((elector) => elector.stop()));
    await Promise.all(this.detach.splice(0).map((detach) => detach()));
  }

  private async runTerm(election: string, elector: LeaderElector, term: Term): Promise<void> {
    const policy = this.elections.get(election)?.workErrorPolicy ?? 'restart';
    await Promise.all(this.explorer.methodsOf(election).map((method) => this.run(method, method.onError ?? policy, elector, term)));
  }

  private async run(method: LeaderMethod, policy: WorkErrorPolicy, elector: LeaderElector, term: Term): Promise<void> {
    let backoff = 1000;
    while (!term.signal.aborted) {
      try {
        await method.invoke(term);
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
        await sleep(backoff, term.signal);
        backoff = Math.min(backoff * 2, MAX_RESTART_BACKOFF_MS);
      }
    }
  }
}
