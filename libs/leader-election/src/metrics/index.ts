// `nestjs-lease-election/metrics`: Prometheus metrics for an elector, through prom-client.
export { attachElectionMetrics, METRIC_NAMES } from './election-metrics.js';
