import { SetMetadata } from '@nestjs/common';
import { DEFAULT_ELECTION, ON_LEADER_METADATA } from '../leader-election.constants.js';
import type { OnLeaderOptions } from '../interfaces/on-leader-options.interface.js';

/**
 * Runs the method each time this instance becomes leader of the election, with the Term:
 * `term.signal` aborts when leadership ends, `term.fencingToken` identifies the term. The returned
 * promise is awaited before the lease is released, so the method must stop when the signal aborts.
 * `@OnLeader('<set>/*')` runs it for each election of a set this instance leads, with the election's
 * name as its second argument: `run(term: Term, election: string)`.
 */
export function OnLeader(electionOrOptions: string | OnLeaderOptions = {}): MethodDecorator {
  const options = typeof electionOrOptions === 'string' ? { election: electionOrOptions } : electionOrOptions;
  return SetMetadata(ON_LEADER_METADATA, { election: DEFAULT_ELECTION, ...options } satisfies OnLeaderOptions);
}
