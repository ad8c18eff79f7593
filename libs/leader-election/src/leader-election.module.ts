import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { LeaderElectionHealthServer } from './health/health-server.js';
import { LeaderElectionHealthService } from './health/leader-election-health.service.js';
import { LeaderElectionExplorer } from './leader-election.explorer.js';
import { ConfigurableLeaderElectionModule } from './leader-election.module-definition.js';
import { LeaderElectionOrchestrator } from './leader-election.orchestrator.js';
import { LeaderElectionService } from './leader-election.service.js';
import { kubeConfigProvider, leaderElectorsProvider } from './leader-electors.provider.js';

/**
 * `LeaderElectionModule.forRoot(options)` or `.forRootAsync({ useFactory, inject, imports })`,
 * with `isGlobal` to share the service app-wide.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    kubeConfigProvider,
    leaderElectorsProvider,
    LeaderElectionService,
    LeaderElectionExplorer,
    LeaderElectionOrchestrator,
    LeaderElectionHealthService,
    LeaderElectionHealthServer,
  ],
  exports: [LeaderElectionService, LeaderElectionHealthService, LeaderElectionHealthServer],
})
export class LeaderElectionModule extends ConfigurableLeaderElectionModule {}
