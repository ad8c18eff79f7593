/** An abortable pause for leader work and restart backoff. */
import { systemClock, type Clock } from './clock.js';

/**
 * Resolves after `ms`, or as soon as `signal` aborts (it never rejects, so a loop can check its
 * term right after). Leaves no timer and no listener behind either way.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
