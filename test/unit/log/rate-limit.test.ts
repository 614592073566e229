// LogBudget: at most so many lines per key and window; lines past the budget are counted and the
// next line allowed for that key says how many were left out.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { LINES_PER_WINDOW, LogBudget, WINDOW_MS } from '../../../src/log/rate-limit.js';

function budget(lines?: number, windowMs?: number) {
  const clock = new FakeClock();
  return { clock, budget: new LogBudget(() => clock.now(), lines, windowMs) };
}

/** Takes `n` lines for `key` and returns how many were allowed. */
function takeMany(b: LogBudget, key: string, n: number): number {
  let allowed = 0;
  for (let i = 0; i < n; i++) if (b.take(key).ok) allowed++;
  return allowed;
}

describe('LogBudget', () => {
  it('defaults to 20 lines per 60 s window', () => {
    expect(LINES_PER_WINDOW).toBe(20);
    expect(WINDOW_MS).toBe(60_000);
    const { budget: b } = budget();
    for (let i = 0; i < 20; i++) expect(b.take('peer'), `line ${i + 1}`).toEqual({ ok: true, note: '' });
    expect(b.take('peer')).toEqual({ ok: false });
    expect(b.take('peer')).toEqual({ ok: false });
  });

  it('opens a new window only once the window has fully passed', () => {
    const { clock, budget: b } = budget();
    expect(takeMany(b, 'peer', 25)).toBe(20);
    clock.advance(WINDOW_MS - 1);
    expect(b.take('peer')).toEqual({ ok: false });
    clock.advance(1);
    expect(b.take('peer').ok).toBe(true);
  });

  it('names the lines left out in the next line allowed, once', () => {
    const { clock, budget: b } = budget();
    expect(takeMany(b, 'peer', 20 + 7)).toBe(20);
    clock.advance(WINDOW_MS);
    expect(b.take('peer')).toEqual({ ok: true, note: ' (7 similar line(s) left out before this one)' });
    // Counted once: the next line has no note.
    expect(b.take('peer')).toEqual({ ok: true, note: '' });
  });

  it('carries the count over a window in which nothing was logged', () => {
    const { clock, budget: b } = budget();
    takeMany(b, 'peer', 23);
    clock.advance(5 * WINDOW_MS);
    expect(b.take('peer')).toEqual({ ok: true, note: ' (3 similar line(s) left out before this one)' });
  });

  it('counts a window from its first line, not on a fixed grid', () => {
    const { clock, budget: b } = budget(2, 1000);
    clock.advance(900);
    expect(takeMany(b, 'peer', 3)).toBe(2);
    // 1000 ms after the window's first line (not 100 ms later, at a round second).
    clock.advance(100);
    expect(b.take('peer').ok).toBe(false);
    clock.advance(899);
    expect(b.take('peer').ok).toBe(false);
    clock.advance(1);
    expect(b.take('peer')).toEqual({ ok: true, note: ' (3 similar line(s) left out before this one)' });
  });

  it('keeps a separate window per key', () => {
    const { budget: b } = budget(3, 1000);
    expect(takeMany(b, 'alice', 10)).toBe(3);
    expect(b.take('bob')).toEqual({ ok: true, note: '' });
    expect(takeMany(b, 'bob', 10)).toBe(2);
    expect(b.take('carol').ok).toBe(true);
  });

  it('honours a custom budget and window', () => {
    const { clock, budget: b } = budget(1, 10);
    expect(b.take('k').ok).toBe(true);
    expect(b.take('k').ok).toBe(false);
    clock.advance(10);
    expect(b.take('k')).toEqual({ ok: true, note: ' (1 similar line(s) left out before this one)' });
  });

  it('forget() drops a key: a fresh budget and no pending count', () => {
    const { budget: b } = budget(2, 1000);
    takeMany(b, 'alice', 5);
    takeMany(b, 'bob', 5);
    b.forget('alice');
    // Without waiting for the window: alice starts over, and the 3 left out are not reported.
    expect(b.take('alice')).toEqual({ ok: true, note: '' });
    expect(b.take('alice')).toEqual({ ok: true, note: '' });
    expect(b.take('alice')).toEqual({ ok: false });
    // Another key is untouched.
    expect(b.take('bob')).toEqual({ ok: false });
    // Forgetting a key that was never used is harmless.
    b.forget('nobody');
    expect(b.take('nobody').ok).toBe(true);
  });
});
