export * from './elector/index.js';
export * from './decorators/index.js';
export * from './interfaces/index.js';
export { DEFAULT_ELECTION } from './leader-election.constants.js';
export { LeaderElectionModule } from './leader-election.module.js';
export { LEADER_ELECTION_OPTIONS } from './leader-election.module-definition.js';
export { LeaderElectionService } from './leader-election.service.js';
export { LeaderElectionHealthService, type HealthReport } from './health/leader-election-health.service.js';
export { LeaderElectionHealthServer } from './health/health-server.js';
