// `nestjs-lease-election/schedule`: @nestjs/schedule jobs that run on the leader only, with each
// job's settled ticks recorded in the Lease so that a handover neither repeats nor loses a tick.
export { LeaderOnly } from './leader-only.decorator.js';
export { leaderSchedule } from './leader-schedule.extension.js';
export type { LeaderOnlyOptions, LeaderScheduleOptions } from './leader-schedule.options.js';
export type { MissedTickPolicy, RunOutcome, ScheduleEvent } from './leader-scheduler.js';
export { LeaderSchedulerRegistry, type LeaderCronOptions, type LeaderJobHandler } from './leader-scheduler.registry.js';
export { LeaderSchedules } from './leader-schedules.js';
export type { RunContext, Tick, TickKind } from './run-context.js';
export { ScheduledRun } from './scheduled-run.js';
export { SCHEDULE_METRIC_NAMES } from './schedule-metrics.js';
