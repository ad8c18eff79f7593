import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from './clock.js';

describe('systemClock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('caps delays at 2^31 - 1 ms, which Node would otherwise run after 1 ms (a follower of a 25-day lease spun)', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const handle = systemClock.setTimeout(() => {}, 2_147_484_000 * 1000);
    systemClock.clearTimeout(handle);
    expect(setTimeoutSpy).toHaveBeenCalledWith(expect.any(Function), 2 ** 31 - 1);
  });
});
