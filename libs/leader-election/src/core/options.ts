/** LeaderElector options, their defaults, and validation that reports every problem at once. */
import { resolveCoordinatedOptions, type CoordinatedOptions } from './candidacy.js';

/** What happens after this instance loses leadership without having asked to. */
export type LossPolicy = 'exit' | 'rejoin';

export interface ElectorLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

export interface LeaderElectorTimings {
  /** How long a lease is valid without renewal, in milliseconds. Default 15000. */
  leaseDuration?: number;
  /** A leader that has not renewed for this long steps down, in milliseconds. Default 10000. */
  renewDeadline?: number;
  /** Pause between renewals, and between acquire attempts while polling, in milliseconds. Default 2000. */
  retryPeriod?: number;
}

export interface LeaderElectorOptions extends LeaderElectorTimings {
  /** Name of the coordination.k8s.io/v1 Lease. */
  leaseName: string;
  namespace: string;
  /** This candidate's identity, unique among the candidates: the pod's name in Kubernetes. */
  identity: string;
  /** Give the lease up when stopping, after this term's work has settled. Default true. */
  releaseOnStop?: boolean;
  /** After an involuntary loss: 'exit' the process (default) or 'rejoin' the election. */
  lossPolicy?: LossPolicy;
  /** How long to wait for a term's work to settle after its signal aborts, in milliseconds. Default 30000. */
  settleTimeout?: number;
  /**
   * Coordinated leader election (Kubernetes' KEP-4355): announce this candidate with these versions
   * and lead only when the apiserver's controller names it. Needs a Candidacy (createLeaderElector
   * and the Nest module build the LeaseCandidate one); where the cluster does not serve
   * LeaseCandidates the ordinary election runs. Default: the ordinary election.
   */
  coordinated?: CoordinatedOptions;
}

export interface ResolvedElectorOptions {
  leaseName: string;
  namespace: string;
  identity: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  releaseOnStop: boolean;
  lossPolicy: LossPolicy;
  settleTimeout: number;
  coordinated: Required<CoordinatedOptions> | undefined;
}

export const DEFAULT_TIMINGS = { leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 } as const;
export const JITTER_FACTOR = 1.2;
const DEFAULT_SETTLE_TIMEOUT = 30_000;

/** RFC 1123 subdomain (Lease names) and label (namespaces), as the apiserver checks them. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class InvalidElectorOptionsError extends Error {
  readonly problems: readonly string[];

  constructor(problems: string[]) {
    super(`invalid leader election options:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'InvalidElectorOptionsError';
    this.problems = problems;
  }
}

function describeDuration(name: string, value: unknown, problems: string[]): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    problems.push(`${name} must be a number of milliseconds, got ${JSON.stringify(value)}`);
    return undefined;
  }
  if (value <= 0) {
    problems.push(`${name} must be greater than 0, got ${value}`);
    return undefined;
  }
  return value;
}

export function resolveElectorOptions(options: LeaderElectorOptions): ResolvedElectorOptions {
  const problems: string[] = [];
  const leaseName = options.leaseName;
  if (typeof leaseName !== 'string' || leaseName.length === 0) {
    problems.push(`leaseName must be a non-empty string, got ${JSON.stringify(leaseName)}`);
  } else if (leaseName.length > 253 || !DNS_SUBDOMAIN.test(leaseName)) {
    problems.push(`leaseName ${JSON.stringify(leaseName)} is not a valid Lease name (lowercase letters, digits, '-' and '.', at most 253 characters)`);
  }
  const namespace = options.namespace;
  if (namespace === undefined || namespace === '') {
    problems.push('namespace is not set: pass the namespace option (createLeaderElector and LeaderElectionModule default it to ' +
      "POD_NAMESPACE, the service account's namespace or the kubeconfig context's, and found none)");
  } else if (typeof namespace !== 'string') {
    problems.push(`namespace must be a string, got ${JSON.stringify(namespace)}`);
  } else if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    problems.push(`namespace ${JSON.stringify(namespace)} is not a valid namespace name (lowercase letters, digits and '-', at most 63 characters)`);
  }
  const identity = options.identity;
  if (typeof identity !== 'string' || identity.trim().length === 0) {
    problems.push(`identity must be a non-empty string, got ${JSON.stringify(identity)}`);
  }

  const leaseDuration = describeDuration('leaseDuration', options.leaseDuration ?? DEFAULT_TIMINGS.leaseDuration, problems);
  const renewDeadline = describeDuration('renewDeadline', options.renewDeadline ?? DEFAULT_TIMINGS.renewDeadline, problems);
  const retryPeriod = describeDuration('retryPeriod', options.retryPeriod ?? DEFAULT_TIMINGS.retryPeriod, problems);
  if (leaseDuration !== undefined && leaseDuration < 1000) {
    problems.push(`leaseDuration is in milliseconds and a Lease counts whole seconds: ${leaseDuration} is below 1000 (did you mean ${leaseDuration * 1000}?)`);
  }
  if (leaseDuration !== undefined && renewDeadline !== undefined && leaseDuration <= renewDeadline) {
    problems.push(`leaseDuration (${leaseDuration}) must be greater than renewDeadline (${renewDeadline})`);
  }
  if (renewDeadline !== undefined && retryPeriod !== undefined && renewDeadline <= JITTER_FACTOR * retryPeriod) {
    problems.push(`renewDeadline (${renewDeadline}) must be greater than ${JITTER_FACTOR} × retryPeriod (${JITTER_FACTOR * retryPeriod})`);
  }
  const settleTimeout = describeDuration('settleTimeout', options.settleTimeout ?? DEFAULT_SETTLE_TIMEOUT, problems);
  const lossPolicy = options.lossPolicy ?? 'exit';
  if (lossPolicy !== 'exit' && lossPolicy !== 'rejoin') {
    problems.push(`lossPolicy must be 'exit' or 'rejoin', got ${JSON.stringify(lossPolicy)}`);
  }
  const releaseOnStop = options.releaseOnStop ?? true;
  if (typeof releaseOnStop !== 'boolean') {
    problems.push(`releaseOnStop must be true or false, got ${JSON.stringify(releaseOnStop)}`);
  }
  const coordinated = resolveCoordinatedOptions(options.coordinated, problems);
  if (problems.length > 0) throw new InvalidElectorOptionsError(problems);
  return {
    leaseName, namespace, identity, releaseOnStop, lossPolicy, coordinated,
    leaseDuration: leaseDuration!, renewDeadline: renewDeadline!, retryPeriod: retryPeriod!, settleTimeout: settleTimeout!,
  };
}
