import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Backoff } from '../../../src/peer/backoff.js';
import { PeerRegistry, type RegisteredSession } from '../../../src/peer/registry.js';
import { randomNonce, survives } from '../../../src/peer/tiebreak.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);

function session(peer: string, dialerNonce: bigint, dialerFingerprint: string): RegisteredSession {
  return { peerFingerprint: peer, dialer: { dialerNonce, dialerFingerprint } };
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
      const onA = new PeerRegistry<RegisteredSession>();
      const onB = new PeerRegistry<RegisteredSession>();
      const aOut = { peerFingerprint: FP_B, dialer: connAB };
      const aIn = { peerFingerprint: FP_B, dialer: connBA };
      const bOut = { peerFingerprint: FP_A, dialer: connBA };
      const bIn = { peerFingerprint: FP_A, dialer: connAB };
      // The two ends see the Hellos in opposite orders.
      onA.offer(aOut);
      onA.offer(aIn);
      onB.offer(bOut);
      onB.offer(bIn);
      const survivorOnA = onA.get(FP_B)!.dialer;
      const survivorOnB = onB.get(FP_A)!.dialer;
      expect(survivorOnA).toBe(survivorOnB);
    }
  });
});

describe('PeerRegistry', () => {
  it('reports the loser for the caller to close and keeps the winner active', () => {
    const registry = new PeerRegistry<RegisteredSession>();
    const first = session(FP_B, 10n, FP_A);
    const second = session(FP_B, 3n, FP_B);
    expect(registry.offer(first)).toEqual({ winner: first, loser: null });
    expect(registry.offer(second)).toEqual({ winner: second, loser: first });
    expect(registry.isActive(second)).toBe(true);
    // Removing the loser does not disconnect the peer.
    expect(registry.remove(first)).toBe(false);
    expect(registry.get(FP_B)).toBe(second);
    expect(registry.remove(second)).toBe(true);
    expect(registry.get(FP_B)).toBeUndefined();
  });

  it('rejects a newcomer that loses against the active session', () => {
    const registry = new PeerRegistry<RegisteredSession>();
    const first = session(FP_B, 1n, FP_A);
    const later = session(FP_B, 2n, FP_B);
    registry.offer(first);
    expect(registry.offer(later)).toEqual({ winner: first, loser: later });
    expect(registry.size).toBe(1);
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
