/**
 * When a job's ticks fall: every instant a cron expression names (through the very `cron` package
 * @nestjs/schedule uses, so the same parser and DST rules), or every multiple of an interval.
 */
import { createRequire } from 'node:module';
import { MAX_TIMER_MS } from '../core/clock.js';

/** The ticks of one job, as UTC instants. */
export interface Timetable {
  /** The first tick strictly after `instant`, or undefined when there is none (a one-shot date passed). */
  nextAfter(instant: Date): Date | undefined;
  /** For log lines, e.g. "cron '* * * * * *' (UTC)". */
  readonly description: string;
}

/** What a cron job's time and zone can be, as @Cron takes them. */
export interface CronSchedule {
  cronTime: string | Date | { toJSDate(): Date };
  timeZone?: string;
  /** Minutes east of UTC. */
  utcOffset?: number;
}

interface CronTimeLike {
  getNextDateFrom(start: Date, zone?: string): { toJSDate(): Date };
}
type CronTimeConstructor = new (source: string, timeZone?: string | null, utcOffset?: number | null) => CronTimeLike;

let cronTimeClass: CronTimeConstructor | undefined;

/** `cron` as @nestjs/schedule resolves it: the copy that validates the app's own expressions. */
function loadCronTime(): CronTimeConstructor {
  if (cronTimeClass) return cronTimeClass;
  const here = createRequire(import.meta.url);
  let schedulePackage: string;
  try {
    schedulePackage = here.resolve('@nestjs/schedule/package.json');
  } catch (error) {
    throw new Error('leader-only cron jobs need @nestjs/schedule: npm install @nestjs/schedule', { cause: error });
  }
  cronTimeClass = (createRequire(schedulePackage)('cron') as { CronTime: CronTimeConstructor }).CronTime;
  return cronTimeClass;
}

/** The zone cron computes in: the time zone, a fixed UTC offset, or (neither) this process's own. */
function zoneOf({ timeZone, utcOffset }: CronSchedule): string | undefined {
  if (timeZone !== undefined) return timeZone;
  if (utcOffset === undefined) return undefined;
  const sign = utcOffset < 0 ? '-' : '+';
  const minutes = Math.abs(utcOffset);
  return `UTC${sign}${String(Math.trunc(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** Throws a readable error for an expression, zone or offset cron refuses. */
export function cronTimetable(schedule: CronSchedule): Timetable {
  const { cronTime } = schedule;
  if (typeof cronTime !== 'string') {
    // A date: one tick, once.
    const at = cronTime instanceof Date ? cronTime : cronTime.toJSDate();
    if (Number.isNaN(at.getTime())) throw new Error('the cron date is not a valid date');
    return { description: `once at ${at.toISOString()}`, nextAfter: (instant) => (at > instant ? at : undefined) };
  }
  if (schedule.timeZone !== undefined && schedule.utcOffset !== undefined) {
    throw new Error('timeZone and utcOffset exclude each other');
  }
  const zone = zoneOf(schedule);
  const CronTime = loadCronTime();
  let time: CronTimeLike;
  try {
    time = new CronTime(cronTime, schedule.timeZone ?? null, schedule.timeZone === undefined ? schedule.utcOffset ?? null : null);
    // Computing one tick surfaces a bad zone or an expression that never matches now, not at the first term.
    time.getNextDateFrom(new Date(), zone);
  } catch (error) {
    throw new Error(`cron '${cronTime}'${zone ? ` in ${zone}` : ''}: ${(error as Error).message}`, { cause: error });
  }
  return {
    description: `cron '${cronTime}' (${zone ?? 'the process time zone'})`,
    nextAfter: (instant) => time.getNextDateFrom(instant, zone).toJSDate(),
  };
}

/**
 * Every `ms` milliseconds counted from the Unix epoch: the same instants on every replica, so a
 * successor continues the grid its predecessor ran on.
 */
export function intervalTimetable(ms: number): Timetable {
  // Node's own limit, which @Interval inherits (past it setInterval fires every millisecond).
  if (!(Number.isFinite(ms) && ms >= 1 && ms <= MAX_TIMER_MS)) {
    throw new Error(`an interval must be from 1 ms to ${MAX_TIMER_MS} ms (24.8 days, the longest Node's timers take), got ${ms}`);
  }
  return {
    description: `every ${ms} ms`,
    nextAfter: (instant) => new Date((Math.floor(instant.getTime() / ms) + 1) * ms),
  };
}

/** What is wrong with a @Timeout delay (one Node's timers cannot take), or undefined. */
export function timeoutDelayProblem(ms: unknown): string | undefined {
  if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIMER_MS) return undefined;
  return `needs a delay from 0 to ${MAX_TIMER_MS} ms (24.8 days, the longest Node's timers take), got ${String(ms)}`;
}
