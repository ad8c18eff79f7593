export type { ElectionOptions, HealthServerOptions, LeaderElectionModuleOptions, WorkErrorPolicy } from './leader-election-options.interface.js';
export type { OnLeaderOptions } from './on-leader-options.interface.js';
