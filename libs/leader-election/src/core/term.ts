/** A leadership term as user code sees it, and the signal that says, on every read, whether it is over. */

export type LossReason =
  /** No renewal succeeded within renewDeadline. */
  | 'renew-deadline'
  /** The Lease now names another holder (a hand edit, or a peer with other timings). */
  | 'lease-taken'
  /** The Lease was deleted while we held it. */
  | 'lease-deleted'
  /** stepDown() was called. */
  | 'stepped-down'
  /** stop() was called. */
  | 'stopped';

/** One leadership term of this instance. */
export interface Term {
  readonly identity: string;
  /** leaseTransitions when this term began; grows with every term. */
  readonly fencingToken: number;
  /** Aborted when the term ends, with a LeadershipLostError as its reason. */
  readonly signal: AbortSignal;
  /** Wall-clock time the term began, for display. */
  readonly acquiredAt: Date;
  /** Recomputed from the monotonic clock: false once renewDeadline has passed without a renewal. */
  isValid(): boolean;
}

export class LeadershipLostError extends Error {
  readonly reason: LossReason;

  constructor(reason: LossReason) {
    super(`leadership lost: ${reason}`);
    this.name = 'LeadershipLostError';
    this.reason = reason;
  }
}

const abortedGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
const reasonGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;

/** The signal's own state, past the clock check that clockCheckedSignal() puts in front of it. */
export function nativeAborted(signal: AbortSignal): boolean {
  return abortedGetter.call(signal) as boolean;
}

/**
 * A term's signal whose every read checks the monotonic clock first. After a pause (SIGSTOP, a
 * frozen VM, a long GC) the first callback to run on resume is often the work's own timer, before
 * the deadline timer: `signal.aborted`, `signal.reason` and `signal.throwIfAborted()` must already
 * say the term is over then. Listeners and APIs that read the signal's internal state see the
 * abort a moment later, when the deadline timer or any of these reads ends the term.
 */
export function clockCheckedSignal(signal: AbortSignal, checkDeadline: () => boolean): AbortSignal {
  return Object.defineProperties(signal, {
    aborted: { get: () => !checkDeadline() },
    reason: {
      get: () => {
        checkDeadline();
        return reasonGetter.call(signal) as unknown;
      },
    },
    throwIfAborted: {
      value: () => {
        checkDeadline();
        AbortSignal.prototype.throwIfAborted.call(signal);
      },
    },
  });
}
