// The live sessions of one daemon, at most one per peer fingerprint (PROTOCOL.md section 1).
// Owned by a Daemon, never global, so tests can run several daemons in one process.

import { survives, type DialerFacts } from './tiebreak.js';

export interface RegisteredSession {
  readonly peerFingerprint: string;
  /** Known once both Hellos were exchanged. */
  readonly dialer: DialerFacts;
}

export interface OfferResult<S> {
  /** The session that now carries this peer's traffic and routes. */
  winner: S;
  /** The session the caller must close as a duplicate, if any. */
  loser: S | null;
}

export class PeerRegistry<S extends RegisteredSession> {
  private readonly active = new Map<string, S>();

  /**
   * Offers a session whose Hello exchange has finished. A second session for the same peer
   * triggers the nonce tie-break; the caller closes the loser. The loser's routes must not be
   * touched: routes belong to the peer, and only the winner applies announcements.
   */
  offer(session: S): OfferResult<S> {
    const current = this.active.get(session.peerFingerprint);
    if (!current || current === session) {
      this.active.set(session.peerFingerprint, session);
      return { winner: session, loser: null };
    }
    if (survives(session.dialer, current.dialer)) {
      this.active.set(session.peerFingerprint, session);
      return { winner: session, loser: current };
    }
    return { winner: current, loser: session };
  }

  /** Forgets a session. True if it was the active one, i.e. its peer is now disconnected. */
  remove(session: S): boolean {
    if (this.active.get(session.peerFingerprint) !== session) return false;
    this.active.delete(session.peerFingerprint);
    return true;
  }

  get(fingerprint: string): S | undefined {
    return this.active.get(fingerprint);
  }

  isActive(session: S): boolean {
    return this.active.get(session.peerFingerprint) === session;
  }

  get size(): number {
    return this.active.size;
  }

  sessions(): IterableIterator<S> {
    return this.active.values();
  }
}
