import { setTimeout as sleepOrThrow } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { OnLeader, sleep, type Term } from 'nestjs-lease-election';
import type { WorkStyle } from './config.js';
import { EventLog } from './event-log.js';

const TICK_MS = 100;

/** Injection token for the --work-style flag. */
export const WORK_STYLE = 'WORK_STYLE';

/**
 * A simulated controller loop: one reconcile pass every 100 ms while this replica leads. It comes in
 * two styles (--work-style) so the chaos suite can check the library against both kinds of user code.
 */
@Injectable()
export class Reconciler {
  private readonly log: EventLog;
  private readonly style: WorkStyle;
  private passes = 0;

  constructor(log: EventLog, @Inject(WORK_STYLE) style: WorkStyle) {
    this.log = log;
    this.style = style;
  }

  @OnLeader()
  async reconcile(term: Term): Promise<void> {
    if (this.style === 'signal') await this.untilAborted(term);
    else await this.whileValid(term);
  }

  /** 'valid', the recommended style: ask term.isValid() before every side effect. */
  private async whileValid(term: Term): Promise<void> {
    for (;;) {
      // The time is taken before the check: even if the process is paused right after the check,
      // the line it then writes carries a time at which the term was still valid.
      const at = new Date();
      // isValid() re-checks the monotonic clock: a replica paused past its deadline never reports work.
      if (!term.isValid()) return;
      this.work(term, at);
      await sleep(TICK_MS, term.signal); // resolves early when the term ends
    }
  }

  /**
   * 'signal': the loop of a user who trusts only the AbortSignal. It is only as safe as the signal is
   * prompt — after a pause the signal must already be aborted when this loop's timer fires — which is
   * exactly what running it under chaos checks.
   */
  private async untilAborted(term: Term): Promise<void> {
    try {
      for (;;) {
        const at = new Date(); // before the check, as above
        if (term.signal.aborted) return;
        this.work(term, at);
        await sleepOrThrow(TICK_MS, undefined, { signal: term.signal });
      }
    } catch (error) {
      // sleep() rejects with an AbortError when the term ends: that is the normal way out.
      if (term.signal.aborted) return;
      throw error;
    }
  }

  private work(term: Term, at: Date): void {
    this.passes++;
    this.log.emit('work', { leader: term.identity, term: term.fencingToken, pass: this.passes, style: this.style }, at);
  }
}
