/** One ElectionSet per set of the resolved options, on the module's backend. */
import type { Provider } from '@nestjs/common';
import type { ElectionSet } from './core/election-set.js';
import type { LeaseBackend } from './interfaces/lease-backend.interface.js';
import { LEADER_ELECTION_SETS, LEASE_BACKEND, RESOLVED_OPTIONS } from './leader-election.constants.js';
import { electorLogger } from './leader-election.logger.js';
import type { ResolvedLeaderElectionOptions } from './leader-election.options.js';

export const leaderElectionSetsProvider: Provider = {
  provide: LEADER_ELECTION_SETS,
  useFactory: (options: ResolvedLeaderElectionOptions, backend: LeaseBackend): Map<string, ElectionSet> =>
    new Map([...options.sets].map(([name, resolved]) => [name, backend.createElectionSet(resolved.set, electorLogger())])),
  inject: [RESOLVED_OPTIONS, LEASE_BACKEND],
};
