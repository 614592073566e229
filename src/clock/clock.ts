// Time as a dependency. Everything that waits or measures time in the daemon (liveness,
// keepalives, redial backoff, handshake deadlines) asks a Clock, so tests can run whole daemons
// on a FakeClock and step through a 30 s liveness timeout without waiting for it. The QUIC
// stack's own loss-recovery timers stay on real time: they are quiche's, not ours.

/** Cancels a timer; calling it again, or after the timer fired, does nothing. */
export type Cancel = () => void;

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once after `ms`. Never keeps the process alive on its own. */
  after(ms: number, fn: () => void): Cancel;
  /** Runs `fn` every `ms` until cancelled. Never keeps the process alive on its own. */
  every(ms: number, fn: () => void): Cancel;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};
