import { Module, type DynamicModule } from '@nestjs/common';
import { LeaderElectionModule } from 'nestjs-lease-election';
import type { ExampleConfig } from './config.js';
import { EventLog } from './event-log.js';
import { Reconciler, WORK_STYLE } from './reconciler.service.js';

@Module({})
export class AppModule {
  static register(config: ExampleConfig): DynamicModule {
    const providers = [EventLog, Reconciler, { provide: WORK_STYLE, useValue: config.workStyle }];
    if (config.withoutElection) return { module: AppModule, providers };
    return {
      module: AppModule,
      imports: [
        LeaderElectionModule.forRoot({
          leaseName: config.leaseName,
          namespace: config.namespace,
          identity: config.identity,
          kubeConfig: config.kubeConfig,
          leaseDuration: config.leaseDuration,
          renewDeadline: config.renewDeadline,
          retryPeriod: config.retryPeriod,
          lossPolicy: config.lossPolicy,
          healthServer: { port: config.port },
        }),
      ],
      providers,
    };
  }
}
