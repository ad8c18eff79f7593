/** What a leader-only run knows about itself, reachable from anywhere inside the run. */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Term } from '../core/term.js';

/** 'scheduled': the tick fell due while this instance led. 'catch-up': it fell due before, with no leader to run it. */
export type TickKind = 'scheduled' | 'catch-up';

/** One tick of one job: the same identity on every replica. */
export interface Tick {
  /** The job's stable name: its `name` option, else `ClassName.method`. */
  readonly job: string;
  /** The instant the tick was scheduled for (not when it ran). */
  readonly scheduledAt: Date;
  /** `${job}@${scheduledAt.toISOString()}`: a key for making a repeated run harmless. */
  readonly id: string;
  readonly kind: TickKind;
}

export interface RunContext {
  readonly tick: Tick;
  /** The term the run belongs to: the run must stop when it ends. */
  readonly term: Term;
  /** The term's signal: aborted when leadership ends (checked against the clock on every read). */
  readonly signal: AbortSignal;
  /** The term's fencing token, for external systems to refuse a deposed leader's writes. */
  readonly fencingToken: number;
}

export const runContextStorage = new AsyncLocalStorage<RunContext>();

/** The run this code is part of, or undefined outside leader-only runs. */
export function currentRun(): RunContext | undefined {
  return runContextStorage.getStore();
}
