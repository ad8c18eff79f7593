import { Module, type DynamicModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { LeaderElectionModule } from 'nestjs-lease-election';
import { leaderSchedule } from 'nestjs-lease-election/schedule';
import { LeaderElectionHealthIndicator } from 'nestjs-lease-election/terminus';
import type { ExampleConfig } from './config.js';
import { HealthController } from './health.controller.js';
import { LeadershipLog } from './leadership-log.service.js';
import { MetricsController } from './metrics.controller.js';
import { Reconciler, WORK_STYLE } from './reconciler.service.js';
import { ShardWorker } from './shard-worker.service.js';
import { TICK_CONFIG, TickJobs } from './tick-jobs.service.js';

@Module({})
export class AppModule {
  static register(config: ExampleConfig): DynamicModule {
    const schedule = config.schedule;
    return {
      module: AppModule,
      imports: [
        TerminusModule,
        ...schedule ? [ScheduleModule.forRoot()] : [],
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
          sets: config.shards ? { shards: { elections: config.shards } } : undefined,
          handoverOnShutdown: config.handoverOnShutdown ?? false,
          coordinated: config.coordinated === undefined ? undefined : { binaryVersion: config.coordinated },
          extensions: schedule ? [leaderSchedule({ missed: schedule })] : [],
        }),
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        LeaderElectionHealthIndicator, LeadershipLog, Reconciler, { provide: WORK_STYLE, useValue: config.workStyle },
        ...config.shards ? [ShardWorker] : [],
        ...schedule ? [TickJobs, { provide: TICK_CONFIG, useValue: { tickWorkMs: config.tickWorkMs, tickStyle: config.tickStyle } }] : [],
      ],
    };
  }
}
