/** A clock the test drives: timers run only when time is advanced. */
import type { Clock } from '../core/clock.js';

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

/**
 * Node's own setImmediate, taken when this module loads: a test runner's fake timers (Jest's and
 * Vitest's fake setImmediate by default) installed later must not stop the kit from settling.
 */
const realSetImmediate = globalThis.setImmediate;

/** Lets pending promise chains (the in-memory lock is async) run to completion. */
export async function settle(rounds = 10): Promise<void> {
  if ('clock' in realSetImmediate) {
    throw new Error('setImmediate was already faked when nestjs-lease-election/testing loaded: the kit needs the real one. ' +
      "Leave it out of your runner's fake timers (Jest: fakeTimers.doNotFake ['setImmediate', 'queueMicrotask']; " +
      "Vitest: vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] }))");
  }
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => realSetImmediate(resolve));
}

/** More timers than this at one instant means code that re-arms itself without time passing. */
const MAX_TIMERS_PER_INSTANT = 10_000;

export class FakeClock implements Clock {
  private time = 0;
  private readonly wallOrigin = Date.parse('2026-01-02T03:04:05.000Z');
  private timers: Timer[] = [];
  private nextId = 1;
  /** The advance() in progress, which the next one waits for. */
  private advancing: Promise<void> = Promise.resolve();

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

  /** Moves time forward by `ms`, running every timer that falls due, in order. Calls queue up: time never goes back. */
  advance(ms: number): Promise<void> {
    const run = this.advancing.then(() => this.advanceNow(ms));
    this.advancing = run.catch(() => {});
    return run;
  }

  private async advanceNow(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    let sameInstant = 0;
    for (;;) {
      const due = this.nextTimer(target);
      if (!due) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      sameInstant = due.at > this.time ? 0 : sameInstant + 1;
      if (sameInstant > MAX_TIMERS_PER_INSTANT) throw new Error(`livelock: over ${MAX_TIMERS_PER_INSTANT} timers ran at ${this.time} ms without time passing`);
      this.time = Math.max(this.time, due.at);
      due.callback();
      await settle();
    }
    this.time = Math.max(this.time, target);
    await settle();
  }

  /** The earliest timer due by `until`. */
  private nextTimer(until: number): Timer | undefined {
    return this.timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
  }

  /**
   * Runs timer after timer until `condition` holds, jumping straight to each one (no fixed step);
   * fails once `limitMs` of fake time have passed without it. Returns the fake time it took.
   */
  async runUntil(condition: () => boolean, limitMs: number): Promise<number> {
    const start = this.time;
    await this.advance(0);
    while (!condition()) {
      const left = start + limitMs - this.time;
      if (left <= 0) throw new Error(`condition not reached within ${limitMs} ms of fake time`);
      const next = this.nextTimer(start + limitMs);
      await this.advance(next ? Math.max(next.at - this.time, 0) : left);
    }
    return this.time - start;
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
