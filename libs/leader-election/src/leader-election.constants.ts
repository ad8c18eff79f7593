/** The election that `@OnLeader()` and the service's own members refer to. */
export const DEFAULT_ELECTION = 'default';
export const ON_LEADER_METADATA = 'nestjs-lease-election:on-leader';
/** Map<election name, LeaderElector> built from the module options. */
export const LEADER_ELECTORS = Symbol('LEADER_ELECTORS');
/** The KubeConfig the module loaded from its options. */
export const LEADER_ELECTION_KUBECONFIG = Symbol('LEADER_ELECTION_KUBECONFIG');
export const LOGGER_CONTEXT = 'LeaderElection';
/** Longest pause before an @OnLeader method that threw is started again. */
export const MAX_RESTART_BACKOFF_MS = 30_000;
