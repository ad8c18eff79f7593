import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LeaderElectionModule } from 'nestjs-lease-election';
import { LeaderElectionHealthIndicator } from 'nestjs-lease-election/terminus';
import type { ExampleConfig } from './config.js';
import { HealthController } from './health.controller.js';
import { LeadershipLog } from './leadership-log.service.js';
import { MetricsController } from './metrics.controller.js';
import { Reconciler, WORK_STYLE } from './reconciler.service.js';

@Module({})
export class AppModule {
  static register(config: ExampleConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TerminusModule,
        LeaderElectionModule.forRoot({
          leaseName: config.leaseName,
          namespace: config.namespace,
          identity: config.identity,
          kubeConfig: config.kubeConfig,
          leaseDuration: config.leaseDuration,
          renewDeadline: config.renewDeadline,
          retryPeriod: config.retryPeriod,
          lossPolicy: config.lossPolicy,
          metrics: true,
        }),
      ],
      controllers: [HealthController, MetricsController],
      providers: [LeaderElectionHealthIndicator, LeadershipLog, Reconciler, { provide: WORK_STYLE, useValue: config.workStyle }],
    };
  }
}
