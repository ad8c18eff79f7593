/**
 * Prometheus metrics for an election, through prom-client (an optional peer dependency), with
 * client-go's names and meanings where client-go has them, so existing dashboards keep working.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LockError } from '../core/lease-lock.js';
import type { LeaderElector } from '../core/leader-elector.js';

export type PromClient = typeof import('prom-client');

export async function loadPromClient(): Promise<PromClient> {
  try {
    return await import('prom-client');
  } catch (error) {
    throw new Error('metrics need the prom-client package: npm install prom-client', { cause: error });
  }
}

/** The metrics this library exports, for documentation and tests. */
export const METRIC_NAMES = {
  masterStatus: 'leader_election_master_status',
  slowpath: 'leader_election_slowpath_total',
  transitions: 'leader_election_transitions_total',
  renewDuration: 'leader_election_renew_duration_seconds',
  errors: 'leader_election_errors_total',
} as const;

export function shared<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * Records an elector's events into `registry` (default: prom-client's global registry, the one
 * @willsoto/nestjs-prometheus serves). Returns a function that detaches it.
 */
export async function attachElectionMetrics(elector: LeaderElector, registry?: Registry): Promise<() => void> {
  const prom = await loadPromClient();
  const target = registry ?? prom.register;
  const registers = [target];
  const master = shared(target, METRIC_NAMES.masterStatus, () => new prom.Gauge({
    name: METRIC_NAMES.masterStatus, help: 'Whether this instance leads the election (1) or not (0)', labelNames: ['name'], registers,
  })) as Gauge<'name'>;
  const slowpath = shared(target, METRIC_NAMES.slowpath, () => new prom.Counter({
    name: METRIC_NAMES.slowpath, help: 'Renewals that had to read the Lease first because the cached version was stale', labelNames: ['name'], registers,
  })) as Counter<'name'>;
  const transitions = shared(target, METRIC_NAMES.transitions, () => new prom.Counter({
    name: METRIC_NAMES.transitions, help: 'Changes of this instance\'s leadership, by what it became', labelNames: ['name', 'to'], registers,
  })) as Counter<'name' | 'to'>;
  const renew = shared(target, METRIC_NAMES.renewDuration, () => new prom.Histogram({
    name: METRIC_NAMES.renewDuration, help: 'Latency of successful renewals', labelNames: ['name'], registers,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  })) as Histogram<'name'>;
  const errors = shared(target, METRIC_NAMES.errors, () => new prom.Counter({
    name: METRIC_NAMES.errors, help: 'Failed requests and failed work, by phase and reason', labelNames: ['name', 'during', 'reason'], registers,
  })) as Counter<'name' | 'during' | 'reason'>;

  const name = elector.options.leaseName;
  master.set({ name }, elector.isLeader() ? 1 : 0);
  const subscription = elector.events$.subscribe((event) => {
    switch (event.type) {
      case 'acquired':
        master.set({ name }, 1);
        transitions.inc({ name, to: 'leader' });
        break;
      case 'lost':
        master.set({ name }, 0);
        transitions.inc({ name, to: 'follower' });
        break;
      case 'renewed':
        renew.observe({ name }, event.latencyMs / 1000);
        break;
      case 'slow-path':
        slowpath.inc({ name });
        break;
      case 'error':
        errors.inc({ name, during: event.during, reason: event.error instanceof LockError ? event.error.kind : 'other' });
        break;
      default:
    }
  });
  return () => subscription.unsubscribe();
}
