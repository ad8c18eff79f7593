/** One LeaderElector per election, from the resolved options, on the module's backend. */
import type { Provider } from '@nestjs/common';
import type { LeaderElector } from './core/leader-elector.js';
import type { LeaseBackend } from './interfaces/lease-backend.interface.js';
import { LEADER_ELECTORS, LEASE_BACKEND, RESOLVED_OPTIONS } from './leader-election.constants.js';
import { electorLogger } from './leader-election.logger.js';
import type { ResolvedLeaderElectionOptions } from './leader-election.options.js';

export const leaderElectorsProvider: Provider = {
  provide: LEADER_ELECTORS,
  useFactory: (options: ResolvedLeaderElectionOptions, backend: LeaseBackend): Map<string, LeaderElector> =>
    new Map([...options.elections].map(([name, election]) => [name, backend.createElector(election.elector, electorLogger())])),
  inject: [RESOLVED_OPTIONS, LEASE_BACKEND],
};
