/** Prometheus metrics of leader-only jobs, beside the election's, labelled by election (its Lease's name) and job. */
import type { Counter, Histogram, Registry } from 'prom-client';
import { loadPromClient, shared } from '../metrics/election-metrics.js';
import type { LeaderScheduler } from './leader-scheduler.js';

export const SCHEDULE_METRIC_NAMES = {
  runs: 'leader_schedule_runs_total',
  duration: 'leader_schedule_run_duration_seconds',
  caughtUp: 'leader_schedule_ticks_caught_up_total',
  skipped: 'leader_schedule_ticks_skipped_total',
} as const;

export async function attachScheduleMetrics(scheduler: LeaderScheduler, registry?: Registry): Promise<() => void> {
  const name = scheduler.elector.options.leaseName;
  const prom = await loadPromClient();
  const target = registry ?? prom.register;
  const registers = [target];
  const runs = shared(target, SCHEDULE_METRIC_NAMES.runs, () => new prom.Counter({
    name: SCHEDULE_METRIC_NAMES.runs, help: 'Runs of leader-only jobs by outcome (completed, failed, cancelled) and kind (scheduled, catch-up)',
    labelNames: ['name', 'job', 'outcome', 'kind'], registers,
  })) as Counter<'name' | 'job' | 'outcome' | 'kind'>;
  const duration = shared(target, SCHEDULE_METRIC_NAMES.duration, () => new prom.Histogram({
    name: SCHEDULE_METRIC_NAMES.duration, help: 'Duration of leader-only runs', labelNames: ['name', 'job'], registers,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  })) as Histogram<'name' | 'job'>;
  const caughtUp = shared(target, SCHEDULE_METRIC_NAMES.caughtUp, () => new prom.Counter({
    name: SCHEDULE_METRIC_NAMES.caughtUp, help: 'Ticks that fell due while nobody led, run by the next leader', labelNames: ['name', 'job'], registers,
  })) as Counter<'name' | 'job'>;
  const skipped = shared(target, SCHEDULE_METRIC_NAMES.skipped, () => new prom.Counter({
    name: SCHEDULE_METRIC_NAMES.skipped, help: "Ticks not run on purpose: missed (policy 'skip' or beyond maxCatchUp) or overlap (waitForCompletion)",
    labelNames: ['name', 'job', 'reason'], registers,
  })) as Counter<'name' | 'job' | 'reason'>;
  const subscription = scheduler.events$.subscribe((event) => {
    switch (event.type) {
      case 'run-settled':
        runs.inc({ name, job: event.tick.job, outcome: event.outcome, kind: event.tick.kind });
        duration.observe({ name, job: event.tick.job }, event.durationMs / 1000);
        break;
      case 'ticks-caught-up':
        caughtUp.inc({ name, job: event.job }, event.ticks.length);
        break;
      case 'ticks-skipped':
        skipped.inc({ name, job: event.job, reason: event.reason }, event.ticks.length);
        break;
      default:
    }
  });
  return () => subscription.unsubscribe();
}
