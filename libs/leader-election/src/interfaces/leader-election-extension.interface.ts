import type { DynamicModule, Provider } from '@nestjs/common';

/**
 * Adds providers to LeaderElectionModule (and LeaderElectionTestingModule), where they can inject
 * the module's own (the resolved options, the electors, LeaderWorkRegistry). `leaderSchedule()`
 * from nestjs-lease-election/schedule is one.
 */
export interface LeaderElectionExtension {
  providers: Provider[];
  /** The providers the app may inject. */
  exports: NonNullable<DynamicModule['exports']>;
}
