// The simulated world: one seeded random stream, one event queue in simulated time, and a clock per
// process that can pause, drift and fire its timers a little early or late. Everything the
// candidates do happens inside events of this queue, so one seed gives one run, bit for bit.
import type { Clock } from 'nestjs-lease-election/core';

/** mulberry32: small, fast and good enough to pick schedules; the same seed gives the same stream. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  int(min: number, max: number): number {
    return Math.floor(this.between(min, max + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** What owns an event: its events wait while it is paused and vanish once it is dead. */
export interface Owner {
  readonly name: string;
  paused: boolean;
  dead: boolean;
  parked: SimEvent[];
  /** Simulated time of the last resume from a pause. */
  resumedAt: number;
}

export interface SimEvent {
  at: number;
  seq: number;
  owner: Owner | undefined;
  run: () => void;
  cancelled: boolean;
}

/** Lets every promise chain that the last event started run to its end before the next event. */
const drainMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SimWorld {
  now = 0;
  readonly rng: Rng;
  readonly trace: string[] = [];
  private readonly heap: SimEvent[] = [];
  private seq = 0;
  /** Errors thrown from inside events: the run fails with them. */
  readonly errors: string[] = [];
  private incarnations = 0;
  /** Set once every fault is healed: from then on nothing but the candidates' own algorithm runs. */
  healed = false;

  constructor(readonly seed: number) {
    this.rng = new Rng(seed);
  }

  /** Names a new process: an identity can have several, one after another or (reused) at once. */
  processKey(identity: string): string {
    return `${identity}#${++this.incarnations}`;
  }

  log(line: string): void {
    this.trace.push(`${(this.now / 1000).toFixed(4).padStart(10)}s ${line}`);
  }

  at(time: number, run: () => void, owner?: Owner): SimEvent {
    const event: SimEvent = { at: Math.max(time, this.now), seq: this.seq++, owner, run, cancelled: false };
    this.push(event);
    return event;
  }

  after(delay: number, run: () => void, owner?: Owner): SimEvent {
    return this.at(this.now + delay, run, owner);
  }

  /** A paused owner's events wait; on resume they all run at once, in an order the seed picks. */
  resume(owner: Owner): void {
    if (!owner.paused) return;
    owner.paused = false;
    owner.resumedAt = this.now;
    this.log(`${owner.name} resumes (${owner.parked.length} events waited)`);
    for (const event of this.rng.shuffle(owner.parked.splice(0))) {
      event.at = this.now;
      event.seq = this.seq++;
      this.push(event);
    }
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Runs events up to `until`, letting promise chains settle and calling `check` after each; false once it fails. */
  async runUntil(until: number, check: () => boolean): Promise<boolean> {
    for (;;) {
      await drainMicrotasks();
      if (!check()) return false;
      const event = this.nextRunnable(until);
      if (!event) break;
      this.now = event.at;
      try {
        event.run();
      } catch (error) {
        this.errors.push(`event threw: ${error instanceof Error ? error.stack : String(error)}`);
      }
    }
    this.now = Math.max(this.now, until);
    return true;
  }

  /** The next event due by `until` whose owner can run it; dead owners' events are dropped, paused owners' parked. */
  private nextRunnable(until: number): SimEvent | undefined {
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      const event = this.pop();
      if (event.cancelled || event.owner?.dead) continue;
      if (event.owner?.paused) {
        event.owner.parked.push(event);
        continue;
      }
      return event;
    }
    return undefined;
  }

  private push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): SimEvent {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** The simulated apiserver's wall clock at time 0 (processes add their skew). */
export const WALL_ORIGIN = Date.parse('2026-01-02T03:04:05.000Z');

/**
 * One process's clock. Monotonic time keeps counting while the process is paused (as
 * performance.now() does); timers fire up to `earlyMs` before or `lateMs` after their target, as
 * Node's do; wall time is skewed at will, since the algorithm must never compare it across processes.
 */
export class SimClock implements Clock {
  readonly timers = new Map<number, SimEvent>();
  private nextHandle = 1;

  constructor(
    private readonly world: SimWorld,
    private readonly owner: Owner,
    private readonly jitter: { earlyMs: number; lateMs: number },
    /** Local rate of advance relative to simulated time (1 ± a little drift). */
    readonly rate = 1,
    readonly offset = 0,
    private readonly wallSkewMs = 0,
  ) {}

  now(): number {
    return this.world.now * this.rate + this.offset;
  }

  wallNow(): Date {
    return new Date(WALL_ORIGIN + this.world.now + this.wallSkewMs);
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    const target = (this.now() + Math.max(0, ms) - this.offset) / this.rate;
    const rng = this.world.rng;
    // Early by at most half the delay: a timer never fires as soon as it is set.
    const jitter = rng.chance(0.5) ? -rng.between(0, Math.min(this.jitter.earlyMs, Math.max(0, ms) / 2)) : rng.between(0, this.jitter.lateMs);
    const event = this.world.at(target + jitter, () => {
      this.timers.delete(handle);
      callback();
    }, this.owner);
    this.timers.set(handle, event);
    return handle;
  }

  clearTimeout(handle: unknown): void {
    const event = this.timers.get(handle as number);
    if (!event) return;
    event.cancelled = true;
    this.timers.delete(handle as number);
  }

  /** An abortable sleep on this clock that leaves nothing behind, as a user's work loop sleeps. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.clearTimeout(handle);
        reject(signal!.reason);
      };
      const handle = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
