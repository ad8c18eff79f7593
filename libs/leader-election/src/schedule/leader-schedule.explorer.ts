/**
 * Takes the leader-only jobs away from @nestjs/schedule before it looks for them, and gives them to
 * the election's LeaderScheduler.
 *
 * @nestjs/schedule mounts a method when it finds its 'SCHEDULER_TYPE' metadata in onModuleInit
 * (its module is global, so that runs before ours), and a job it mounted runs on every replica
 * from then on. So the hand-off happens here, in a constructor: every provider is constructed
 * before any module's onModuleInit. The method's schedule is read, kept under our own key (a
 * second app in the same process finds it there) and its 'SCHEDULER_TYPE' deleted: @nestjs/schedule
 * then passes the method by, on every replica. The metadata keys are @nestjs/schedule's, unchanged
 * since its first release and not exported; a unit test checks them against the installed version.
 */
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { DEFAULT_ELECTION } from '../leader-election.constants.js';
import { LEADER_ONLY_METADATA } from './leader-only.decorator.js';
import type { ScheduledJob } from './leader-scheduler.js';
import { jobOptionProblems, type LeaderOnlyOptions, type ResolvedLeaderScheduleOptions } from './leader-schedule.options.js';
import { LEADER_SCHEDULE_OPTIONS, LeaderSchedules, LOGGER_CONTEXT } from './leader-schedules.js';
import { cronTimetable, intervalTimetable, timeoutDelayProblem, type CronSchedule } from './timetable.js';

/** @nestjs/schedule's metadata keys and SchedulerType values. */
export const SCHEDULE_METADATA = {
  type: 'SCHEDULER_TYPE',
  name: 'SCHEDULER_NAME',
  cron: 'SCHEDULE_CRON_OPTIONS',
  interval: 'SCHEDULE_INTERVAL_OPTIONS',
  timeout: 'SCHEDULE_TIMEOUT_OPTIONS',
} as const;
export const SCHEDULER_TYPES = { cron: 1, timeout: 2, interval: 3 } as const;
const HANDED_OFF_METADATA = 'nestjs-lease-election:handed-off-schedule';

/** A method's schedule as @Cron, @Interval or @Timeout declared it. */
interface DeclaredSchedule {
  type: number;
  name: string | undefined;
  cron?: CronSchedule & { waitForCompletion?: boolean; disabled?: boolean; initialDelay?: number };
  ms?: number;
}

function readSchedule(method: object): DeclaredSchedule | undefined {
  const kept = Reflect.getMetadata(HANDED_OFF_METADATA, method) as DeclaredSchedule | undefined;
  if (kept) return kept;
  const type = Reflect.getMetadata(SCHEDULE_METADATA.type, method) as number | undefined;
  if (type === undefined) return undefined;
  const options = (key: string): { timeout?: number } | undefined => Reflect.getMetadata(key, method) as { timeout?: number } | undefined;
  return {
    type,
    name: Reflect.getMetadata(SCHEDULE_METADATA.name, method) as string | undefined,
    cron: type === SCHEDULER_TYPES.cron ? Reflect.getMetadata(SCHEDULE_METADATA.cron, method) as DeclaredSchedule['cron'] : undefined,
    ms: type === SCHEDULER_TYPES.interval ? options(SCHEDULE_METADATA.interval)?.timeout
      : type === SCHEDULER_TYPES.timeout ? options(SCHEDULE_METADATA.timeout)?.timeout : undefined,
  };
}

