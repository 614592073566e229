// One address family's routes as a path-compressed binary trie, modelled on wireguard-go's
// allowedips.go: the table's source of truth, updated in place per announcement. Unlike
// WireGuard, several peers may announce the same prefix; each node keeps all of them, best
// first, so a withdraw promotes the next best without a rescan.
//
// Nodes are integer ids into typed arrays (prefix words, length, children) rather than objects:
// rebuilding the lookup index walks every node, and at 10^5 routes that walk is dominated by
// cache misses when each node is a separate heap object. Per-packet lookups do not walk the
// trie at all; they search the intervals built from routedInside() (interval-build.ts).

import { type Family, type Prefix } from './addr.js';
import { bitOf, commonBits, maskWord, toWords, wordAt } from './addr-words.js';

export interface Announcement<P> {
  readonly peer: P;
  readonly key: string;
  metric: number;
}

export function isBetter<P>(a: Announcement<P>, b: Announcement<P>): boolean {
  if (a.metric !== b.metric) return a.metric < b.metric;
  return a.key < b.key;
}

/** The id no node has: an absent child, and the owner of addresses no route covers. */
export const NONE = 0;

/** Invariant: a node without announcements has exactly two children. */
export class PrefixTrie<P> {
  /** 32-bit words per address: 1 for IPv4, 4 for IPv6. */
  readonly words: number;
  readonly maxBits: number;
  /** Each node's prefix as raw words, `words` per node; bits past its length are zero. */
  addr: Int32Array;
  length: Uint8Array;
  /** [2 * id]: the child whose bit at the node's length is 0; [2 * id + 1]: the one with 1. */
  private child: Int32Array;
  private parent: Int32Array;
  /** Per node id, its routes best first; empty for branching nodes. */
  readonly announcements: Announcement<P>[][] = [[]];
  /** announcements[id][0].peer, kept in step by the table; undefined for NONE and branching nodes. */
  readonly winners: (P | undefined)[] = [undefined];
  /** The prefix each node stands for (frozen; the table hands out copies). */
  readonly prefixes: (Prefix | null)[] = [null];
  private root = NONE;
  /** Ids below this have been used; freed ones wait in `free`. */
  private used = 1;
  private readonly free: number[] = [];
  /** The address being inserted or looked up, as words. */
  private readonly scratch: Int32Array;

  constructor(private readonly family: Family) {
    this.words = family === 4 ? 1 : 4;
    this.maxBits = this.words * 32;
    this.scratch = new Int32Array(this.words);
    const capacity = 64;
    this.addr = new Int32Array(capacity * this.words);
    this.length = new Uint8Array(capacity);
    this.child = new Int32Array(capacity * 2);
    this.parent = new Int32Array(capacity);
  }

  clear(): void {
    this.root = NONE;
    this.used = 1;
    this.free.length = 0;
    this.announcements.length = 1;
    this.winners.length = 1;
    this.prefixes.length = 1;
  }

  /** The node for exactly `prefix` (a frozen copy the trie may keep), creating it if needed. */
  insert(prefix: Prefix): number {
    const a = this.scratch;
    toWords(prefix.bytes, a, 0);
    const length = prefix.length;
    let parent = NONE;
    let node = this.root;
    // Descend while the node's prefix covers the new one.
    while (node !== NONE && this.length[node]! <= length && this.matches(node, a, this.length[node]!)) {
      if (this.length[node] === length) return node;
      parent = node;
      node = this.child[2 * node + bitOf(a, 0, this.length[node]!)]!;
    }
    const created = this.create(a, length, prefix);
    if (node === NONE) {
      this.attach(parent, created);
      return created;
    }
    // `node` sits where the new prefix belongs but does not cover it: either the new prefix
    // covers `node` (new one goes above it) or they diverge (a branching node goes above both).
    const w = this.words;
    const shared = Math.min(length, this.length[node]!, commonBits(this.addr, node * w, a, 0, w));
    if (shared === length) {
      this.link(created, node);
      this.attach(parent, created);
      return created;
    }
    const branch = this.create(a, shared, null);
    this.link(branch, node);
    this.link(branch, created);
    this.attach(parent, branch);
    return created;
  }

  /** The node for exactly `prefix`, or NONE. */
  find(prefix: Prefix): number {
    const a = this.scratch;
    toWords(prefix.bytes, a, 0);
    let node = this.root;
    while (node !== NONE && this.length[node]! <= prefix.length) {
      if (!this.matches(node, a, this.length[node]!)) return NONE;
      if (this.length[node] === prefix.length) return node;
      node = this.child[2 * node + bitOf(a, 0, this.length[node]!)]!;
    }
    return NONE;
  }

  /** The most specific node with routes containing the address at buf[offset..], or NONE. */
  lookup(buf: Uint8Array, offset: number): number {
    const a = this.scratch;
    for (let w = 0; w < this.words; w++) a[w] = wordAt(buf, offset + w * 4);
    let best = NONE;
    let node = this.root;
    while (node !== NONE && this.matches(node, a, this.length[node]!)) {
      if (this.winners[node] !== undefined) best = node;
      if (this.length[node] === this.maxBits) break;
      node = this.child[2 * node + bitOf(a, 0, this.length[node]!)]!;
    }
    return best;
  }

