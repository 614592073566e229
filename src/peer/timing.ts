// How long things take between peers. One value per daemon, so tests can run with short timings
// (and a FakeClock) while production keeps PROTOCOL.md's 10 s keepalive and 30 s liveness.

import type { BackoffOptions } from './backoff.js';

export interface DaemonTiming {
  keepaliveMs: number;
  deadAfterMs: number;
  /** How often liveness is checked. */
  tickMs: number;
  /** QUIC idle timeout; longer than deadAfterMs so the protocol's own rule decides. */
  idleTimeoutMs: number;
  /**
   * A dial not established by then is abandoned and retried on the backoff schedule. Without it a
   * dead peer would hold each attempt until the idle timeout, far beyond the backoff's 1 s start.
   */
  handshakeTimeoutMs: number;
  backoff: BackoffOptions;
  /** A session that lasted this long resets the backoff. */
  healthyAfterMs: number;
}

export const DEFAULT_TIMING: DaemonTiming = {
  keepaliveMs: 10_000,
  deadAfterMs: 30_000,
  tickMs: 1000,
  idleTimeoutMs: 45_000,
  handshakeTimeoutMs: 5000,
  backoff: {},
  healthyAfterMs: 10_000,
};
