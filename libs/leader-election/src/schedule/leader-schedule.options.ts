/** The options of leader-only scheduled jobs, validated once when the extension is made. */
import { InvalidElectorOptionsError } from '../core/options.js';
import { DEFAULT_ELECTION } from '../leader-election.constants.js';
import type { MissedTickPolicy } from './leader-scheduler.js';

export interface LeaderOnlyOptions {
  /** Which election's leader runs the job. Default: the default election. */
  election?: string;
  /** Ticks that fell due while nobody led: run them once, at once ('catch-up', default), or drop them ('skip'). */
  missed?: MissedTickPolicy;
  /** The most missed ticks a new leader catches up, the latest ones; older ones are skipped and logged. Default 100. */
  maxCatchUp?: number;
}

export interface LeaderScheduleOptions extends Omit<LeaderOnlyOptions, 'election'> {
  /**
   * Make every @Cron, @Interval and @Timeout leader-only, not just those marked @LeaderOnly():
   * true for the default election, or an election's name. `@LeaderOnly(false)` opts a method out.
   */
  everyJob?: boolean | string;
  /** The Lease annotation that records each job's settled ticks. Default 'nestjs-lease-election/schedule'. */
  annotationKey?: string;
  /**
   * When a settled tick is written to the Lease: 'on-completion' (default) at once, as an early
   * renewal, so a crash can repeat at most the ticks of about one request's time; 'on-renewal'
   * with the next renewal, up to a retryPeriod later, for jobs so frequent that a write each would cost too much.
   */
  record?: 'on-completion' | 'on-renewal';
}

export interface ResolvedLeaderScheduleOptions {
  everyJob: string | undefined;
  missed: MissedTickPolicy;
  maxCatchUp: number;
  annotationKey: string;
  record: 'on-completion' | 'on-renewal';
}

export const DEFAULT_ANNOTATION_KEY = 'nestjs-lease-election/schedule';
const DEFAULT_MAX_CATCH_UP = 100;
/** An annotation key as the apiserver validates it: an optional DNS-subdomain prefix and a name of 1–63 characters. */
const QUALIFIED_NAME = /^(?:(?=.{1,253}\/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Problems with the options a job (or the extension) sets, each a line of the error. */
export function jobOptionProblems(options: Omit<LeaderOnlyOptions, 'election'>, prefix = ''): string[] {
  const problems: string[] = [];
  if (options.missed !== undefined && options.missed !== 'catch-up' && options.missed !== 'skip') {
    problems.push(`${prefix}missed must be 'catch-up' or 'skip', got ${JSON.stringify(options.missed)}`);
  }
  if (options.maxCatchUp !== undefined && !(Number.isInteger(options.maxCatchUp) && options.maxCatchUp >= 0)) {
    problems.push(`${prefix}maxCatchUp must be a whole number from 0 up, got ${JSON.stringify(options.maxCatchUp)}`);
  }
  return problems;
}

export function resolveLeaderScheduleOptions(options: LeaderScheduleOptions = {}): ResolvedLeaderScheduleOptions {
  const { everyJob = false, annotationKey = DEFAULT_ANNOTATION_KEY, record = 'on-completion' } = options;
  const problems = jobOptionProblems(options);
  if (typeof annotationKey !== 'string' || !QUALIFIED_NAME.test(annotationKey) || /^(?:[^/]*\.)?(?:kubernetes\.io|k8s\.io)\//.test(annotationKey)) {
    problems.push(`annotationKey must be a Kubernetes annotation key outside kubernetes.io and k8s.io (an optional DNS prefix, '/', ` +
      `a name of 1-63 letters, digits, '-', '_' or '.'), got ${JSON.stringify(annotationKey)}`);
  }
  if (record !== 'on-completion' && record !== 'on-renewal') {
    problems.push(`record must be 'on-completion' or 'on-renewal', got ${JSON.stringify(record)}`);
  }
  if (typeof everyJob !== 'boolean' && (typeof everyJob !== 'string' || everyJob === '')) {
    problems.push(`everyJob must be true, false or an election's name, got ${JSON.stringify(everyJob)}`);
  }
  if (problems.length > 0) throw new InvalidElectorOptionsError(problems.map((problem) => `leaderSchedule(): ${problem}`));
  return {
    everyJob: everyJob === true ? DEFAULT_ELECTION : everyJob === false ? undefined : everyJob,
    missed: options.missed ?? 'catch-up',
    maxCatchUp: options.maxCatchUp ?? DEFAULT_MAX_CATCH_UP,
    annotationKey,
    record,
  };
}
