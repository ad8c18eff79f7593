/** One health evaluation shared by the standalone health server and the Terminus indicator. */
import { Inject, Injectable, Logger } from '@nestjs/common';
import { DEFAULT_HEALTH_TOLERANCE_MS, electionHealth, type ElectionHealth } from '../elector/healthz.js';
import type { LeaderElector } from '../elector/leader-elector.js';
import type { LeaderElectionModuleOptions } from '../interfaces/leader-election-options.interface.js';
import { LEADER_ELECTORS, LOGGER_CONTEXT } from '../leader-election.constants.js';
import { LEADER_ELECTION_OPTIONS } from '../leader-election.module-definition.js';

export interface HealthReport {
  healthy: boolean;
  elections: Record<string, ElectionHealth>;
  /** The app's own livenessCheck, when configured. Its error is logged, never served. */
  liveness?: 'up' | 'down';
}

@Injectable()
export class LeaderElectionHealthService {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly electors: Map<string, LeaderElector>;
  private readonly options: LeaderElectionModuleOptions;

  constructor(
    @Inject(LEADER_ELECTORS) electors: Map<string, LeaderElector>,
    @Inject(LEADER_ELECTION_OPTIONS) options: LeaderElectionModuleOptions,
  ) {
    this.electors = electors;
    this.options = options;
  }

  /** Liveness: client-go HealthzAdaptor semantics per election, plus the app's own check. */
  async check(): Promise<HealthReport> {
    const tolerance = this.options.healthTolerance ?? DEFAULT_HEALTH_TOLERANCE_MS;
    const elections = Object.fromEntries([...this.electors].map(([name, elector]) => [name, electionHealth(elector, tolerance)]));
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

  /** Readiness: every election is running and has reached the apiserver at least once. */
  ready(): boolean {
    return [...this.electors.values()].every((elector) => elector.isRunning && elector.synced);
  }
}
