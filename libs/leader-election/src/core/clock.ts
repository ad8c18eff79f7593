/**
 * Time as the elector sees it. `now()` is monotonic and drives every safety decision; `wallNow()`
 * only fills the Lease's informational timestamps. Tests substitute a fake.
 */
export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin; keeps counting while the process is paused. */
  now(): number;
  /** Wall-clock time, written into acquireTime and renewTime. */
  wallNow(): Date;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The longest delay Node's timers take. */
/** The longest delay Node's timers take (about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => new Date(),
  // Node runs a delay beyond 2^31 - 1 ms after 1 ms: cap it (every caller re-checks the time when woken).
  setTimeout: (callback, ms) => setTimeout(callback, Math.min(Math.max(0, ms), MAX_TIMER_MS)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
