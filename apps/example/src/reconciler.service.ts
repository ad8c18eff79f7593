import { setTimeout as sleepOrThrow } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { OnLeader, sleep, type Term } from 'nestjs-lease-election';
import type { WorkStyle } from './config.js';
import { LeadershipLog } from './leadership-log.service.js';

/** Time between reconcile passes. Observers take a pass logged in the last 300 ms to mean "leading now". */
const RESYNC_INTERVAL_MS = 100;

/** Injection token for the --work-style flag. */
export const WORK_STYLE = 'WORK_STYLE';

/**
 * The controller loop: while this replica leads, a reconcile pass every RESYNC_INTERVAL_MS. The loop
 * comes in the two styles user code is written in (--work-style), so the chaos suite can check the
 * library against both.
 */
@Injectable()
export class Reconciler {
  private passes = 0;

  constructor(
    private readonly log: LeadershipLog,
    @Inject(WORK_STYLE) private readonly style: WorkStyle,
  ) {}

  @OnLeader()
  async run(term: Term): Promise<void> {
    if (this.style === 'signal') await this.runUntilAborted(term);
    else await this.runWhileValid(term);
  }

  /** 'valid', the recommended style: ask term.isValid() before every pass. */
  private async runWhileValid(term: Term): Promise<void> {
    for (;;) {
      // The time is taken before the check: even if the process is paused right after the check,
      // the pass it then logs carries a time at which the term was still valid.
      const startedAt = new Date();
      // isValid() re-checks the monotonic clock: a replica paused past its deadline never reconciles.
      if (!term.isValid()) return;
      this.reconcileOnce(term, startedAt);
      await sleep(RESYNC_INTERVAL_MS, term.signal); // resolves early when the term ends
    }
  }

  /**
   * 'signal': the loop of a user who trusts only the AbortSignal. It is only as safe as the signal is
   * prompt — after a pause the signal must already be aborted when this loop's timer fires — which is
   * exactly what running it under chaos checks.
   */
  private async runUntilAborted(term: Term): Promise<void> {
    try {
      for (;;) {
        const startedAt = new Date(); // before the check, as above
        if (term.signal.aborted) return;
        this.reconcileOnce(term, startedAt);
        await sleepOrThrow(RESYNC_INTERVAL_MS, undefined, { signal: term.signal });
      }
    } catch (error) {
      // The timer rejects with an AbortError when the term ends: that is the normal way out.
      if (term.signal.aborted) return;
      throw error;
    }
  }

  /**
   * One pass. A real controller compares the desired state with the observed one here and writes the
   * difference, sending term.fencingToken with each write so that a deposed leader's late writes can
   * be refused; this one only logs the pass.
   */
  private reconcileOnce(term: Term, startedAt: Date): void {
    this.passes++;
    this.log.work(term, { pass: this.passes, style: this.style }, startedAt);
  }
}
