import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';

const START = Date.UTC(2026, 0, 1);

describe('FakeClock time', () => {
  it('starts at 2026-01-01 by default, or where told, and moves only on advance', () => {
    expect(new FakeClock().now()).toBe(START);
    const clock = new FakeClock(1000);
    expect(clock.now()).toBe(1000);
    expect(clock.now()).toBe(1000);
    clock.advance(250);
    expect(clock.now()).toBe(1250);
    clock.advance(0);
    expect(clock.now()).toBe(1250);
  });
});

describe('FakeClock timers', () => {
  it('fires timers in deadline order, not in the order they were set', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.after(300, () => fired.push('c'));
    clock.after(100, () => fired.push('a'));
    clock.after(200, () => fired.push('b'));
    clock.advance(1000);
    expect(fired).toEqual(['a', 'b', 'c']);
  });

  it('fires timers with the same deadline in the order they were set', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    for (let i = 0; i < 5; i++) clock.after(100, () => fired.push(i));
    clock.advance(100);
    expect(fired).toEqual([0, 1, 2, 3, 4]);
  });

  it('shows each timer now() at its own deadline, and the end of the advance afterwards', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    for (const ms of [50, 10, 30]) clock.after(ms, () => seen.push(clock.now()));
    clock.advance(100);
    expect(seen).toEqual([10, 30, 50]);
    expect(clock.now()).toBe(100);
  });

  it('fires a timer exactly at its deadline, not before', () => {
    const clock = new FakeClock(0);
    let fired = 0;
    clock.after(100, () => fired++);
    clock.advance(99);
    expect(fired).toBe(0);
    expect(clock.pending).toBe(1);
    clock.advance(1);
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
    clock.advance(1000);
    expect(fired).toBe(1);
  });

  it('treats a negative delay as zero', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    clock.after(-50, () => seen.push(clock.now()));
    clock.advance(0);
    expect(seen).toEqual([0]);
  });

  it('counts timers across several small advances as in one large one', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    clock.after(250, () => seen.push(clock.now()));
    clock.after(730, () => seen.push(clock.now()));
    for (let i = 0; i < 10; i++) clock.advance(100);
    expect(seen).toEqual([250, 730]);
  });
});

describe('FakeClock repeating timers', () => {
  it('fires an every() timer once per interval, each at its deadline', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    clock.every(100, () => seen.push(clock.now()));
    clock.advance(350);
    expect(seen).toEqual([100, 200, 300]);
    clock.advance(50);
    expect(seen).toEqual([100, 200, 300, 400]);
    expect(clock.pending).toBe(1);
  });

  it('interleaves repeating and one-shot timers by deadline', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.every(100, () => fired.push(`tick@${clock.now()}`));
    clock.after(150, () => fired.push(`once@${clock.now()}`));
    clock.after(200, () => fired.push(`late@${clock.now()}`));
    clock.advance(300);
    // At 200 the tick was set first, so it fires first.
    expect(fired).toEqual(['tick@100', 'once@150', 'tick@200', 'late@200', 'tick@300']);
  });

  it('never spins on an every(0) timer: it repeats at 1 ms', () => {
    const clock = new FakeClock(0);
    let fired = 0;
    clock.every(0, () => fired++);
    clock.advance(5);
    expect(fired).toBe(6); // at 0, 1, 2, 3, 4, 5
  });
});

describe('FakeClock cancel', () => {
  it('a cancelled timer never fires; cancelling twice or after it fired is harmless', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const cancelA = clock.after(100, () => fired.push('a'));
    const cancelB = clock.after(100, () => fired.push('b'));
    cancelA();
    cancelA();
    expect(clock.pending).toBe(1);
    clock.advance(100);
    expect(fired).toEqual(['b']);
    cancelB();
    expect(clock.pending).toBe(0);
  });

  it('stops a repeating timer, also from inside its own callback', () => {
    const clock = new FakeClock(0);
    let outside = 0;
    const cancelOutside = clock.every(10, () => outside++);
    let inside = 0;
    const cancelInside = clock.every(10, () => {
      if (++inside === 3) cancelInside();
    });
    clock.advance(25);
    cancelOutside();
    clock.advance(100);
    expect(outside).toBe(2);
    expect(inside).toBe(3);
    expect(clock.pending).toBe(0);
  });

  it('a timer cancelled by an earlier timer in the same advance does not fire', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const cancelLater = clock.after(200, () => fired.push('later'));
    clock.after(100, () => {
      fired.push('first');
      cancelLater();
    });
    clock.advance(300);
    expect(fired).toEqual(['first']);
  });
});

describe('FakeClock timers set by a firing timer', () => {
  it('fires them in the same advance when they fall due before its end, relative to the firing time', () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    clock.after(100, () => {
      seen.push(`outer@${clock.now()}`);
      clock.after(50, () => seen.push(`inner@${clock.now()}`));
      clock.after(0, () => seen.push(`now@${clock.now()}`));
    });
    clock.after(120, () => seen.push(`other@${clock.now()}`));
    clock.advance(200);
    expect(seen).toEqual(['outer@100', 'now@100', 'other@120', 'inner@150']);
  });

  it('leaves them for a later advance when they fall due after its end', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    clock.after(100, () => clock.after(150, () => seen.push(clock.now())));
    clock.advance(200);
    expect(seen).toEqual([]);
    expect(clock.pending).toBe(1);
    clock.advance(50);
    expect(seen).toEqual([250]);
  });

  it('runs a chain of re-arming one-shot timers, like a redial loop', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    const arm = (delay: number): void => {
      clock.after(delay, () => {
        seen.push(clock.now());
        if (delay < 800) arm(delay * 2);
      });
    };
    arm(100);
    clock.advance(10_000);
    expect(seen).toEqual([100, 300, 700, 1500]);
  });
});