@Injectable()
export class LeaderScheduleExplorer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  /** Methods this app took from @nestjs/schedule, with what they declared. */
  private readonly handedOff = new Map<object, DeclaredSchedule>();
  /** useFactory providers, checked once they exist. */
  private readonly factories: InstanceWrapper[] = [];

  constructor(
    discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    schedules: LeaderSchedules,
    @Inject(LEADER_SCHEDULE_OPTIONS) private readonly options: ResolvedLeaderScheduleOptions,
  ) {
    const problems: string[] = [];
    const names = new Map<string, string>();
    for (const wrapper of [...discovery.getProviders(), ...discovery.getControllers()]) {
      for (const { job, election, where } of this.jobsOf(wrapper, scanner, problems)) {
        const key = `${election}/${job.name}`;
        if (names.has(key)) {
          problems.push(`${where} and ${names.get(key)} are both leader-only job "${job.name}" of election "${election}": give them distinct names`);
          continue;
        }
        names.set(key, where);
        try {
          schedules.of(election).add(job);
        } catch (error) {
          problems.push(`${where}: ${(error as Error).message}`);
        }
      }
    }
    if (problems.length > 0) throw new Error(`leader-only scheduled jobs cannot be used as written:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }

  /**
   * A factory's product is made after this constructor ran, too late to hand its jobs off: they are
   * checked here, and refused (the app fails to start) rather than left to run on every replica.
   */
  onModuleInit(): void {
    const problems: string[] = [];
    for (const wrapper of this.factories) {
      const instance = wrapper.instance as object | undefined;
      const prototype = instance ? Object.getPrototypeOf(instance) as object | null : null;
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = (prototype as Record<string, unknown>)[methodName];
        if (typeof method !== 'function' || this.handedOff.has(method)) continue;
        if (this.isLeaderOnly(method) && readSchedule(method)) {
          problems.push(`${prototype.constructor.name}.${methodName} is a leader-only job on a ` +
            'provider made by useFactory, which exists only after @nestjs/schedule has taken its jobs, so it would run on every replica: ' +
            'provide the class itself (or useClass), or mark the method @LeaderOnly(false)');
        }
      }
    }
    if (problems.length > 0) throw new Error(`leader-only scheduled jobs cannot be used as written:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }

  /** Gives the methods back to @nestjs/schedule, for another app built later in this process without leaderSchedule(). */
  onApplicationShutdown(): void {
    for (const [method, schedule] of this.handedOff) {
      Reflect.defineMetadata(SCHEDULE_METADATA.type, schedule.type, method);
      Reflect.deleteMetadata(HANDED_OFF_METADATA, method);
    }
    this.handedOff.clear();
  }

  private isLeaderOnly(method: object): boolean {
    const marked = Reflect.getMetadata(LEADER_ONLY_METADATA, method) as LeaderOnlyOptions | false | undefined;
    return marked !== false && (marked !== undefined || this.options.everyJob !== undefined);
  }

  private *jobsOf(wrapper: InstanceWrapper, scanner: MetadataScanner, problems: string[]):
    Generator<{ job: ScheduledJob; election: string; where: string }> {
    if (wrapper.inject) {
      // useFactory: its product does not exist yet (see onModuleInit).
      this.factories.push(wrapper);
      return;
    }
    // A class, or a value (useValue) whose own class declares the methods.
    const prototype = typeof wrapper.metatype === 'function'
      ? (wrapper.metatype as { prototype?: object }).prototype
      : wrapper.instance ? Object.getPrototypeOf(wrapper.instance) as object | null : undefined;
    if (!prototype) return;
    const className = (prototype as { constructor?: { name?: string } }).constructor?.name ?? String(wrapper.token);
    for (const methodName of scanner.getAllMethodNames(prototype)) {
      const method = (prototype as Record<string, unknown>)[methodName];
      if (typeof method !== 'function') continue;
      const marked = Reflect.getMetadata(LEADER_ONLY_METADATA, method) as LeaderOnlyOptions | false | undefined;
      const where = `${className}.${methodName}`;
      const schedule = readSchedule(method);
      if (!this.isLeaderOnly(method)) continue;
      if (!schedule) {
        if (marked) problems.push(`${where} is @LeaderOnly() but has no @Cron, @Interval or @Timeout (for work that runs the whole term, use @OnLeader())`);
        continue;
      }
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        problems.push(`${where} is on a ${wrapper.isTransient ? 'transient' : 'request-scoped'} provider; leader-only jobs must live on singletons`);
        continue;
      }
      // Handed off: @nestjs/schedule passes the method by from now on, on every replica.
      Reflect.defineMetadata(HANDED_OFF_METADATA, schedule, method);
      Reflect.deleteMetadata(SCHEDULE_METADATA.type, method);
      this.handedOff.set(method, schedule);
      const options = { election: this.options.everyJob, ...marked };
      const optionProblems = jobOptionProblems(options, `${where}: `);
      if (optionProblems.length > 0) {
        problems.push(...optionProblems);
        continue;
      }
      const election = options.election ?? DEFAULT_ELECTION;
      const name = schedule.name ?? where;
      try {
        const job = this.job(schedule, name, options, () => {
          const instance = wrapper.instance as Record<string, () => unknown>;
          return instance[methodName].call(instance);
        });
        if (job) yield { job, election, where };
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message}`);
      }
    }
  }

  private job(schedule: DeclaredSchedule, name: string, options: LeaderOnlyOptions, run: () => unknown): ScheduledJob | undefined {
    const common = {
      name,
      missed: options.missed ?? this.options.missed,
      maxCatchUp: options.maxCatchUp ?? this.options.maxCatchUp,
      run,
    };
    switch (schedule.type) {
      case SCHEDULER_TYPES.cron: {
        const cron = schedule.cron!;
        if (cron.disabled) return undefined;
        if (cron.initialDelay) {
          throw new Error('initialDelay is not supported on leader-only jobs (a leader that just took over has ticks to catch up, ' +
            'not a start-up to wait for): drop it, or keep the job on every replica with @LeaderOnly(false)');
        }
        if (cron.timeZone === undefined && cron.utcOffset === undefined && typeof cron.cronTime === 'string') {
          this.logger.warn(`leader-only cron job ${name} sets no timeZone: its ticks follow each replica's own time zone ` +
            `(here ${Intl.DateTimeFormat().resolvedOptions().timeZone}), so replicas in different zones disagree on them`);
        }
        return { ...common, timetable: cronTimetable(cron), waitForCompletion: cron.waitForCompletion ?? false };
      }
      case SCHEDULER_TYPES.interval:
        return { ...common, timetable: intervalTimetable(schedule.ms!), waitForCompletion: false };
      case SCHEDULER_TYPES.timeout: {
        const problem = timeoutDelayProblem(schedule.ms);
        if (problem) throw new Error(`@Timeout ${problem}`);
        return { ...common, delay: schedule.ms, waitForCompletion: false };
      }
      default:
        throw new Error(`@nestjs/schedule declared a job of a kind this library does not know (${schedule.type})`);
    }
  }
}
