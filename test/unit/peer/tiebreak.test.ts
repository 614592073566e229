import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Backoff } from '../../../src/peer/backoff.js';
import { Peer, type Link } from '../../../src/peer/peer.js';
import type { Session } from '../../../src/peer/session.js';
import type { QuicConnection } from '../../../src/quic/connection.js';
import { randomNonce, survives, type DialerFacts } from '../../../src/peer/tiebreak.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);

/** A link whose session finished its Hello exchange with these dialer facts. */
function link(peer: Peer, dialer: DialerFacts): Link {
  const session = { dialer, state: 'open' } as unknown as Session;
  return { conn: {} as QuicConnection, peer, session, control: null, relayed: false };
}

describe('nonce tie-break', () => {
  it('keeps the connection whose dialer sent the lower nonce', () => {
    expect(survives({ dialerNonce: 5n, dialerFingerprint: FP_B }, { dialerNonce: 9n, dialerFingerprint: FP_A })).toBe(true);
    expect(survives({ dialerNonce: 9n, dialerFingerprint: FP_A }, { dialerNonce: 5n, dialerFingerprint: FP_B })).toBe(false);
  });

  it('breaks equal nonces by the dialer with the lower fingerprint', () => {
    expect(survives({ dialerNonce: 7n, dialerFingerprint: FP_A }, { dialerNonce: 7n, dialerFingerprint: FP_B })).toBe(true);
    expect(survives({ dialerNonce: 7n, dialerFingerprint: FP_B }, { dialerNonce: 7n, dialerFingerprint: FP_A })).toBe(false);
  });

  it('gives both ends the same survivor for random simultaneous dials', () => {
    for (let i = 0; i < 1000; i++) {
      const nonceA = i % 10 === 0 ? 42n : randomNonce(randomBytes);
      const nonceB = i % 10 === 0 ? 42n : randomNonce(randomBytes);
      // Node A sees: its own outbound (dialer A) and an inbound from B (dialer B). Node B mirrors.
      const connAB = { dialerNonce: nonceA, dialerFingerprint: FP_A };
      const connBA = { dialerNonce: nonceB, dialerFingerprint: FP_B };
      const bOnA = new Peer(null, 'b', FP_B);
      const aOnB = new Peer(null, 'a', FP_A);
      // The two ends see the Hellos in opposite orders.
      bOnA.offer(link(bOnA, connAB));
      bOnA.offer(link(bOnA, connBA));
      aOnB.offer(link(aOnB, connBA));
      aOnB.offer(link(aOnB, connAB));
      expect(bOnA.active!.session!.dialer).toBe(aOnB.active!.session!.dialer);
    }
  });
});

describe('Peer.offer', () => {
  it('reports the loser for the caller to close and keeps the winner active', () => {
    const peer = new Peer(null, 'b', FP_B);
    const first = link(peer, { dialerNonce: 10n, dialerFingerprint: FP_A });
    const second = link(peer, { dialerNonce: 3n, dialerFingerprint: FP_B });
    expect(peer.offer(first)).toEqual({ winner: first, loser: null });
    expect(peer.offer(first)).toEqual({ winner: first, loser: null });
    expect(peer.offer(second)).toEqual({ winner: second, loser: first });
    expect(peer.active).toBe(second);
    expect(peer.connected).toBe(true);
  });

  it('rejects a newcomer that loses against the active session', () => {
    const peer = new Peer(null, 'b', FP_B);
    const first = link(peer, { dialerNonce: 1n, dialerFingerprint: FP_A });
    const later = link(peer, { dialerNonce: 2n, dialerFingerprint: FP_B });
    peer.offer(first);
    expect(peer.offer(later)).toEqual({ winner: first, loser: later });
    expect(peer.active).toBe(first);
  });

  it('names a successor among its other links, preferring one past Hello', () => {
    const peer = new Peer(null, 'b', FP_B);
    const waiting: Link = { ...link(peer, { dialerNonce: 1n, dialerFingerprint: FP_A }), session: { state: 'awaiting-hello' } as unknown as Session };
    const closed: Link = { ...link(peer, { dialerNonce: 1n, dialerFingerprint: FP_A }), session: { state: 'closed' } as unknown as Session };
    const open = link(peer, { dialerNonce: 2n, dialerFingerprint: FP_A });
    peer.links.add(closed);
    expect(peer.successor()).toBeUndefined();
    peer.links.add(waiting);
    expect(peer.successor()).toBe(waiting);
    peer.links.add(open);
    expect(peer.successor()).toBe(open);
  });
});

describe('Backoff', () => {
  it('doubles from about 1 s to a 30 s cap and resets', () => {
    const backoff = new Backoff({ random: () => 0.5 });
    const delays = Array.from({ length: 8 }, () => backoff.next());
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    backoff.reset();
    expect(backoff.next()).toBe(1000);
  });

  it('keeps jittered delays within bounds', () => {
    const backoff = new Backoff();
    for (let i = 0; i < 200; i++) {
      const d = backoff.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(30_000);
    }
    const low = new Backoff({ random: () => 0 }).next();
    const high = new Backoff({ random: () => 0.999999 }).next();
    expect(low).toBe(800);
    expect(high).toBeGreaterThan(1190);
  });
});
