// Two timed checks on one connection that the tie-break needs (connections.ts): is an old
// connection still alive before a new one may compete with it, and when has the peer stopped
// using the loser so that closing it loses nothing.

import type { Clock } from '../clock/clock.js';
import type { QuicConnection } from '../quic/connection.js';
import { APP_DUPLICATE } from '../quic/errors.js';

/** A liveness probe waits four RTTs plus this margin, checked in this many steps, at most this long. */
const PROBE_MARGIN_MS = 250;
const PROBE_CHECKS = 5;
const PROBE_MAX_MS = 2000;
/** A duplicate is closed once quiet for four RTTs plus this margin (at most the quiet maximum), or after the drain maximum. */
const DRAIN_QUIET_MARGIN_MS = 1000;
const DRAIN_QUIET_MAX_MS = 3000;
const DRAIN_MAX_MS = 10_000;

type Checked = Pick<QuicConnection, 'packetsReceived' | 'rttMs' | 'ping' | 'isClosed' | 'close'>;

/**
 * Sends the connection an ack-eliciting packet and reports whether anything came back within
 * four RTTs plus a 250 ms margin (time for quiche's loss recovery to send the probe again on a
 * lossy path), at most 2 s.
 */
export function probeLink(conn: Checked, clock: Clock, done: (alive: boolean) => void): void {
  const before = conn.packetsReceived();
  const deadline = Math.min(PROBE_MAX_MS, PROBE_MARGIN_MS + 4 * (conn.rttMs() ?? PROBE_MARGIN_MS));
  conn.ping();
  let checks = 0;
  const check = (): void => {
    checks++;
    if (conn.isClosed) return done(false);
    if (conn.packetsReceived() > before) return done(true);
    if (checks >= PROBE_CHECKS) return done(false);
    clock.after(deadline / PROBE_CHECKS, check);
  };
  clock.after(deadline / PROBE_CHECKS, check);
}

/**
 * Closes the tie-break's loser once the peer has stopped using it. Both sides pick the same
 * loser, but each only when it reads the other's Hello on the winner, and under loss one side
 * may read it a PTO (a second or more) after the other: closing at once, or after a fixed time,
 * drops what the other side still sends on it, and what was sent before and is not yet
 * acknowledged. Our traffic already follows the winner; the loser is only read, and closed
 * after a quiet spell of 1 s + 4 RTT (at most 3 s) with nothing received, or after 10 s.
 */
export function drainDuplicate(conn: Checked, clock: Clock): void {
  const quietMs = Math.min(DRAIN_QUIET_MAX_MS, DRAIN_QUIET_MARGIN_MS + 4 * (conn.rttMs() ?? PROBE_MARGIN_MS));
  const giveUpAt = clock.now() + DRAIN_MAX_MS;
  let seen = conn.packetsReceived();
  const check = (): void => {
    if (conn.isClosed) return;
    const received = conn.packetsReceived();
    if (received === seen || clock.now() >= giveUpAt) return conn.close(APP_DUPLICATE, 'duplicate connection');
    seen = received;
    clock.after(quietMs, check);
  };
  clock.after(quietMs, check);
}
