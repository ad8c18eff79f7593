import { Injectable } from '@nestjs/common';
import { OnLeader, type Term } from 'nestjs-lease-election';
import { EventLog } from './event-log.js';

const TICK_MS = 100;

/** A simulated controller loop: one reconcile pass every 100 ms while this replica leads. */
@Injectable()
export class Reconciler {
  private readonly log: EventLog;
  private passes = 0;

  constructor(log: EventLog) {
    this.log = log;
  }

  @OnLeader()
  async reconcile(term: Term): Promise<void> {
    for (;;) {
      // The time is taken before the check: even if the process is paused right after the check,
      // the line it then writes carries a time at which the term was still valid.
      const at = new Date();
      // isValid() re-checks the monotonic clock: a replica paused past its deadline never reports work.
      if (!term.isValid()) return;
      this.passes++;
      this.log.emit('work', { leader: term.identity, term: term.fencingToken, pass: this.passes }, at);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, TICK_MS);
        term.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  }
}
