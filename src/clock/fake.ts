// A Clock that moves only when told to, for tests: advance(ms) fires every timer that falls due,
// in deadline order, each seeing now() at its own deadline (like wireguard-go tests that drive
// timers by hand, without sleeping).

import type { Cancel, Clock } from './clock.js';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
  /** Repeat interval; 0 for a one-shot timer. */
  every: number;
}

export class FakeClock implements Clock {
  private current: number;
  private nextId = 0;
  private readonly timers = new Set<Timer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  after(ms: number, fn: () => void): Cancel {
    return this.add(ms, fn, 0);
  }

  every(ms: number, fn: () => void): Cancel {
    return this.add(ms, fn, Math.max(1, ms));
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing what falls due on the way. */
  advance(ms: number): void {
    const end = this.current + ms;
    for (;;) {
      const next = this.earliest(end);
      if (!next) break;
      this.current = next.due;
      if (next.every > 0) next.due += next.every;
      else this.timers.delete(next);
      next.fn();
    }
    this.current = end;
  }

  private earliest(limit: number): Timer | undefined {
    let best: Timer | undefined;
    for (const timer of this.timers) {
      if (timer.due > limit) continue;
      if (!best || timer.due < best.due || (timer.due === best.due && timer.id < best.id)) best = timer;
    }
    return best;
  }

  private add(ms: number, fn: () => void, every: number): Cancel {
    const timer: Timer = { id: this.nextId++, due: this.current + Math.max(0, ms), fn, every };
    this.timers.add(timer);
    return () => {
      this.timers.delete(timer);
    };
  }
}
