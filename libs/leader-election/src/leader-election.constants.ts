/** The election that `@OnLeader()` and the service's own members refer to. */
export const DEFAULT_ELECTION = 'default';
export const ON_LEADER_METADATA = 'nestjs-lease-election:on-leader';
/** Map<election name, LeaderElector> built from the resolved options. */
export const LEADER_ELECTORS = Symbol('LEADER_ELECTORS');
/** Map<set name, ElectionSet> built from the resolved options. */
export const LEADER_ELECTION_SETS = Symbol('LEADER_ELECTION_SETS');
/** The module options with every default applied, validated once (ResolvedLeaderElectionOptions). */
export const RESOLVED_OPTIONS = Symbol('RESOLVED_LEADER_ELECTION_OPTIONS');
/** Where the elections run: the cluster, or memory in tests (LeaseBackend). */
export const LEASE_BACKEND = Symbol('LEASE_BACKEND');
export const LOGGER_CONTEXT = 'LeaderElection';
/** Longest pause before an @OnLeader method that threw is started again. */
export const MAX_RESTART_BACKOFF_MS = 30_000;
