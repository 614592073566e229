// One peer's routes, for removePeer and for the receive path's source check (routesTo: does any
// route of this peer contain the address, winning or not). Walking the trie for that costs a
// scan of every announcement on the path, and a prefix many peers announce (a default route, a
// shared /8) makes that list long; asking the peer's own ranges instead costs one search in a
// few words however many others announce the same prefix.

import type { Prefix } from './addr.js';
import * as addrWords from './addr-words.js';

// Read once into module constants: vitest's module transform turns every use of an imported
// binding into a property read on the imported module, which costs the hot path there.
const { BIAS, lessWords, maskWord, wordAt } = addrWords;

export class PeerRoutes {
  /** Ids of the IPv4 and IPv6 trie nodes this peer has an announcement on. */
  readonly nodes4 = new Set<number>();
  readonly nodes6 = new Set<number>();
  /**
   * The peer's outermost IPv4 prefixes (disjoint, ascending) as [first, last] address pairs of
   * biased words; null until the next check after a change rebuilds it. Nested ones add nothing.
   */
  private cover4: Int32Array | null = null;
  /** The same for IPv6, eight words per prefix (first address, last address). */
  private cover6: Int32Array | null = null;

  /** Call after adding or removing a node (not after a metric change: the ranges stay). */
  changed(): void {
    this.cover4 = null;
    this.cover6 = null;
  }

  /** Whether one of the peer's IPv4 prefixes contains addr[0..4). Hot path: no allocation. */
  contains4(addr: Uint8Array, prefixes: readonly (Prefix | null)[]): boolean {
    const cover = this.cover4 ?? (this.cover4 = buildCover(this.nodes4, prefixes, 1));
    const key = wordAt(addr, 0) ^ BIAS;
    // Last range starting at or before the address; the ranges are disjoint, so only it can hold it.
    let lo = 0;
    let hi = cover.length >>> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cover[mid * 2]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && key <= cover[lo * 2 - 1]!;
  }

  /** Whether one of the peer's IPv6 prefixes contains addr[0..16). Hot path: no allocation. */
  contains6(addr: Uint8Array, prefixes: readonly (Prefix | null)[]): boolean {
    const cover = this.cover6 ?? (this.cover6 = buildCover(this.nodes6, prefixes, 4));
    const k0 = wordAt(addr, 0) ^ BIAS;
    const k1 = wordAt(addr, 4) ^ BIAS;
    const k2 = wordAt(addr, 8) ^ BIAS;
    const k3 = wordAt(addr, 12) ^ BIAS;
    let lo = 0;
    let hi = cover.length >>> 3;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (atOrBefore(cover, mid * 8, k0, k1, k2, k3)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return false;
    // key <= last address of that range, i.e. the last address is not before the key.
    const j = lo * 8 - 4;
    const e0 = cover[j]!;
    const e1 = cover[j + 1]!;
    const e2 = cover[j + 2]!;
    return e0 !== k0 ? e0 > k0 : e1 !== k1 ? e1 > k1 : e2 !== k2 ? e2 > k2 : cover[j + 3]! >= k3;
  }
}

/** The outermost of the given nodes' prefixes as [first, last] biased-word ranges, ascending. */
function buildCover(nodes: ReadonlySet<number>, prefixes: readonly (Prefix | null)[], words: number): Int32Array {
  const sorted = [...nodes].map((id) => prefixes[id]!).sort((a, b) => compareBytes(a.bytes, b.bytes) || a.length - b.length);
  const cover = new Int32Array(sorted.length * 2 * words);
  let count = 0;
  for (const p of sorted) {
    const at = count * 2 * words;
    for (let w = 0; w < words; w++) {
      const raw = wordAt(p.bytes, w * 4);
      cover[at + w] = raw ^ BIAS;
      cover[at + words + w] = (raw | ~maskWord(p.length, w)) ^ BIAS;
    }
    // Sorted by first address then length, and prefixes either nest or are disjoint: one that
    // starts at or before the previous kept one's last address lies inside it.
    if (count > 0 && !lessWords(cover, at - words, cover, at, words)) continue;
    count++;
  }
  return cover.slice(0, count * 2 * words);
}

function atOrBefore(words: Int32Array, j: number, k0: number, k1: number, k2: number, k3: number): boolean {
  const s0 = words[j]!;
  const s1 = words[j + 1]!;
  const s2 = words[j + 2]!;
  return s0 !== k0 ? s0 < k0 : s1 !== k1 ? s1 < k1 : s2 !== k2 ? s2 < k2 : words[j + 3]! <= k3;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
