/** One LeaderScheduler per election, run in every term alongside the @OnLeader methods. */
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { LeaderElector } from '../core/leader-elector.js';
import type { ElectorLogger } from '../core/options.js';
import type { LeaseBackend } from '../interfaces/lease-backend.interface.js';
import { LEADER_ELECTORS, LEASE_BACKEND, RESOLVED_OPTIONS } from '../leader-election.constants.js';
import type { ResolvedLeaderElectionOptions } from '../leader-election.options.js';
import { LeaderWorkRegistry } from '../leader-work.registry.js';
import { LeaderScheduler } from './leader-scheduler.js';
import type { ResolvedLeaderScheduleOptions } from './leader-schedule.options.js';
import { attachScheduleMetrics } from './schedule-metrics.js';

export const LEADER_SCHEDULE_OPTIONS = Symbol('LEADER_SCHEDULE_OPTIONS');
export const LOGGER_CONTEXT = 'LeaderSchedule';

function scheduleLogger(): ElectorLogger {
  const logger = new Logger(LOGGER_CONTEXT);
  return { log: (message) => logger.log(message), warn: (message) => logger.warn(message), error: (message) => logger.error(message) };
}

@Injectable()
export class LeaderSchedules implements OnModuleInit, BeforeApplicationShutdown {
  private readonly schedulers = new Map<string, LeaderScheduler>();
  private readonly detach: Array<() => void> = [];

  constructor(
    @Inject(LEADER_ELECTORS) electors: Map<string, LeaderElector>,
    @Inject(LEASE_BACKEND) backend: LeaseBackend,
    @Inject(LEADER_SCHEDULE_OPTIONS) readonly options: ResolvedLeaderScheduleOptions,
    @Inject(RESOLVED_OPTIONS) private readonly electionOptions: ResolvedLeaderElectionOptions,
    works: LeaderWorkRegistry,
  ) {
    for (const [name, elector] of electors) {
      const scheduler = new LeaderScheduler(elector, backend.clock, options, scheduleLogger());
      this.schedulers.set(name, scheduler);
      works.add(name, (term) => scheduler.runTerm(term));
    }
  }

  async onModuleInit(): Promise<void> {
    if (!this.electionOptions.metrics) return;
    for (const scheduler of this.schedulers.values()) {
      this.detach.push(await attachScheduleMetrics(scheduler, this.electionOptions.metrics.registry));
    }
  }

  /** After the elections stopped (onModuleDestroy), so the last runs are counted. */
  beforeApplicationShutdown(): void {
    for (const detach of this.detach.splice(0)) detach();
  }

  /** The scheduler of an election; a readable error for one that is not configured. */
  of(election: string): LeaderScheduler {
    const scheduler = this.schedulers.get(election);
    if (!scheduler) throw new Error(`no election named "${election}"; configured: ${[...this.schedulers.keys()].join(', ')}`);
    return scheduler;
  }

  get all(): ReadonlyMap<string, LeaderScheduler> {
    return this.schedulers;
  }
}
