import { Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { LeaderElectionHealthServer } from './health/health-server.js';
import { LeaderElectionHealthService } from './health/leader-election-health.service.js';
import { kubernetesBackendProvider } from './kubernetes-lease.backend.js';
import { LeaderElectionExplorer } from './leader-election.explorer.js';
import { ConfigurableLeaderElectionModule } from './leader-election.module-definition.js';
import { resolvedOptionsProvider } from './leader-election.options.js';
import { LeaderElectionOrchestrator } from './leader-election.orchestrator.js';
import { LeaderElectionService } from './leader-election.service.js';
import { leaderElectionSetsProvider } from './leader-election-sets.provider.js';
import { leaderElectorsProvider } from './leader-electors.provider.js';
import { LeaderWorkRegistry } from './leader-work.registry.js';

/** Everything but the backend: the testing module runs the same providers on memory and a fake clock. */
export const ELECTION_PROVIDERS: Provider[] = [
  resolvedOptionsProvider,
  leaderElectorsProvider,
  leaderElectionSetsProvider,
  LeaderElectionService,
  LeaderElectionExplorer,
  LeaderWorkRegistry,
  LeaderElectionOrchestrator,
  LeaderElectionHealthService,
  LeaderElectionHealthServer,
];

export const ELECTION_EXPORTS = [LeaderElectionService, LeaderElectionHealthService, LeaderElectionHealthServer];

/**
 * `LeaderElectionModule.forRoot(options)` or `.forRootAsync({ useFactory, inject, imports })`,
 * with `isGlobal` to share the service app-wide.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [kubernetesBackendProvider, ...ELECTION_PROVIDERS],
  exports: ELECTION_EXPORTS,
})
export class LeaderElectionModule extends ConfigurableLeaderElectionModule {}
