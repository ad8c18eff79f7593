import { SetMetadata } from '@nestjs/common';
import type { LeaderOnlyOptions } from './leader-schedule.options.js';

export const LEADER_ONLY_METADATA = 'nestjs-lease-election:leader-only';

/**
 * Stacked with @Cron, @Interval or @Timeout (in either order): the job runs only on the leader of
 * the election (the default one, or as named), within its term, with missed ticks caught up by the
 * next leader. `@LeaderOnly(false)` keeps a job on every replica under `leaderSchedule({ everyJob })`.
 * Needs `extensions: [leaderSchedule()]` in LeaderElectionModule.forRoot().
 */
export function LeaderOnly(electionOrOptions: string | LeaderOnlyOptions | false = {}): MethodDecorator {
  const value = typeof electionOrOptions === 'string' ? { election: electionOrOptions } : electionOrOptions;
  return SetMetadata(LEADER_ONLY_METADATA, value);
}
