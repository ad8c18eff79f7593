import { Injectable } from '@nestjs/common';
import { currentRun, type RunContext, type Tick } from './run-context.js';

/**
 * Inject it to reach the run a leader-only job is in, without changing the handler's signature:
 * its tick (job, scheduled time, id), the term's signal and its fencing token.
 */
@Injectable()
export class ScheduledRun {
  /** Throws outside a leader-only run (a handler called directly, or a job that is not leader-only). */
  current(): RunContext {
    const run = currentRun();
    if (!run) throw new Error('ScheduledRun.current() was called outside a leader-only scheduled run');
    return run;
  }

  get signal(): AbortSignal {
    return this.current().signal;
  }

  get tick(): Tick {
    return this.current().tick;
  }

  get fencingToken(): number {
    return this.current().fencingToken;
  }
}
