// PROTOCOL.md section 4, "Duplicate connections": when two nodes dial each other at once, both
// ends must keep the same connection without talking about it. Each connection is judged by the
// nonce its *dialer* sent in Hello; lower wins, ties go to the dialer with the lower fingerprint.
// Both ends know both facts for both connections, so they reach the same answer.

export interface DialerFacts {
  /** Nonce from the Hello sent by the side that dialed this connection. */
  dialerNonce: bigint;
  /** Fingerprint of the side that dialed this connection. */
  dialerFingerprint: string;
}

/** True when connection `a` should survive over connection `b`. */
export function survives(a: DialerFacts, b: DialerFacts): boolean {
  if (a.dialerNonce !== b.dialerNonce) return a.dialerNonce < b.dialerNonce;
  return a.dialerFingerprint < b.dialerFingerprint;
}

/** A fresh random u64 for Hello. */
export function randomNonce(randomBytes: (n: number) => Uint8Array): bigint {
  const bytes = randomBytes(8);
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}
