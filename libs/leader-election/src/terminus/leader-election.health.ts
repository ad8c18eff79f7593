/** A Terminus health indicator for the elections, on terminus 12's HealthIndicatorService. */
import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { LeaderElectionHealthService } from '../health/leader-election-health.service.js';

@Injectable()
export class LeaderElectionHealthIndicator {
  constructor(private readonly indicators: HealthIndicatorService, private readonly health: LeaderElectionHealthService) {}

  /** Down when a leader cannot renew (leaseDuration + healthTolerance) or the app's livenessCheck fails. */
  async isHealthy(key = 'leaderElection'): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check(key);
    const { healthy, ...details } = await this.health.check();
    return healthy ? indicator.up(details) : indicator.down(details);
  }
}
