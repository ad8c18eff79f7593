// Runs candidates as processes — apps/example, or the client-go peer — and reads their JSON lines:
// shared by the interop tests, the demo and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';

export const EXAMPLE_MAIN = resolve(import.meta.dirname, '..', '..', 'dist', 'apps', 'example', 'main.js');
/** The example's app shape without leader election: the cost benchmark's baseline (scripts/bench-baseline). */
export const BENCH_BASELINE_MAIN = resolve(import.meta.dirname, '..', '..', 'dist', 'scripts', 'bench-baseline', 'main.js');

/**
 * Which implementation a replica runs: ours (apps/example, built by `npm run build`), client-go's, or
 * the benchmark baseline (which only writes `ready`).
 */
export type Implementation = { kind: 'example' } | { kind: 'client-go'; binary: string } | { kind: 'bench-baseline' };

export interface ReplicaLine {
  time: string;
  id: string;
  event: 'ready' | 'new-leader' | 'started-leading' | 'work' | 'stopped-leading' | 'error'
    // A set of elections (--shards): the elections this replica is assigned; started-leading, work and stopped-leading then carry `election`.
    | 'assignment'
    // Leader-only scheduled jobs (--schedule): a run's start and end, a tick recorded in the Lease, ticks caught up or skipped.
    | 'tick-start' | 'tick-end' | 'tick-recorded' | 'ticks-caught-up' | 'ticks-skipped';
  leader: string | null;
  term: number | null;
  [key: string]: unknown;
}

/** A line as an observer received it, stamped with the observer's monotonic clock. */
export interface ObservedLine extends ReplicaLine {
  at: number;
}

export interface ReplicaOptions {
  id: string;
  kubeconfig: string;
  namespace: string;
  leaseName?: string;
  /** Seconds, as the example's flags take them. */
  timings?: { leaseDuration: number; renewDeadline: number; retryPeriod: number };
  extraArgs?: string[];
  implementation?: Implementation;
}

export class Replica {
  readonly id: string;
  readonly namespace: string;
  readonly process: ChildProcess;
  /** How the process ended. Nest re-raises SIGTERM after a clean shutdown, so that counts as clean. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; clean: boolean }>;
  /** The HTTP port the replica reported in its `ready` line. */
  httpPort: number | undefined;
  /** Every line so far. */
  readonly lines: ObservedLine[] = [];
  private readonly listeners = new Set<(line: ObservedLine) => void>();
  private stderr = '';

  constructor(options: ReplicaOptions) {
    this.id = options.id;
    this.namespace = options.namespace;
    const timings = options.timings;
    const implementation = options.implementation ?? { kind: 'example' };
    const args = [
      '--kubeconfig', options.kubeconfig, '--id', options.id, '--port', '0',
      '--namespace', options.namespace, '--lease-name', options.leaseName ?? 'example-controller',
      ...(timings ? ['--lease-duration', String(timings.leaseDuration), '--renew-deadline', String(timings.renewDeadline),
        '--retry-period', String(timings.retryPeriod)] : []),
      ...(options.extraArgs ?? []),
    ];
    this.process = implementation.kind === 'client-go'
      ? spawn(implementation.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [implementation.kind === 'example' ? EXAMPLE_MAIN : BENCH_BASELINE_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((done) => this.process.once('exit', (code, signal) => done({ code, signal, clean: code === 0 || signal === 'SIGTERM' })));
    createInterface({ input: this.process.stdout! }).on('line', (text) => {
      let line: ReplicaLine;
      try {
        line = JSON.parse(text) as ReplicaLine;
      } catch {
        throw new Error(`${this.id} wrote a line that is not JSON to stdout: ${text}`);
      }
      if (line.event === 'ready') this.httpPort = line.port as number;
      const observed = { ...line, at: performance.now() };
      this.lines.push(observed);
      for (const listener of this.listeners) listener(observed);
    });
    this.process.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-20_000);
    });
  }

  onLine(listener: (line: ObservedLine) => void): void {
    this.listeners.add(listener);
  }

  /** The replica's recent log (stderr), for failure reports. */
  get log(): string {
    return this.stderr;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(signal);
  }
}

