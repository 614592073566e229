// Small helpers shared by the codec, route-table and fuzz tests.

import { parseCidr, parseIp, type Prefix } from '../../src/netgraph/addr.js';

/** mulberry32: small, seeded, good enough to drive fuzzers and random tests reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Cuts `bytes` at the given offsets (ascending) into views: chunk boundaries for decoder tests. */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of cuts) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** A parsed address for tests that build typed values by hand; throws on a typo. */
export function ipBytes(text: string): Uint8Array {
  const bytes = parseIp(text);
  if (!bytes) throw new Error(`bad test address ${text}`);
  return bytes;
}

/** A parsed prefix for tests; throws on a typo. */
export function cidrOf(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}
