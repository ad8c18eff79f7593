/**
 * Coordinated leader election (Kubernetes' KEP-4355, LeaseCandidate in coordination.k8s.io/v1beta1):
 * each candidate announces itself with its versions, a controller in the apiserver picks the leader
 * among the candidates that answer its pings, by a strategy, and names it in the Lease. An elector
 * with a candidacy never takes a Lease that does not name it. This is the announcement, behind an
 * interface so the core depends on no API (nestjs-lease-election/kubernetes has the real one).
 */
export interface Candidacy {
  /** For log lines, e.g. "LeaseCandidate my-ns/pod-0". */
  readonly description: string;
  /**
   * Announces this candidate and keeps it announced (answering the controller's pings) until stop().
   * Resolves false when the cluster does not coordinate elections (the API is not served): the
   * elector then runs the ordinary election. Rejects with an error a person can act on (RBAC, a clash).
   */
  start(): Promise<boolean>;
  /**
   * Withdraws the candidate, so the controller names another: before the elector gives its lease up,
   * and while it may not lead (sitting out a step-down, work that outlived its term). start() again after.
   */
  stop(): Promise<void>;
  /** Optional: release connections once the elector has stopped. */
  close?(): void;
  /**
   * Whether `identity` is a live candidate of this election now (it answers pings), for a handover
   * to it. undefined when that cannot be told (the API is not served, or reading it is not allowed).
   */
  isLive(identity: string, signal: AbortSignal): Promise<boolean | undefined>;
}

/** Versions a coordinated candidate announces; the controller's strategy compares them. */
export interface CoordinatedOptions {
  /** The candidate's version, semver without a leading "v", e.g. "1.4.2". */
  binaryVersion: string;
  /** The version it behaves as (at most binaryVersion). Default: binaryVersion. */
  emulationVersion?: string;
  /**
   * How the controller picks: 'OldestEmulationVersion' (the only one Kubernetes implements: the
   * lowest emulationVersion, then binaryVersion, then the oldest candidate). Default that.
   */
  strategy?: string;
}

/** Strict semver as the apiserver checks it (no "v", no leading zeros). */
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** The options resolved, or the problems with them (pushed onto `problems`). */
export function resolveCoordinatedOptions(value: unknown, problems: string[]): Required<CoordinatedOptions> | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null) {
    problems.push(`coordinated must be { binaryVersion, emulationVersion?, strategy? }, got ${JSON.stringify(value)}`);
    return undefined;
  }
  const { binaryVersion, emulationVersion = binaryVersion, strategy = 'OldestEmulationVersion' } = value as CoordinatedOptions;
  const before = problems.length;
  for (const [name, version] of [['binaryVersion', binaryVersion], ['emulationVersion', emulationVersion]] as const) {
    if (typeof version !== 'string' || !SEMVER.test(version)) {
      problems.push(`coordinated.${name} must be a semantic version like "1.4.2" (no "v"), got ${JSON.stringify(version)}`);
    }
  }
  if (problems.length === before && compareVersions(emulationVersion, binaryVersion) > 0) {
    problems.push(`coordinated.emulationVersion (${emulationVersion}) must not be above binaryVersion (${binaryVersion})`);
  }
  if (typeof strategy !== 'string' || strategy === '') problems.push(`coordinated.strategy must be a non-empty string, got ${JSON.stringify(strategy)}`);
  return problems.length === before ? { binaryVersion, emulationVersion, strategy } : undefined;
}

/** A version's major, minor and patch, then 1 for a release or 0 for a pre-release (which sorts below it). */
function versionParts(version: string): number[] {
  const [core = ''] = version.split(/[-+]/, 1);
  const pre = /^[^+]*-/.test(version);
  return [...core.split('.').map(Number), pre ? 0 : 1];
}

/** Orders versions numerically (pre-releases below their release, as semver does; their tags are not compared). */
function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}
