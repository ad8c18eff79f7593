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

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => new Date(),
  setTimeout: (callback, ms) => setTimeout(callback, Math.max(0, ms)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
