/** One health evaluation shared by the standalone health server and the Terminus indicator. */
import { Inject, Injectable, Logger } from '@nestjs/common';
import { electionHealth, type ElectionHealth } from '../core/election-health.js';
import type { ElectionSet } from '../core/election-set.js';
import type { LeaderElector } from '../core/leader-elector.js';
import { LEADER_ELECTION_SETS, LEADER_ELECTORS, LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../leader-election.constants.js';
import type { ResolvedLeaderElectionOptions } from '../leader-election.options.js';

export interface HealthReport {
  healthy: boolean;
  elections: Record<string, ElectionHealth>;
  /** The app's own livenessCheck, when configured. Its error is logged, never served. */
  liveness?: 'up' | 'down';
}

@Injectable()
export class LeaderElectionHealthService {
  private readonly logger = new Logger(LOGGER_CONTEXT);

  constructor(
    @Inject(LEADER_ELECTORS) private readonly electors: Map<string, LeaderElector>,
    @Inject(LEADER_ELECTION_SETS) private readonly sets: Map<string, ElectionSet>,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedLeaderElectionOptions,
  ) {}

  /** Liveness: client-go HealthzAdaptor semantics per election, plus the app's own check. */
  async check(): Promise<HealthReport> {
    const tolerance = this.options.healthTolerance;
    const setElectors = [...this.sets].flatMap(([set, { electors }]) => [...electors].map(([name, elector]) => [`${set}/${name}`, elector] as const));
    const elections = Object.fromEntries([...this.electors, ...setElectors].map(([name, elector]) => [name, electionHealth(elector, tolerance)]));
    let healthy = Object.values(elections).every((health) => health.healthy);
    const report: HealthReport = { healthy, elections };
    if (this.options.livenessCheck) {
      try {
        await this.options.livenessCheck();
        report.liveness = 'up';
      } catch (error) {
        this.logger.warn(`livenessCheck failed: ${error instanceof Error ? error.message : String(error)}`);
        report.liveness = 'down';
        healthy = false;
      }
    }
    report.healthy = healthy;
    return report;
  }

  /** Readiness: every election is running and has reached the apiserver at least once, and so has every set's membership. */
  ready(): boolean {
    return [...this.electors.values()].every((elector) => elector.isRunning && elector.synced) &&
      [...this.sets.values()].every((set) => set.synced);
  }
}
