// Reads leader-only job runs from the example's tick lines and accounts for every tick: which ran,
// where, how often and how each run ended, which were skipped on purpose, which were recorded in
// the Lease. Shared by the schedule integration tests and the benchmark.
import type { ObservedLine, Replica } from './replicas.ts';

/** One run of one tick on one replica, from its tick-start line to its tick-end line (if any). */
export interface TickRun {
  replica: string;
  job: string;
  /** The tick's scheduled time, ms since the epoch. */
  tick: number;
  kind: string;
  term: number;
  start: number;
  /** Wall time of tick-end; undefined when the process died first. */
  end: number | undefined;
  outcome: 'completed' | 'failed' | 'cancelled' | undefined;
  /** A tick-recorded line for this run's tick came from the same replica. */
  recorded: boolean;
  /** The replica had said it stopped leading before this run started. */
  startedAfterLoss: boolean;
}

const wall = (line: ObservedLine): number => Date.parse(line.time);

export class TickLedger {
  /** When each replica was SIGKILLed (wall ms), for runs it never ended. */
  readonly killedAt = new Map<string, number>();

  private readonly replicas: () => Replica[];

  // A plain field, not a parameter property: the benchmark imports this file with Node's type stripping.
  constructor(replicas: () => Replica[]) {
    this.replicas = replicas;
  }

  kill(replica: Replica): void {
    this.killedAt.set(replica.id, Date.now());
    replica.signal('SIGKILL');
  }

  runs(job: string): TickRun[] {
    const runs: TickRun[] = [];
    for (const replica of this.replicas()) {
      const open = new Map<number, TickRun>();
      let leading = false;
      for (const line of replica.lines) {
        if (line.event === 'started-leading') leading = true;
        if (line.event === 'stopped-leading') leading = false;
        if (line.job !== job) continue;
        const tick = Date.parse(line.tick as string);
        if (line.event === 'tick-start') {
          const run: TickRun = { replica: replica.id, job, tick, kind: line.kind as string, term: line.term!, start: wall(line),
            end: undefined, outcome: undefined, recorded: false, startedAfterLoss: !leading };
          open.set(tick, run);
          runs.push(run);
        } else if (line.event === 'tick-end') {
          const run = open.get(tick);
          if (run) Object.assign(run, { end: wall(line), outcome: line.outcome });
        } else if (line.event === 'tick-recorded') {
          for (const run of runs) if (run.replica === replica.id && run.tick === tick) run.recorded = true;
        }
      }
    }
    return runs.sort((a, b) => a.start - b.start);
  }

  /** Ticks the replicas said they skipped on purpose. */
  skipped(job: string): Set<number> {
    const ticks = this.replicas().flatMap((replica) => replica.lines)
      .filter((line) => line.event === 'ticks-skipped' && line.job === job)
      .flatMap((line) => (line.ticks as string[]).map((tick) => Date.parse(tick)));
    return new Set(ticks);
  }

  /** Pairs of `runs` on different replicas whose spans overlap (a run never ended lasts until its process was killed). */
  overlaps(unsorted: TickRun[]): string[] {
    const runs = [...unsorted].sort((a, b) => a.start - b.start);
    const until = (run: TickRun): number => run.end ?? this.killedAt.get(run.replica) ?? Infinity;
    const found: string[] = [];
    for (let i = 0; i < runs.length; i++) {
      for (let j = i + 1; j < runs.length; j++) {
        const [a, b] = [runs[i], runs[j]];
        if (a.replica !== b.replica && b.start < until(a)) {
          found.push(`${a.replica} ran ${a.job}@${new Date(a.tick).toISOString()} until ${new Date(until(a)).toISOString()}, ` +
            `after ${b.replica} started ${b.job}@${new Date(b.tick).toISOString()} at ${new Date(b.start).toISOString()}`);
        }
      }
    }
    return found;
  }
}

/** Every tick of a job with period `periodMs` (a grid from the epoch) from `from` to `to`, inclusive. */
export function ticksBetween(from: number, to: number, periodMs: number): number[] {
  const ticks: number[] = [];
  for (let tick = Math.ceil(from / periodMs) * periodMs; tick <= to; tick += periodMs) ticks.push(tick);
  return ticks;
}
