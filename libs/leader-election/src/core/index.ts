// `nestjs-lease-election/core`: the election itself, with no framework and no Kubernetes client in
// it. Bring a LeaseLock (nestjs-lease-election/kubernetes has the real one) and start a LeaderElector.
export { systemClock, type Clock } from './clock.js';
export { assignElections } from './assignment.js';
export type { Candidacy, CoordinatedOptions } from './candidacy.js';
export { DEFAULT_HEALTH_TOLERANCE_MS, electionHealth, type ElectionHealth } from './election-health.js';
export { ElectionSet, memberLeaseName, SET_LABEL, type ElectionSetDependencies, type ElectionSetOptions, type SetWork } from './election-set.js';
export { HANDOVER_ANNOTATION, HANDOVER_INTENT_ANNOTATION, LeaderElector, type ElectionEvent, type LeaderElectorDependencies, type LeaderWork, type StepDownOptions } from './leader-elector.js';
export {
  LockError, type LeaseDirectory, type LeaseDirectoryWatchHandlers, type LeaseLock, type LeaseVerb, type LeaseWatchHandlers, type LockErrorKind,
} from './lease-lock.js';
export {
  applyAnnotations, formatMicroTime, parseLease, recordToSpec, type AnnotationChanges, type LeaseObject, type LeaseRecord, type LeaseSnapshot,
} from './lease-record.js';
export {
  DEFAULT_TIMINGS, InvalidElectorOptionsError,
  type ElectorLogger, type LeaderElectorOptions, type LeaderElectorTimings, type LossPolicy, type ResolvedElectorOptions,
} from './options.js';
export { sleep } from './sleep.js';
export { LeadershipLostError, type LossReason, type Term } from './term.js';
