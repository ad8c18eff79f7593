// The framework-free core: usable from plain Node without Nest.
export { systemClock, type Clock } from './clock.js';
export { sleep } from './sleep.js';
export {
  LeaderElector, LeadershipLostError,
  type ElectionEvent, type LeaderElectorDependencies, type LeaderWork, type LossReason, type Term,
} from './leader-elector.js';
export { LockError, type LeaseLock, type LeaseWatchHandlers, type LockErrorKind } from './lease-lock.js';
export { formatMicroTime, parseLease, type LeaseObject, type LeaseRecord, type LeaseSnapshot } from './lease-record.js';
export {
  DEFAULT_TIMINGS, InvalidElectorOptionsError,
  type ElectorLogger, type LeaderElectorOptions, type LeaderElectorTimings, type LossPolicy,
} from './options.js';
export { createLeaderElector, type KubernetesElectorOptions } from './create-leader-elector.js';
export { defaultNamespace, KubeConfigError, loadKubeConfig, SERVICE_ACCOUNT_NAMESPACE_FILE } from './kube-config.js';
export { KubernetesLeaseLock, leaseRoleRule } from './kubernetes-lease-lock.js';
export { DEFAULT_HEALTH_TOLERANCE_MS, electionHealth, type ElectionHealth } from './healthz.js';
export { attachLeaderEvents, eventsRoleRule, REPORTING_CONTROLLER } from './lease-events.js';
export { attachElectionMetrics, METRIC_NAMES } from './metrics.js';
export { attachLeaderLabel, leaderLabelRoleRule, type LeaderLabelOptions } from './leader-label.js';
