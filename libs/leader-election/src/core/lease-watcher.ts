/**
 * Keeps one watch on the Lease open for a follower's sake: re-opened at once after a clean close,
 * with a doubling backoff after failures. The watch only makes the elector act sooner; nothing
 * about safety depends on it, so while it is down the elector polls.
 */
import type { Clock } from './clock.js';
import type { LeaseLock } from './lease-lock.js';
import type { LeaseSnapshot } from './lease-record.js';

/** Longest wait before re-opening a failed watch. */
const MAX_WATCH_BACKOFF_MS = 30_000;

export interface LeaseWatcherEvents {
  /** The Lease as it now is; undefined when it was deleted. */
  onChange(snapshot: LeaseSnapshot | undefined): void;
  /** The watch ended (with the error, if it failed); it is re-opened by itself. */
  onDown(error: Error | undefined): void;
}

export class LeaseWatcher {
  private stopWatch: (() => void) | undefined;
  private failures = 0;
  private retryTimer: unknown;
  private closed = false;
  /** Open and delivering events. */
  healthy = false;

  constructor(
    private readonly lock: LeaseLock,
    private readonly clock: Clock,
    private readonly retryPeriod: number,
    private readonly handlers: LeaseWatcherEvents,
  ) {}

  /** Opens the watch, if the lock offers one (a lock may stop offering it: then followers only poll). */
  open(): void {
    const watch = this.lock.watch;
    if (!watch || this.closed) return;
    this.stopWatch = watch.call(this.lock, {
      onOpen: () => {
        this.healthy = true;
        this.failures = 0;
      },
      onChange: (snapshot) => this.handlers.onChange(snapshot),
      onClose: (error) => {
        this.healthy = false;
        this.stopWatch = undefined;
        if (this.closed) return;
        if (error) this.failures++;
        this.handlers.onDown(error);
        const backoff = error ? Math.min(MAX_WATCH_BACKOFF_MS, this.retryPeriod * 2 ** (this.failures - 1)) : 0;
        this.retryTimer = this.clock.setTimeout(() => this.open(), backoff);
      },
    });
  }

  /** For good: no event reaches the handlers after this. */
  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.healthy = false;
  }
}
