import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { PeerManager } from '../../../src/peer/manager.js';

/** A manager with jitter off (random 0.5 = no spread): redials at 1 s, 2 s, 4 s, … 30 s. */
function setup(options: { healthyAfterMs?: number } = {}) {
  const clock = new FakeClock();
  const start = clock.now();
  const { logger, lines } = memoryLogger('peer/manager');
  const dials: number[] = [];
  let connected = false;
  const manager = new PeerManager('bob', {
    dial: () => dials.push(clock.now() - start),
    isConnected: () => connected,
    clock,
    logger,
    backoff: { random: () => 0.5 },
    ...(options.healthyAfterMs !== undefined ? { healthyAfterMs: options.healthyAfterMs } : {}),
  });
  return {
    clock,
    manager,
    dials,
    lines,
    /** ms since the test started. */
    elapsed: () => clock.now() - start,
    setConnected: (value: boolean) => {
      connected = value;
    },
  };
}

describe('PeerManager dialing', () => {
  it('dials at start', () => {
    const { manager, dials } = setup();
    expect(manager.state).toBe('waiting');
    manager.start();
    expect(dials).toEqual([0]);
    expect(manager.state).toBe('dialing');
  });

  it('does not dial at start when a session is already up (the peer dialed in first)', () => {
    const { manager, dials, setConnected } = setup();
    setConnected(true);
    manager.start();
    expect(dials).toEqual([]);
    expect(manager.state).toBe('connected');
  });

  it('redials after failed dials on the doubling backoff schedule, capped at 30 s', () => {
    const { manager, dials, clock } = setup();
    manager.start();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const before = dials.length;
      manager.dialFailed('timeout');
      expect(manager.state).toBe('waiting');
      let waited = 0;
      while (dials.length === before) {
        clock.advance(100);
        waited += 100;
        if (waited > 60_000) throw new Error('no redial');
      }
      delays.push(waited);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(manager.state).toBe('dialing');
  });

  it('fires the redial exactly at its deadline', () => {
    const { manager, dials, clock } = setup();
    manager.start();
    manager.dialFailed('refused');
    clock.advance(999);
    expect(dials).toEqual([0]);
    clock.advance(1);
    expect(dials).toEqual([0, 1000]);
  });

  it('redials after the session is lost', () => {
    const { manager, dials, clock, elapsed } = setup();
    manager.start();
    manager.connected();
    clock.advance(3000);
    manager.disconnected('liveness timeout');
    expect(manager.state).toBe('waiting');
    clock.advance(1000);
    expect(dials).toEqual([0, elapsed()]);
  });

  it('logs each scheduled redial at debug with the reason and the delay', () => {
    const { manager, lines } = setup();
    manager.start();
    manager.dialFailed('dns lookup failed');
    expect(lines.at(-1)).toMatch(/DEBUG .*bob: dns lookup failed; redialing in 1\.0s/);
  });

  it('keeps one redial timer however many failures are reported', () => {
    const { manager, dials, clock } = setup();
    manager.start();
    manager.dialFailed('a');
    manager.disconnected('b');
    expect(clock.pending).toBe(1);
    clock.advance(60_000);
    // The second report rescheduled (2 s); one dial came of it, then nothing until told again.
    expect(dials).toEqual([0, 2000]);
  });
});

describe('PeerManager while connected', () => {
  it('cancels a pending redial when a session comes up, and dials nothing while connected', () => {
    const { manager, dials, clock, setConnected } = setup();
    manager.start();
    manager.dialFailed('timeout');
    setConnected(true);
    manager.connected();
    expect(manager.state).toBe('connected');
    expect(clock.pending).toBe(0);
    clock.advance(120_000);
    expect(dials).toEqual([0]);
  });

  it('does not dial when the timer fires while a session is up', () => {
    const { manager, dials, clock, setConnected } = setup();
    manager.start();
    manager.dialFailed('timeout');
    setConnected(true);
    clock.advance(1000);
    expect(dials).toEqual([0]);
    expect(manager.state).toBe('connected');
  });

  it('treats a failed dial while another session is up as a lost tie-break: no redial', () => {
    const { manager, dials, clock, setConnected } = setup();
    manager.start();
    setConnected(true);
    manager.connected();
    manager.dialFailed('duplicate connection');
    expect(manager.state).toBe('connected');
    expect(manager.lastError).toBe('duplicate connection');
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(dials).toEqual([0]);
  });

  it('does not redial when one session ends but another is still up', () => {
    const { manager, clock, setConnected } = setup();
    manager.start();
    setConnected(true);
    manager.connected();
    manager.disconnected('duplicate closed');
    expect(clock.pending).toBe(0);
    expect(manager.state).toBe('connected');
  });
});

