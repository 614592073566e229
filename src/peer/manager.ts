// Keeps one configured peer connected: dial, and after a failure or a lost session redial forever
// on the backoff schedule. The manager only decides *when*; the connection code dials, verifies
// and owns the session, and tells the manager what happened.

import type { Cancel, Clock } from '../clock/clock.js';
import type { Logger } from '../log/logger.js';
import { Backoff, type BackoffOptions } from './backoff.js';

export interface PeerManagerDeps {
  dial(): void;
  /** Whether the peer currently has a live session in either direction. */
  isConnected(): boolean;
  clock: Clock;
  logger: Logger;
  backoff?: BackoffOptions;
  /** A session that lasted this long resets the backoff. */
  healthyAfterMs?: number;
}

export type ManagerState = 'dialing' | 'connected' | 'waiting' | 'stopped';

/**
 * An original VibePN node closes a second connection by a tie-break that is a fresh lottery each
 * attempt (it compares a random number with whichever nonce it stored last): losing says nothing
 * about the next try, so it is retried soon, a bounded number of times before the backoff applies.
 */
const LOTTERY_RETRY_MS = 250;
const LOTTERY_RETRIES = 20;

export class PeerManager {
  state: ManagerState = 'waiting';
  private cancelTimer: Cancel | null = null;
  private readonly backoff: Backoff;
  private connectedAt = 0;
  private lotteryRetries = 0;
  /** Last reason the peer was not connected, for `vpnctl peers`. */
  lastError: string | null = null;

  constructor(
    readonly name: string,
    private readonly deps: PeerManagerDeps,
  ) {
    this.backoff = new Backoff(deps.backoff);
  }

  start(): void {
    this.dialNow();
  }

  stop(): void {
    this.state = 'stopped';
    this.clearTimer();
  }

  /** Something changed that may make the peer reachable now (our addresses): dial without waiting out the backoff. */
  retryNow(): void {
    // A dial in flight already tries the new conditions.
    if (this.state === 'stopped' || this.state === 'dialing' || this.deps.isConnected()) return;
    this.backoff.reset();
    this.clearTimer();
    this.dialNow();
  }

  /** A session with this peer became active (dialed by us or by them). */
  connected(): void {
    if (this.state === 'stopped') return;
    this.clearTimer();
    this.state = 'connected';
    this.connectedAt = this.deps.clock.now();
    this.lastError = null;
    this.lotteryRetries = 0;
  }

  /** The peer closed our dial as the loser of its own tie-break, which is a lottery per attempt. */
  dialLostLottery(reason: string): void {
    if (this.state === 'stopped') return;
    if (this.deps.isConnected() || this.lotteryRetries >= LOTTERY_RETRIES) return this.dialFailed(reason);
    this.lotteryRetries++;
    this.lastError = reason;
    this.clearTimer();
    this.state = 'waiting';
    this.cancelTimer = this.deps.clock.after(LOTTERY_RETRY_MS, () => this.dialNow());
  }

  /** Our dial failed before a session existed (DNS, timeout, handshake, refused trust). */
  dialFailed(reason: string): void {
    if (this.state === 'stopped') return;
    this.lastError = reason;
    if (this.deps.isConnected()) {
      // Lost a duplicate-connection tie-break to the peer's own dial: nothing to repair.
      this.state = 'connected';
      return;
    }
    this.schedule(reason);
  }

  /** The active session ended. */
  disconnected(reason: string): void {
    if (this.state === 'stopped') return;
    this.lastError = reason;
    if (this.deps.isConnected()) return;
    if (this.state === 'connected' && this.deps.clock.now() - this.connectedAt >= (this.deps.healthyAfterMs ?? 10_000)) {
      this.backoff.reset();
    }
    this.schedule(reason);
  }

  private schedule(reason: string): void {
    this.clearTimer();
    const delay = this.backoff.next();
    this.state = 'waiting';
    this.deps.logger.debug(`${this.name}: ${reason}; redialing in ${(delay / 1000).toFixed(1)}s`);
    this.cancelTimer = this.deps.clock.after(delay, () => this.dialNow());
  }

  private dialNow(): void {
    this.cancelTimer = null;
    if (this.state === 'stopped') return;
    if (this.deps.isConnected()) {
      this.state = 'connected';
      return;
    }
    this.state = 'dialing';
    this.deps.dial();
  }

  private clearTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }
}
