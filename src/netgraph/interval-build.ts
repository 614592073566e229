// Builds the sorted interval records that the lookup indexes search (interval-index.ts). Nested
// and adjacent prefixes cut the address space into elementary intervals, each owned by the most
// specific prefix covering it, or by no route.
//
// A build does not have to start over: given the previous records and the prefixes that gained
// their first route or lost their last one, it regenerates only those prefixes' address ranges
// from the trie and copies every other record as it was. A host route's change then costs one
// linear copy of the records plus a walk of one trie path, not a walk of the whole trie. The
// whole trie walk is mostly cache misses (node ids come in insertion order, the walk goes in
// address order): 10-20 ms at 10^5 routes against about 1 ms for the copy.

import { type Prefix, comparePrefixes, prefixCovers } from './addr.js';
import { BIAS, commonBits, lessWords, maskWord, toWords, windowAt } from './addr-words.js';
import { NONE } from './prefix-trie.js';

/** Widest first level: 2^16 + 1 bucket offsets (256 KiB) is plenty at 10^5 routes. */
const MAX_BUCKET_BITS = 16;
/**
 * Patching k changed prefixes costs one copy of the records plus their subtrees, so it beats the
 * whole-trie walk unless a good share of all routed prefixes changed (a bulk load).
 */
const MIN_PATCH_LIMIT = 1024;
const PATCH_SHARE = 1 / 4;

/** What a build reads from the trie. */
export interface IntervalSource {
  readonly words: number;
  readonly addr: Int32Array;
  readonly length: Uint8Array;
  /** Routed node ids inside the prefix (all for null), address order, outer before inner. */
  routedInside(within: Prefix | null): readonly number[];
  /** The most specific routed node strictly containing the prefix, or NONE. */
  routedAbove(inner: Prefix): number;
}

export interface Intervals {
  /** 32-bit words per address: 1 (IPv4) or 4 (IPv6). */
  readonly words: number;
  /**
   * One record of `words + 1` ints per interval: its start as biased words (ascending; the first
   * starts at address 0), then the trie node owning it (NONE: no route). Start and owner side by
   * side: a lookup reads one or two cache lines of this array, which at 10^5 routes no longer
   * fits in the core's own cache.
   */
  readonly records: Int32Array;
  readonly count: number;
  /** Leading bits every route shares (at most maxBits - 1): addresses outside match nothing. */
  readonly skip: number;
  /** Raw words of the prefix covering every route, and its mask. */
  readonly coverBase: Int32Array;
  readonly coverMask: Int32Array;
  /** First-level width: bucket h holds the addresses whose bits [skip, skip+bits) are h. */
  readonly bits: number;
  /** first[h]: the first interval starting in bucket h or later (first[2^bits]: past the cover). */
  readonly first: Int32Array;
}

/**
 * One family's lookup index, brought up to date on demand: `index` is null from a change of the
 * routed prefixes until the next refresh(), which patches the last build or starts over.
 */
export class FamilyIndex<I extends { readonly intervals: Intervals }> {
  index: I | null = null;
  private built: I | null = null;
  /** Prefixes whose routed state flipped since `built`; null once there are too many to patch. */
  private flipped: Prefix[] | null = [];
  private routed = 0;

  constructor(
    private readonly trie: IntervalSource,
    private readonly make: (intervals: Intervals) => I,
  ) {}

  /** `prefix` gained its first route (routed) or lost its last one. */
  flip(prefix: Prefix, routed: boolean): void {
    this.routed += routed ? 1 : -1;
    this.index = null;
    if (this.flipped === null) return;
    this.flipped.push(prefix);
    if (this.flipped.length > Math.max(MIN_PATCH_LIMIT, this.routed * PATCH_SHARE)) this.flipped = null;
  }

  refresh(): I {
    const previous = this.flipped === null ? null : (this.built?.intervals ?? null);
    const intervals = buildIntervals(this.trie, previous, this.flipped ?? []);
    this.flipped = [];
    return (this.index = this.built = this.make(intervals));
  }

  clear(): void {
    this.index = this.built = null;
    this.flipped = [];
    this.routed = 0;
  }
}

/**
 * The intervals for the trie as it is now. `previous` and `changed` (prefixes whose routed state
 * flipped since `previous` was built) let it patch instead of walking the whole trie.
 */
