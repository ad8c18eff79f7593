import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../testing/fake-clock.js';
import { sleep } from './sleep.js';

describe('sleep', () => {
  it('resolves after its time and leaves no listener on the signal', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    let done = false;
    void sleep(1_000, controller.signal, clock).then(() => { done = true; });
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('resolves (never rejects) as soon as the signal aborts, and leaves no timer', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal, clock);
    controller.abort(new Error('term over'));
    await expect(slept).resolves.toBeUndefined();
    expect((clock as unknown as { timers: unknown[] }).timers).toHaveLength(0);
    await expect(sleep(1, controller.signal, clock)).resolves.toBeUndefined();
  });
});
