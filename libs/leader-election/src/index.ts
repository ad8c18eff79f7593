// The Nest API and the types its users touch. Plain Node use: nestjs-lease-election/core and
// /kubernetes; Prometheus: /metrics; Terminus: /terminus; leader-only @nestjs/schedule jobs: /schedule;
// tests without a cluster: /testing.
export { OnLeader } from './decorators/on-leader.decorator.js';
export type { ElectionHealth } from './core/election-health.js';
export type { ElectionEvent, LeaderElector, StepDownOptions } from './core/leader-elector.js';
export { LockError, type LockErrorKind } from './core/lease-lock.js';
export { InvalidElectorOptionsError, type LossPolicy } from './core/options.js';
export { sleep } from './core/sleep.js';
export { LeadershipLostError, type LossReason, type Term } from './core/term.js';
export { LeaderElectionHealthServer } from './health/health-server.js';
export { LeaderElectionHealthService, type HealthReport } from './health/leader-election-health.service.js';
export type { ElectionOptions, HealthServerOptions, LeaderElectionModuleOptions, WorkErrorPolicy } from './interfaces/leader-election-options.interface.js';
export type { LeaderElectionExtension } from './interfaces/leader-election-extension.interface.js';
export type { OnLeaderOptions } from './interfaces/on-leader-options.interface.js';
export { KubeConfigError } from './kubernetes/kube-config.js';
export type { LeaderLabelOptions } from './kubernetes/leader-label.js';
export { DEFAULT_ELECTION } from './leader-election.constants.js';
export { LeaderElectionModule } from './leader-election.module.js';
export { LeaderElectionService } from './leader-election.service.js';
