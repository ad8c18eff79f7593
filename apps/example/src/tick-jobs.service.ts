import { setTimeout as sleepOrThrow } from 'node:timers/promises';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { Cron, Interval } from '@nestjs/schedule';
import { LeadershipLostError, sleep } from 'nestjs-lease-election';
import { LeaderOnly, LeaderSchedules, ScheduledRun } from 'nestjs-lease-election/schedule';
import type { ExampleConfig } from './config.js';
import { LeadershipLog } from './leadership-log.service.js';

/** Injection token for the --schedule, --tick-work-ms and --tick-style flags. */
export const TICK_CONFIG = 'TICK_CONFIG';

/**
 * Leader-only scheduled jobs, as a user writes them next to @Cron: the handler keeps its signature
 * and reaches its run (tick, signal, fencing token) through ScheduledRun. Each run writes a
 * tick-start and a tick-end line; the integration tests and the benchmark count ticks from them.
 */
@Injectable()
export class TickJobs implements OnModuleInit {
  constructor(
    private readonly run: ScheduledRun,
    private readonly log: LeadershipLog,
    private readonly schedules: LeaderSchedules,
    @Inject(TICK_CONFIG) private readonly config: Pick<ExampleConfig, 'tickWorkMs' | 'tickStyle'>,
  ) {}

  onModuleInit(): void {
    this.schedules.of('default').events$.subscribe((event) => {
      if (event.type === 'tick-recorded') this.log.tick('tick-recorded', event.tick, event.fencingToken);
      if (event.type === 'ticks-skipped' || event.type === 'ticks-caught-up') {
        this.log.ticks(event.type, event.job, event.ticks, event.reason);
      }
    });
  }

  @Cron('* * * * * *', { name: 'tick', timeZone: 'UTC' })
  @LeaderOnly()
  async tick(): Promise<void> {
    await this.work();
  }

  @Interval('heartbeat', 1500)
  @LeaderOnly()
  async heartbeat(): Promise<void> {
    await this.work();
  }

  /** One run: a line when it starts, the work, a line when it ends, however it ends. */
  private async work(): Promise<void> {
    const { tick, term, signal, fencingToken } = this.run.current();
    this.log.tick('tick-start', tick, fencingToken);
    let outcome = 'completed';
    try {
      switch (this.config.tickStyle) {
        case 'signal':
          await sleepOrThrow(this.config.tickWorkMs, undefined, { signal }); // rejects when the term ends
          break;
        case 'valid':
          for (const end = Date.now() + this.config.tickWorkMs; Date.now() < end;) {
            if (!term.isValid()) throw new LeadershipLostError('renew-deadline');
            await sleep(Math.min(50, end - Date.now()));
          }
          break;
        case 'ignore':
          await sleep(this.config.tickWorkMs); // finishes regardless: the release waits, up to settleTimeout
          break;
      }
    } catch (error) {
      outcome = signal.aborted ? 'cancelled' : 'failed';
      throw error;
    } finally {
      this.log.tick('tick-end', tick, fencingToken, { outcome });
    }
  }
}
