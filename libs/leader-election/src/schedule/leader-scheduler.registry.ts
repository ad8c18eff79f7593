/**
 * Leader-only jobs added and removed at run time, as SchedulerRegistry does for ordinary ones. A
 * CronJob handed to SchedulerRegistry runs on its own timer on every replica and hides its callback
 * and each tick's scheduled time, so leader-only jobs are added here, by callback.
 */
import { Inject, Injectable } from '@nestjs/common';
import { DEFAULT_ELECTION } from '../leader-election.constants.js';
import { jobOptionProblems, type LeaderOnlyOptions, type ResolvedLeaderScheduleOptions } from './leader-schedule.options.js';
import { LEADER_SCHEDULE_OPTIONS, LeaderSchedules } from './leader-schedules.js';
import type { ScheduledJob } from './leader-scheduler.js';
import type { RunContext } from './run-context.js';
import { cronTimetable, intervalTimetable, timeoutDelayProblem, type CronSchedule } from './timetable.js';

/** A run-time job's handler: it gets its run (also reachable through ScheduledRun). */
export type LeaderJobHandler = (run: RunContext) => unknown;

export interface LeaderCronOptions extends LeaderOnlyOptions, Omit<CronSchedule, 'cronTime'> {
  waitForCompletion?: boolean;
}

@Injectable()
export class LeaderSchedulerRegistry {
  constructor(
    private readonly schedules: LeaderSchedules,
    @Inject(LEADER_SCHEDULE_OPTIONS) private readonly options: ResolvedLeaderScheduleOptions,
  ) {}

  /** A cron job (expression or date, with timeZone or utcOffset as @Cron takes them); starts at once if this instance leads. */
  addCronJob(name: string, cronTime: CronSchedule['cronTime'], handler: LeaderJobHandler, options: LeaderCronOptions = {}): void {
    const { timeZone, utcOffset, waitForCompletion = false } = options;
    this.add(name, options, handler, { timetable: cronTimetable({ cronTime, timeZone, utcOffset }), waitForCompletion });
  }

  /** Every `ms` milliseconds (on a grid from the Unix epoch, the same on every replica). */
  addInterval(name: string, ms: number, handler: LeaderJobHandler, options: LeaderOnlyOptions = {}): void {
    this.add(name, options, handler, { timetable: intervalTimetable(ms), waitForCompletion: false });
  }

  /** Once per term, `ms` after it began. */
  addTimeout(name: string, ms: number, handler: LeaderJobHandler, options: LeaderOnlyOptions = {}): void {
    const problem = timeoutDelayProblem(ms);
    if (problem) throw new Error(`addTimeout("${name}") ${problem}`);
    this.add(name, options, handler, { delay: ms, waitForCompletion: false });
  }

  /** Stops the job: no tick starts any more; resolves once its runs in flight have settled. */
  deleteJob(name: string, election: string = DEFAULT_ELECTION): Promise<void> {
    return this.schedules.of(election).remove(name);
  }

  doesExist(name: string, election: string = DEFAULT_ELECTION): boolean {
    return this.schedules.of(election).has(name);
  }

  getJobNames(election: string = DEFAULT_ELECTION): string[] {
    return this.schedules.of(election).jobNames;
  }

  private add(name: string, options: LeaderOnlyOptions, handler: LeaderJobHandler,
    timing: Pick<ScheduledJob, 'timetable' | 'delay' | 'waitForCompletion'>): void {
    const problems = jobOptionProblems(options);
    if (typeof name !== 'string' || name === '') problems.push(`the name must be a non-empty string, got ${JSON.stringify(name)}`);
    if (problems.length > 0) throw new Error(`leader-only job ${JSON.stringify(name)}: ${problems.join('; ')}`);
    this.schedules.of(options.election ?? DEFAULT_ELECTION).add({
      name,
      ...timing,
      missed: options.missed ?? this.options.missed,
      maxCatchUp: options.maxCatchUp ?? this.options.maxCatchUp,
      run: handler,
    });
  }
}
