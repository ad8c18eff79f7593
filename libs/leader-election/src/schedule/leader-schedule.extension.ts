import type { LeaderElectionExtension } from '../interfaces/leader-election-extension.interface.js';
import { LeaderScheduleExplorer } from './leader-schedule.explorer.js';
import { resolveLeaderScheduleOptions, type LeaderScheduleOptions } from './leader-schedule.options.js';
import { LEADER_SCHEDULE_OPTIONS, LeaderSchedules } from './leader-schedules.js';
import { LeaderSchedulerRegistry } from './leader-scheduler.registry.js';
import { ScheduledRun } from './scheduled-run.js';

/**
 * Leader-only scheduled jobs for LeaderElectionModule:
 * `LeaderElectionModule.forRoot({ ..., extensions: [leaderSchedule()] })`, then `@LeaderOnly()`
 * beside @Cron, @Interval or @Timeout (or `everyJob: true` for all of them). Options are checked here, once.
 */
export function leaderSchedule(options?: LeaderScheduleOptions): LeaderElectionExtension {
  return {
    providers: [
      { provide: LEADER_SCHEDULE_OPTIONS, useValue: resolveLeaderScheduleOptions(options) },
      LeaderSchedules,
      LeaderScheduleExplorer,
      LeaderSchedulerRegistry,
      ScheduledRun,
    ],
    exports: [LeaderSchedulerRegistry, ScheduledRun, LeaderSchedules],
  };
}
