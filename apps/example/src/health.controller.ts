import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult, type HealthIndicatorResult } from '@nestjs/terminus';
import { LeaderElectionService } from 'nestjs-lease-election';
import { LeaderElectionHealthIndicator } from 'nestjs-lease-election/terminus';

/**
 * Health through Terminus: `/health` reports everything; the Kubernetes probes use `/healthz`
 * (liveness) and `/readyz` (readiness), the paths of the library's standalone health server.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly leaderElection: LeaderElectionHealthIndicator,
    private readonly election: LeaderElectionService,
  ) {}

  @Get('health')
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.leaderElection.isHealthy(), () => this.leaseSynced()]);
  }

  /** Down only for a leader that cannot renew: followers stay live, so the kubelet never restarts a standby. */
  @Get('healthz')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([() => this.leaderElection.isHealthy()]);
  }

  /** Ready once the election runs and has read the Lease: a rollout waits until a new replica can take over. */
  @Get('readyz')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.leaseSynced()]);
  }

  private leaseSynced(): HealthIndicatorResult {
    const indicator = this.indicators.check('lease');
    const { isRunning, synced } = this.election.election();
    return isRunning && synced ? indicator.up({ synced }) : indicator.down({ running: isRunning, synced });
  }
}