describe('PeerManager backoff reset', () => {
  /** Fails three dials (1 s, 2 s, 4 s), so the next delay would be 8 s. */
  function afterThreeFailures(options: { healthyAfterMs?: number } = {}) {
    const s = setup(options);
    s.manager.start();
    for (const wait of [1000, 2000, 4000]) {
      s.manager.dialFailed('timeout');
      s.clock.advance(wait);
    }
    expect(s.dials).toHaveLength(4);
    return s;
  }

  function nextDelay(s: ReturnType<typeof setup>, reason: string): number {
    const before = s.dials.length;
    const from = s.elapsed();
    s.manager.disconnected(reason);
    for (let waited = 0; waited <= 60_000; waited += 100) {
      if (s.dials.length > before) return s.dials.at(-1)! - from;
      s.clock.advance(100);
    }
    throw new Error('no redial');
  }

  it('starts again from 1 s after a session that lasted healthyAfterMs (default 10 s)', () => {
    const s = afterThreeFailures();
    s.manager.connected();
    s.clock.advance(10_000);
    expect(nextDelay(s, 'peer closed')).toBe(1000);
  });

  it('keeps backing off after a session shorter than healthyAfterMs', () => {
    const s = afterThreeFailures();
    s.manager.connected();
    s.clock.advance(9_999);
    expect(nextDelay(s, 'peer closed')).toBe(8000);
  });

  it('honours a custom healthyAfterMs', () => {
    const s = afterThreeFailures({ healthyAfterMs: 500 });
    s.manager.connected();
    s.clock.advance(500);
    expect(nextDelay(s, 'peer closed')).toBe(1000);
    const t = afterThreeFailures({ healthyAfterMs: 60_000 });
    t.manager.connected();
    t.clock.advance(30_000);
    expect(nextDelay(t, 'peer closed')).toBe(8000);
  });

  it('does not reset the backoff on a failed dial, however long since the last one', () => {
    const s = afterThreeFailures();
    s.clock.advance(120_000);
    const before = s.dials.length;
    const from = s.elapsed();
    s.manager.dialFailed('timeout');
    s.clock.advance(7999);
    expect(s.dials).toHaveLength(before);
    s.clock.advance(1);
    expect(s.dials.at(-1)! - from).toBe(8000);
  });
});

describe('PeerManager stop and lastError', () => {
  it('stop cancels the pending redial and ignores every later event', () => {
    const { manager, dials, clock } = setup();
    manager.start();
    manager.dialFailed('timeout');
    manager.stop();
    expect(manager.state).toBe('stopped');
    expect(clock.pending).toBe(0);
    manager.dialFailed('again');
    manager.disconnected('again');
    manager.connected();
    clock.advance(120_000);
    expect(dials).toEqual([0]);
    expect(manager.state).toBe('stopped');
    expect(manager.lastError).toBe('timeout');
  });

  it('records the last reason the peer was not connected and clears it on connect', () => {
    const { manager } = setup();
    expect(manager.lastError).toBeNull();
    manager.start();
    manager.dialFailed('handshake timed out');
    expect(manager.lastError).toBe('handshake timed out');
    manager.connected();
    expect(manager.lastError).toBeNull();
    manager.disconnected('liveness timeout');
    expect(manager.lastError).toBe('liveness timeout');
  });
});

describe('PeerManager and an original node’s tie-break lottery', () => {
  it('redials 250 ms after each lost lottery without growing the backoff, 20 times, then backs off', () => {
    const { manager, dials, clock } = setup();
    manager.start();
    for (let i = 0; i < 20; i++) {
      manager.dialLostLottery('no error (duplicate connection (loser))');
      expect(manager.state).toBe('waiting');
      clock.advance(250);
    }
    expect(dials).toEqual(Array.from({ length: 21 }, (_, i) => i * 250));
    expect(manager.lastError).toBe('no error (duplicate connection (loser))');
    // The 21st in a row goes on the ordinary schedule: 1 s.
    manager.dialLostLottery('no error (duplicate connection (loser))');
    clock.advance(999);
    expect(dials).toHaveLength(21);
    clock.advance(1);
    expect(dials).toHaveLength(22);
  });

  it('starts counting again after a session, and does nothing while connected or stopped', () => {
    const { manager, dials, clock, setConnected } = setup();
    manager.start();
    for (let i = 0; i < 20; i++) {
      manager.dialLostLottery('lost');
      clock.advance(250);
    }
    manager.connected();
    setConnected(true);
    manager.dialLostLottery('lost');
    expect(manager.state).toBe('connected');
    setConnected(false);
    manager.disconnected('gone');
    clock.advance(1000);
    const before = dials.length;
    manager.dialLostLottery('lost');
    clock.advance(250);
    expect(dials).toHaveLength(before + 1);
    manager.stop();
    manager.dialLostLottery('lost');
    clock.advance(60_000);
    expect(dials).toHaveLength(before + 1);
  });
});