function buildIntervals(trie: IntervalSource, previous: Intervals | null, changed: readonly Prefix[]): Intervals {
  const out = new IntervalWriter(trie, (previous?.count ?? 0) + 64);
  if (previous === null) {
    out.regenerate(null, NONE);
    return finish(out);
  }
  const words = trie.words;
  const size = words + 1;
  const old = previous.records;
  const first = new Int32Array(words);
  const last = new Int32Array(words);
  let i = 0;
  for (const prefix of outermost(changed)) {
    firstAndLast(prefix, first, last);
    // Records before the range stay; those starting inside it are regenerated.
    const inside = firstAtOrAfter(old, size, i, previous.count, first, false);
    out.copy(old, i, inside);
    i = firstAtOrAfter(old, size, inside, previous.count, last, true);
    // Owner just past the range: the record starting there if any, else the one open at its end.
    const after = i < previous.count && isNext(last, old, i * size, words) ? i : i - 1;
    out.regenerate(prefix, old[after * size + words]!);
  }
  out.copy(old, i, previous.count);
  return finish(out);
}

/** The first record in [lo, hi) starting at or after `key` (strictly after if `after`). */
function firstAtOrAfter(records: Int32Array, size: number, lo: number, hi: number, key: Int32Array, after: boolean): number {
  const words = size - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const before = after ? !lessWords(key, 0, records, mid * size, words) : lessWords(records, mid * size, key, 0, words);
    if (before) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The changed prefixes that no other changed prefix contains, ascending. */
function outermost(changed: readonly Prefix[]): Prefix[] {
  const sorted = [...changed].sort(comparePrefixes);
  const out: Prefix[] = [];
  for (const p of sorted) if (out.length === 0 || !prefixCovers(out[out.length - 1]!, p)) out.push(p);
  return out;
}

/** Writes interval records in address order. */
class IntervalWriter {
  records: Int32Array;
  count = 0;
  readonly words: number;
  private readonly size: number;
  /** Open prefixes while regenerating, outermost first: last address and owner. */
  private readonly stackEnds: Int32Array;
  private readonly stackOwners: Int32Array;
  /** First address, then last address of the prefix at hand, biased. */
  private readonly range: Int32Array;

  constructor(
    private readonly trie: IntervalSource,
    capacity: number,
  ) {
    this.words = trie.words;
    this.size = this.words + 1;
    this.records = new Int32Array(capacity * this.size);
    const maxBits = this.words * 32;
    // Nested prefixes have distinct lengths, so at most maxBits + 1 are open, plus the bottom one.
    this.stackEnds = new Int32Array((maxBits + 2) * this.words);
    this.stackOwners = new Int32Array(maxBits + 2);
    this.range = new Int32Array(2 * this.words);
  }

  /**
   * Writes the intervals of `within` (the whole space for null) as the trie has them now, and
   * one owned by `after` at the address just past it. The routed prefix around `within` owns
   * whatever inside no routed prefix covers.
   */
  regenerate(within: Prefix | null, after: number): void {
    const { trie, words, stackEnds, stackOwners, range } = this;
    // The bottom of the stack stands for what is around `within`.
    if (within === null) {
      range.fill(BIAS, 0, words);
      range.fill(~BIAS, words);
    } else firstAndLast(within, range.subarray(0, words), range.subarray(words));
    for (let w = 0; w < words; w++) stackEnds[w] = range[words + w]!;
    stackOwners[0] = within === null ? NONE : trie.routedAbove(within);
    let depth = 1;
    this.emit(range, 0, stackOwners[0]!);
    const close = (): void => {
      depth--;
      // The address after the closing prefix, unless it ended at the top of the address space.
      const at = depth * words;
      let w = words - 1;
      while (w >= 0 && stackEnds[at + w] === ~BIAS) stackEnds[at + w--] = BIAS;
      if (w < 0) return;
      stackEnds[at + w]!++;
      this.emit(stackEnds, at, depth > 0 ? stackOwners[depth - 1]! : after);
    };
    const nodes = trie.routedInside(within);
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      const length = trie.length[node]!;
      for (let w = 0; w < words; w++) {
        const raw = trie.addr[node * words + w]!;
        range[w] = raw ^ BIAS;
        range[words + w] = (raw | ~maskWord(length, w)) ^ BIAS;
      }
      while (depth > 1 && lessWords(stackEnds, (depth - 1) * words, range, 0, words)) close();
      for (let w = 0; w < words; w++) stackEnds[depth * words + w] = range[words + w]!;
      stackOwners[depth++] = node;
      this.emit(range, 0, node);
    }
    while (depth > 0) close();
  }

  /** Appends records [from, to) of an earlier build, which are consistent among themselves. */
  copy(old: Int32Array, from: number, to: number): void {
    if (from >= to) return;
    const size = this.size;
    this.emit(old, from * size, old[from * size + this.words]!);
    this.reserve(to - from);
    this.records.set(old.subarray((from + 1) * size, to * size), this.count * size);
    this.count += to - from - 1;
  }

  /** Appends a record; one starting where the last one does replaces it (the later, deeper one wins). */
  emit(src: Int32Array, at: number, owner: number): void {
    const { words, size } = this;
    if (this.count > 0 && !lessWords(this.records, (this.count - 1) * size, src, at, words)) this.count--;
    if (this.count > 0 && this.records[this.count * size - 1] === owner) return;
    this.reserve(1);
    const to = this.count * size;
    for (let w = 0; w < words; w++) this.records[to + w] = src[at + w]!;
    this.records[to + words] = owner;
    this.count++;
  }

  private reserve(more: number): void {
    const needed = (this.count + more) * this.size;
    if (needed <= this.records.length) return;
    const grown = new Int32Array(Math.max(needed, this.records.length * 2));
    grown.set(this.records.subarray(0, this.count * this.size));
    this.records = grown;
  }
}