  /** Removes `start` if it no longer carries routes, collapsing branching nodes left with one child. */
  prune(start: number): void {
    let node = start;
    while (node !== NONE && this.announcements[node]!.length === 0) {
      const zero = this.child[2 * node]!;
      const one = this.child[2 * node + 1]!;
      if (zero !== NONE && one !== NONE) return;
      const only = zero !== NONE ? zero : one;
      const parent = this.parent[node]!;
      this.replace(node, only);
      this.release(node);
      if (only !== NONE) return; // parent keeps the same number of children
      node = parent;
    }
  }

  /**
   * Ids of the nodes with routes inside `within` (all of them for null), in address order, each
   * before the more specific ones inside it.
   */
  routedInside(within: Prefix | null): number[] {
    let node = this.root;
    if (within !== null) {
      const a = this.scratch;
      toWords(within.bytes, a, 0);
      while (node !== NONE && this.length[node]! < within.length && this.matches(node, a, this.length[node]!)) {
        node = this.child[2 * node + bitOf(a, 0, this.length[node]!)]!;
      }
      // The first node at least as long: everything inside `within` is in its subtree, if it lies inside.
      if (node !== NONE && (this.length[node]! < within.length || !this.matches(node, a, within.length))) node = NONE;
    }
    const out: number[] = [];
    // A path holds at most maxBits + 1 nodes; the stack holds one pending sibling per level.
    const pending = new Int32Array(this.maxBits + 3);
    let top = 0;
    if (node !== NONE) pending[top++] = node;
    while (top > 0) {
      const next = pending[--top]!;
      if (this.winners[next] !== undefined) out.push(next);
      // The one-child below the zero-child on the stack, so the lower half comes out first.
      const one = this.child[2 * next + 1]!;
      const zero = this.child[2 * next]!;
      if (one !== NONE) pending[top++] = one;
      if (zero !== NONE) pending[top++] = zero;
    }
    return out;
  }

  /** The most specific node with routes whose prefix strictly contains `inner`, or NONE. */
  routedAbove(inner: Prefix): number {
    const a = this.scratch;
    toWords(inner.bytes, a, 0);
    let best = NONE;
    let node = this.root;
    while (node !== NONE && this.length[node]! < inner.length && this.matches(node, a, this.length[node]!)) {
      if (this.winners[node] !== undefined) best = node;
      node = this.child[2 * node + bitOf(a, 0, this.length[node]!)]!;
    }
    return best;
  }

  /** Whether the node's prefix covers the first `bits` bits of the address in `a`. */
  private matches(node: number, a: Int32Array, bits: number): boolean {
    const w = this.words;
    for (let i = 0; i < w; i++) {
      const mask = maskWord(bits, i);
      if (mask === 0) return true;
      if (((this.addr[node * w + i]! ^ a[i]!) & mask) !== 0) return false;
    }
    return true;
  }

  /** A new node for the first `length` bits of the address in `a`. */
  private create(a: Int32Array, length: number, prefix: Prefix | null): number {
    const id = this.free.pop() ?? this.used++;
    if (id * 2 + 1 >= this.child.length) this.grow();
    const w = this.words;
    for (let i = 0; i < w; i++) this.addr[id * w + i] = a[i]! & maskWord(length, i);
    this.length[id] = length;
    this.child[2 * id] = NONE;
    this.child[2 * id + 1] = NONE;
    this.parent[id] = NONE;
    const own = prefix ?? Object.freeze({ family: this.family, bytes: this.bytesOf(id), length });
    // Ids come in order or from the free list, so these arrays stay dense (no holes).
    if (id === this.announcements.length) {
      this.announcements.push([]);
      this.winners.push(undefined);
      this.prefixes.push(own);
    } else {
      this.announcements[id] = [];
      this.winners[id] = undefined;
      this.prefixes[id] = own;
    }
    return id;
  }

  private release(id: number): void {
    this.winners[id] = undefined;
    this.prefixes[id] = null;
    this.free.push(id);
  }

  private grow(): void {
    const capacity = this.length.length * 2;
    const grown = <T extends Int32Array | Uint8Array>(old: T, make: (n: number) => T, perNode: number): T => {
      const next = make(capacity * perNode);
      next.set(old);
      return next;
    };
    this.addr = grown(this.addr, (n) => new Int32Array(n), this.words);
    this.length = grown(this.length, (n) => new Uint8Array(n), 1);
    this.child = grown(this.child, (n) => new Int32Array(n), 2);
    this.parent = grown(this.parent, (n) => new Int32Array(n), 1);
  }

  private bytesOf(id: number): Uint8Array {
    const bytes = new Uint8Array(this.words * 4);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (this.addr[id * this.words + (i >> 2)]! >>> (24 - 8 * (i & 3))) & 0xff;
    return bytes;
  }

  /** Hangs `node` below `parent` on the side its bit at the parent's length says. */
  private link(parent: number, node: number): void {
    this.child[2 * parent + bitOf(this.addr, node * this.words, this.length[parent]!)] = node;
    this.parent[node] = parent;
  }

  private attach(parent: number, node: number): void {
    if (parent !== NONE) this.link(parent, node);
    else {
      this.root = node;
      this.parent[node] = NONE;
    }
  }

  private replace(node: number, by: number): void {
    const parent = this.parent[node]!;
    if (parent === NONE) this.root = by;
    else if (this.child[2 * parent] === node) this.child[2 * parent] = by;
    else this.child[2 * parent + 1] = by;
    if (by !== NONE) this.parent[by] = parent;
  }
}
