/** A clock the test drives: timers run only when time is advanced. */
import type { Clock } from '../core/clock.js';

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

/** Lets pending promise chains (the in-memory lock is async) run to completion. */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** More timers than this at one instant means code that re-arms itself without time passing. */
const MAX_TIMERS_PER_INSTANT = 10_000;

export class FakeClock implements Clock {
  private time = 0;
  private readonly wallOrigin = Date.parse('2026-01-02T03:04:05.000Z');
  private timers: Timer[] = [];
  private nextId = 1;

  now(): number {
    return this.time;
  }

  wallNow(): Date {
    return new Date(this.wallOrigin + this.time);
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, at: this.time + Math.max(0, ms), callback };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    let sameInstant = 0;
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      sameInstant = due.at > this.time ? 0 : sameInstant + 1;
      if (sameInstant > MAX_TIMERS_PER_INSTANT) throw new Error(`livelock: over ${MAX_TIMERS_PER_INSTANT} timers ran at ${this.time} ms without time passing`);
      this.time = Math.max(this.time, due.at);
      due.callback();
      await settle();
    }
    this.time = target;
    await settle();
  }

  /** Advances in steps until `condition` holds; fails after `limitMs` of fake time. */
  async advanceUntil(condition: () => boolean, limitMs: number, stepMs = 10): Promise<number> {
    const start = this.time;
    while (!condition()) {
      if (this.time - start > limitMs) throw new Error(`condition not reached within ${limitMs} ms of fake time`);
      await this.advance(stepMs);
    }
    return this.time - start;
  }

  /** Time passes but no timer runs: what a paused (SIGSTOP, GC, frozen VM) process sees on resume. */
  jump(ms: number): void {
    this.time += ms;
  }
}