/** Adds the cover and the first level to the written records. */
function finish(out: IntervalWriter): Intervals {
  const { words, count } = out;
  const size = words + 1;
  // Spare room left from growing is dropped only when it is worth the copy.
  const records = out.records.length > count * size * 1.25 ? out.records.slice(0, count * size) : out.records;
  const maxBits = words * 32;
  // The cover runs from the first routed interval's start to the end of the last routed one.
  let low = 0;
  while (low < count && records[low * size + words] === NONE) low++;
  let high = count - 1;
  while (high > low && records[high * size + words] === NONE) high--;
  let skip = 0;
  const lowest = new Int32Array(words);
  const highest = new Int32Array(words).fill(~BIAS);
  if (low < count) {
    for (let w = 0; w < words; w++) lowest[w] = records[low * size + w]!;
    if (high + 1 < count) {
      // The address before the next interval's start.
      for (let w = 0; w < words; w++) highest[w] = records[(high + 1) * size + w]!;
      let w = words - 1;
      while (highest[w] === BIAS) highest[w--] = ~BIAS;
      highest[w]!--;
    }
    skip = Math.min(maxBits - 1, commonBits(lowest, 0, highest, 0, words));
  }
  const coverMask = new Int32Array(words);
  const coverBase = new Int32Array(words);
  for (let w = 0; w < words; w++) {
    coverMask[w] = maskWord(skip, w);
    coverBase[w] = (lowest[w]! ^ BIAS) & coverMask[w]!;
  }
  const bits = Math.max(1, Math.min(MAX_BUCKET_BITS, maxBits - skip, Math.ceil(Math.log2(count)) + 1));
  const buckets = 2 ** bits;
  const first = new Int32Array(buckets + 1);
  // Records below the cover come first, then those inside it by bucket, then those above it.
  for (let w = 0; w < words; w++) {
    lowest[w] = coverBase[w]! ^ BIAS;
    highest[w] = (coverBase[w]! | ~coverMask[w]!) ^ BIAS;
  }
  let k = firstAtOrAfter(records, size, 0, count, lowest, false);
  const end = firstAtOrAfter(records, size, k, count, highest, true);
  const word = skip >>> 5;
  const shift = 32 - bits;
  let h = 0;
  for (; k < end; k++) {
    const at = k * size;
    const hi = records[at + word]! ^ BIAS;
    const lo = word + 1 < words ? records[at + word + 1]! ^ BIAS : 0;
    const bucket = windowAt(hi, lo, skip & 31) >>> shift;
    while (h <= bucket) first[h++] = k;
  }
  while (h <= buckets) first[h++] = end;
  return { words, records, count, skip, coverBase, coverMask, bits, first };
}

/** A prefix's first and last address as biased words. */
function firstAndLast(prefix: Prefix, first: Int32Array, last: Int32Array): void {
  toWords(prefix.bytes, first, 0);
  for (let w = 0; w < first.length; w++) {
    last[w] = (first[w]! | ~maskWord(prefix.length, w)) ^ BIAS;
    first[w] = first[w]! ^ BIAS;
  }
}

/** Whether the biased address at b[bt..] is the one right after `a`. */
function isNext(a: Int32Array, b: Int32Array, bt: number, words: number): boolean {
  let carry = true;
  for (let w = words - 1; w >= 0; w--) {
    const expected = carry ? (a[w] === ~BIAS ? BIAS : a[w]! + 1) : a[w]!;
    if (b[bt + w] !== expected) return false;
    carry = carry && a[w] === ~BIAS;
  }
  return !carry;
}
