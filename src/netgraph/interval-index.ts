// Longest-prefix match as a search in sorted typed arrays, for the per-packet lookup: find the
// elementary interval (interval-build.ts) that holds the address. A trie walk chases up to 33
// (IPv4) or 129 (IPv6) nodes; here a direct-indexed first level on the bits just below the
// prefix that covers every route narrows the search to a few intervals, so a lookup reads the
// first level and one or two cache lines of interval records, and allocates nothing.
//
// Intervals name their owner by trie node id and the table reads the winner from the trie, so a
// new best peer on an existing prefix needs no new index.

import * as addrWords from './addr-words.js';
import type { Intervals } from './interval-build.js';
import * as prefixTrie from './prefix-trie.js';

// Read once into module constants: vitest's module transform turns every use of an imported
// binding into a property read on the imported module, which made IPv6 lookups twice as slow
// under `vitest bench` as under node (where the binding is free).
const { BIAS, windowAt, wordAt } = addrWords;
const { NONE } = prefixTrie;

export class LookupIndex4 {
  /** [start, owner] per interval. */
  private readonly records: Int32Array;
  private readonly first: Int32Array;
  private readonly coverMask: number;
  private readonly coverBase: number;
  private readonly skip: number;
  private readonly shift: number;

  constructor(readonly intervals: Intervals) {
    const t = intervals;
    this.records = t.records;
    this.first = t.first;
    this.coverMask = t.coverMask[0]!;
    this.coverBase = t.coverBase[0]!;
    this.skip = t.skip;
    this.shift = 32 - t.bits;
  }

  /** The trie node whose route wins for the IPv4 address at buf[at..at+4), or NONE. */
  owner(buf: Uint8Array, at: number): number {
    const a = wordAt(buf, at);
    if ((a & this.coverMask) !== this.coverBase) return NONE;
    const h = (a << this.skip) >>> this.shift;
    const records = this.records;
    const key = a ^ BIAS;
    let lo = this.first[h]!;
    let hi = this.first[h + 1]!;
    // The last interval starting at or before the address: one in this bucket, else the one
    // open when the bucket began (lo - 1; interval 0 starts at address 0, so it exists).
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (records[mid * 2]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return records[lo * 2 - 1]!;
  }
}

export class LookupIndex6 {
  /** [start word 0..3, owner] per interval. */
  private readonly records: Int32Array;
  private readonly first: Int32Array;
  private readonly coverMask: Int32Array;
  private readonly coverBase: Int32Array;
  /** The first-level bits start `offset` bits into address word `word`. */
  private readonly word: number;
  private readonly offset: number;
  private readonly shift: number;
  /** The address as words plus a zero word, so the first-level window may read past word 3. */
  private readonly scratch = new Int32Array(5);

  constructor(readonly intervals: Intervals) {
    const t = intervals;
    this.records = t.records;
    this.first = t.first;
    this.coverMask = t.coverMask;
    this.coverBase = t.coverBase;
    this.word = t.skip >>> 5;
    this.offset = t.skip & 31;
    this.shift = 32 - t.bits;
  }

  /** The trie node whose route wins for the IPv6 address at buf[at..at+16), or NONE. */
  owner(buf: Uint8Array, at: number): number {
    const a0 = wordAt(buf, at);
    const a1 = wordAt(buf, at + 4);
    const a2 = wordAt(buf, at + 8);
    const a3 = wordAt(buf, at + 12);
    const mask = this.coverMask;
    const base = this.coverBase;
    if ((a0 & mask[0]!) !== base[0] || (a1 & mask[1]!) !== base[1] || (a2 & mask[2]!) !== base[2] || (a3 & mask[3]!) !== base[3]) {
      return NONE;
    }
    const s = this.scratch;
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
    const h = windowAt(s[this.word]!, s[this.word + 1]!, this.offset) >>> this.shift;
    const k0 = a0 ^ BIAS;
    const k1 = a1 ^ BIAS;
    const k2 = a2 ^ BIAS;
    const k3 = a3 ^ BIAS;
    const records = this.records;
    let lo = this.first[h]!;
    let hi = this.first[h + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const j = mid * 5;
      const s0 = records[j]!;
      const s1 = records[j + 1]!;
      const s2 = records[j + 2]!;
      const atOrBefore = s0 !== k0 ? s0 < k0 : s1 !== k1 ? s1 < k1 : s2 !== k2 ? s2 < k2 : records[j + 3]! <= k3;
      if (atOrBefore) lo = mid + 1;
      else hi = mid;
    }
    return records[lo * 5 - 1]!;
  }
}