/** Works every 100 ms while it leads: a work line in the last 300 ms means it leads now. */
export function isWorking(replica: Replica, now = performance.now()): boolean {
  return (replica.lines.findLast((line) => line.event === 'work')?.at ?? 0) > now - 300;
}

/**
 * Resolves with the first line `match` accepts, from any of `replicas`, received after `since`
 * (a performance.now() time; lines already received count too); rejects after timeoutMs.
 */
export function nextLine(replicas: Replica[], match: (line: ObservedLine) => boolean, timeoutMs: number, what: string,
  since = performance.now()): Promise<ObservedLine> {
  const seen = replicas.flatMap((replica) => replica.lines).filter((line) => line.at >= since && match(line))
    .sort((a, b) => a.at - b.at)[0];
  if (seen) return Promise.resolve(seen);
  return new Promise((resolvePromise, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    for (const replica of replicas) {
      replica.onLine((line) => {
        if (done || !match(line)) return;
        done = true;
        clearTimeout(timer);
        resolvePromise(line);
      });
    }
  });
}

const time = (line: ObservedLine): number => Date.parse(line.time);

/** One process's work in one term: its first and last work lines. */
export interface WorkSpan {
  /** Who worked: a process, not an identity — two processes may share one (see observe()). */
  source: string;
  term: number;
  first: ObservedLine;
  last: ObservedLine;
}

/**
 * Checks work lines for overlap: no two processes may work at once. Each process's work in a term is
 * a span from its first work line to its last (the lines' own timestamps; all replicas share this
 * machine's clock); two spans of different processes overlap when one's last line is later than the
 * other's first.
 */
export class OverlapDetector {
  private readonly spans = new Map<string, WorkSpan>();
  /**
   * How many terms each process has begun. A span is one process's work in one of its terms: the
   * fencing token alone does not tell terms apart, since client-go numbers the terms of a re-created
   * Lease from 0 again (several client-go terms 0 of one process are not one long term).
   */
  private readonly begun = new Map<string, number>();

  /**
   * `source` tells processes apart; it defaults to the line's identity, which is enough unless two
   * processes run with the same identity (two containers of one pod on POD_NAME).
   */
  observe(line: ObservedLine, source = line.id): void {
    if (line.event === 'started-leading') this.begun.set(source, (this.begun.get(source) ?? 0) + 1);
    if (line.event !== 'work' || line.term === null) return;
    const key = JSON.stringify([source, this.begun.get(source) ?? 0, line.term]);
    const span = this.spans.get(key);
    if (span) span.last = line;
    else this.spans.set(key, { source, term: line.term, first: line, last: line });
  }

  /** How many distinct terms did work. */
  get terms(): number {
    return new Set([...this.spans.values()].map((span) => span.term)).size;
  }

  /** Every pair of overlapping spans: `earlier` began first and was still working after `later` began. */
  overlapping(): Array<{ earlier: WorkSpan; later: WorkSpan }> {
    const spans = [...this.spans.values()].sort((a, b) => time(a.first) - time(b.first) || a.term - b.term);
    const found: Array<{ earlier: WorkSpan; later: WorkSpan }> = [];
    for (let i = 0; i < spans.length; i++) {
      for (let j = 0; j < i; j++) {
        if (spans[j].source !== spans[i].source && time(spans[j].last) > time(spans[i].first)) found.push({ earlier: spans[j], later: spans[i] });
      }
    }
    return found;
  }

  overlaps(): string[] {
    return this.overlapping().map(({ earlier, later }) => describeOverlap(earlier, later));
  }
}

export function describeOverlap(earlier: WorkSpan, later: WorkSpan): string {
  const who = (span: WorkSpan): string => (span.source === span.first.id ? span.first.id : `${span.first.id} [${span.source}]`);
  return `${who(earlier)} (term ${earlier.term}) worked at ${earlier.last.time}, after ${who(later)} (term ${later.term}) started at ${later.first.time}`;
}
