import { Module, type DynamicModule } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { LeaderElectionExtension } from '../interfaces/leader-election-extension.interface.js';
import type { LeaderElectionModuleOptions } from '../interfaces/leader-election-options.interface.js';
import { LEASE_BACKEND } from '../leader-election.constants.js';
import { ELECTION_EXPORTS, ELECTION_PROVIDERS } from '../leader-election.module.js';
import { LEADER_ELECTION_OPTIONS } from '../leader-election.module-definition.js';
import { InMemoryLeaseBackend } from './in-memory-lease.backend.js';
import { LeadershipControl } from './leadership-control.js';

/** The module's options without the cluster: no kubeconfig, Events or pod label. */
export interface LeaderElectionTestingOptions extends Partial<Omit<LeaderElectionModuleOptions, 'kubeConfig' | 'events' | 'leaderLabel'>> {
  isGlobal?: boolean;
  /** As LeaderElectionModule's, e.g. `[leaderSchedule()]` from nestjs-lease-election/schedule. */
  extensions?: LeaderElectionExtension[];
}

/** What overrideLeaderElection() needs of @nestjs/testing's TestingModuleBuilder. */
interface ProviderOverrides<Builder> {
  overrideProvider(token: unknown): { useValue(value: unknown): Builder };
}

/**
 * Runs the elections of an app that imports LeaderElectionModule on memory and a fake clock: its
 * own options, service, orchestrator and @OnLeader methods, no cluster. Then `LeadershipControl.of(app)`.
 */
export function overrideLeaderElection<Builder extends ProviderOverrides<Builder>>(builder: Builder): Builder {
  return builder.overrideProvider(LEASE_BACKEND).useValue(new InMemoryLeaseBackend());
}

/**
 * LeaderElectionModule on memory and a fake clock, for tests that assemble their own module: the
 * same service, orchestrator, @OnLeader discovery and health, plus a LeadershipControl provider to
 * grant and revoke leadership and move time.
 */
@Module({})
export class LeaderElectionTestingModule {
  static forRoot({ isGlobal = false, extensions = [], ...options }: LeaderElectionTestingOptions = {}): DynamicModule {
    return {
      module: LeaderElectionTestingModule,
      global: isGlobal,
      imports: [DiscoveryModule],
      providers: [
        { provide: LEADER_ELECTION_OPTIONS, useValue: { leaseName: 'test-election', ...options, events: false } },
        { provide: LEASE_BACKEND, useFactory: () => new InMemoryLeaseBackend() },
        ...ELECTION_PROVIDERS,
        ...extensions.flatMap((extension) => extension.providers),
        LeadershipControl,
      ],
      exports: [...ELECTION_EXPORTS, ...extensions.flatMap((extension) => extension.exports), LeadershipControl],
    };
  }
}
