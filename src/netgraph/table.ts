// The route table of one network: which peer gets a packet for a given destination address.
// Modelled on wireguard-go's allowedips.go: one path-compressed binary trie per address family,
// so a lookup walks at most 33 (IPv4) or 129 (IPv6) nodes however many routes there are, and
// allocates nothing. Unlike WireGuard, several peers may announce the same prefix; each trie node
// keeps all of them, best first, so a withdraw promotes the next best without a rescan. The
// receive path's source check asks the sending peer's own ranges instead (peer-routes.ts).
//
// The table stores the peer itself (any value P, e.g. the daemon's Peer object), so a lookup
// hands the forwarder its destination in one step; `key` gives each peer the stable text
// (its fingerprint) that orders equal-metric routes the same way on every node.

import { MAX_METRIC } from '../control/messages.js';
import { type Family, type Prefix, comparePrefixes, formatPrefix, maskBytes, prefixProblem } from './addr.js';
import { PeerRoutes } from './peer-routes.js';

export interface Route<P = string> {
  readonly prefix: Prefix;
  readonly peer: P;
  readonly metric: number;
}

interface Announcement<P> {
  readonly peer: P;
  readonly key: string;
  metric: number;
}

class TrieNode<P> {
  /** Masked network address; all bits past `length` are zero. */
  readonly prefix: Prefix;
  /** prefix.bytes and prefix.length, one pointer hop closer for the lookup loop. */
  readonly bits: Uint8Array;
  readonly length: number;
  parent: TrieNode<P> | null = null;
  zero: TrieNode<P> | null = null;
  one: TrieNode<P> | null = null;
  /** Routes for exactly this prefix, best first. Empty for pure branching nodes. */
  readonly announcements: Announcement<P>[] = [];
  /** announcements[0].peer, cached so the hot path reads one field. */
  winner: P | undefined = undefined;

  constructor(prefix: Prefix) {
    this.prefix = prefix;
    this.bits = prefix.bytes;
    this.length = prefix.length;
  }

  childFor(addr: Uint8Array): TrieNode<P> | null {
    return bitAt(addr, this.prefix.length) === 0 ? this.zero : this.one;
  }

  setChildFor(addr: Uint8Array, child: TrieNode<P> | null): void {
    if (bitAt(addr, this.prefix.length) === 0) this.zero = child;
    else this.one = child;
    if (child) child.parent = this;
  }
}

function bitAt(addr: Uint8Array, index: number): number {
  return (addr[index >> 3]! >> (7 - (index & 7))) & 1;
}

/** Number of leading bits `a` and `b` share, at most `limit`. */
function commonBits(a: Uint8Array, b: Uint8Array, limit: number): number {
  let bits = 0;
  for (let i = 0; i < a.length && bits < limit; i++) {
    const diff = a[i]! ^ b[i]!;
    if (diff === 0) {
      bits += 8;
      continue;
    }
    bits += Math.clz32(diff) - 24;
    break;
  }
  return Math.min(bits, limit);
}

/**
 * Whether `addr` matches `prefix`, checking only from byte `fromBit >> 3` on: the trie walk has
 * already compared everything above the parent's length, so re-comparing it would make IPv6
 * lookups cost depth x 16 byte compares instead of roughly 16.
 */
function matchesFrom(bytes: Uint8Array, length: number, buf: Uint8Array, offset: number, fromBit: number): boolean {
  const full = length >> 3;
  for (let i = fromBit >> 3; i < full; i++) if (buf[offset + i] !== bytes[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  return ((buf[offset + full]! ^ bytes[full]!) & (0xff << (8 - rest)) & 0xff) === 0;
}

function isBetter<P>(a: Announcement<P>, b: Announcement<P>): boolean {
  if (a.metric !== b.metric) return a.metric < b.metric;
  return a.key < b.key;
}

/** One family's trie. Invariant: a node without announcements has exactly two children. */
class PrefixTrie<P> {
  private root: TrieNode<P> | null = null;

  constructor(private readonly maxBits: number) {}

  clear(): void {
    this.root = null;
  }

  /** The node for exactly `prefix`, creating it (and a branching node if needed). */
  insertNode(prefix: Prefix): TrieNode<P> {
    const addr = prefix.bytes;
    const length = prefix.length;
    let parent: TrieNode<P> | null = null;
    let node = this.root;
    // Descend while the node's prefix covers the new one.
    while (node && node.prefix.length <= length && commonBits(node.prefix.bytes, addr, node.prefix.length) >= node.prefix.length) {
      if (node.prefix.length === length) return node;
      parent = node;
      node = node.childFor(addr);
    }
    const created = new TrieNode<P>(prefix);
    if (!node) {
      this.attach(parent, addr, created);
      return created;
    }
    // `node` sits where the new prefix belongs but does not cover it: either the new prefix
    // covers `node` (new one goes above it) or they diverge (a branching node goes above both).
    const shared = commonBits(node.prefix.bytes, addr, Math.min(length, node.prefix.length));
    if (shared === length) {
      created.setChildFor(node.prefix.bytes, node);
      this.attach(parent, addr, created);
      return created;
    }
    const branch = new TrieNode<P>({ family: prefix.family, bytes: maskBytes(addr, shared), length: shared });
    branch.setChildFor(node.prefix.bytes, node);
    branch.setChildFor(addr, created);
    this.attach(parent, addr, branch);
    return created;
  }

  private attach(parent: TrieNode<P> | null, addr: Uint8Array, node: TrieNode<P>): void {
    if (parent) parent.setChildFor(addr, node);
    else {
      this.root = node;
      node.parent = null;
    }
  }

  findNode(prefix: Prefix): TrieNode<P> | null {
    let node = this.root;
    while (node && node.prefix.length <= prefix.length) {
      if (!matchesFrom(node.bits, node.length, prefix.bytes, 0, 0)) return null;
      if (node.prefix.length === prefix.length) return node;
      node = node.childFor(prefix.bytes);
    }
    return null;
  }

  /** Removes `node` if it no longer carries routes, collapsing branching nodes left with one child. */
  prune(start: TrieNode<P>): void {
    let node: TrieNode<P> | null = start;
    while (node && node.announcements.length === 0) {
      if (node.zero && node.one) return;
      const only: TrieNode<P> | null = node.zero ?? node.one;
      const parent: TrieNode<P> | null = node.parent;
      this.replace(node, only);
      if (only) return; // parent keeps the same number of children
      node = parent;
    }
  }

  private replace(node: TrieNode<P>, by: TrieNode<P> | null): void {
    const parent = node.parent;
    if (!parent) {
      this.root = by;
      if (by) by.parent = null;
    } else if (parent.zero === node) {
      parent.zero = by;
      if (by) by.parent = parent;
    } else {
      parent.one = by;
      if (by) by.parent = parent;
    }
    node.parent = null;
  }

  /**
   * The most specific node with routes that contains the address at buf[offset..]. Hot path: no
   * allocation. Taking an offset lets the forwarder look up straight from the packet header.
   */
  lookupNode(buf: Uint8Array, offset: number): TrieNode<P> | null {
    let best: TrieNode<P> | null = null;
    let node = this.root;
    let checkedBits = 0;
    while (node) {
      if (!matchesFrom(node.bits, node.length, buf, offset, checkedBits)) break;
      if (node.winner !== undefined) best = node;
      checkedBits = node.length;
      if (checkedBits === this.maxBits) break;
      const bit = (buf[offset + (checkedBits >> 3)]! >> (7 - (checkedBits & 7))) & 1;
      node = bit === 0 ? node.zero : node.one;
    }
    return best;
  }
}

export class RouteTable<P = string> {
  private readonly v4 = new PrefixTrie<P>(32);
  private readonly v6 = new PrefixTrie<P>(128);
  /** Each peer's nodes, so removePeer touches only that peer's routes and routesTo asks only them. */
  private readonly byPeer = new Map<P, PeerRoutes<TrieNode<P>>>();
  private count = 0;

  /** `key` names a peer in a stable way (its fingerprint); it breaks ties between equal metrics. */
  constructor(private readonly key: (peer: P) => string = String) {}

  get size(): number {
    return this.count;
  }

  /** Adds or updates the (prefix, peer) route. Returns whether anything changed. */
  add(prefix: Prefix, peer: P, metric: number): boolean {
    checkPrefix(prefix);
    const key = peer === undefined || peer === null ? '' : this.key(peer);
    if (typeof key !== 'string' || key === '') throw new TypeError('RouteTable.add: peer must be a non-empty fingerprint (its key was empty)');
    if (!Number.isInteger(metric) || metric < 0 || metric > MAX_METRIC) {
      throw new RangeError(`RouteTable.add: metric ${metric} for ${formatPrefix(prefix)} must be an integer 0..${MAX_METRIC}`);
    }
    const node = this.trie(prefix.family).insertNode(ownPrefix(prefix));
    const list = node.announcements;
    const index = list.findIndex((a) => a.peer === peer);
    if (index >= 0) {
      if (list[index]!.metric === metric) return false;
      list.splice(index, 1);
    } else {
      this.count++;
      let routes = this.byPeer.get(peer);
      if (!routes) this.byPeer.set(peer, (routes = new PeerRoutes()));
      routes.nodes.add(node);
      routes.changed();
    }
    const entry: Announcement<P> = { peer, key, metric };
    let at = 0;
    while (at < list.length && isBetter(list[at]!, entry)) at++;
    list.splice(at, 0, entry);
    node.winner = list[0]!.peer;
    return true;
  }

  /** Removes the (prefix, peer) route. Returns whether it existed. */
  withdraw(prefix: Prefix, peer: P): boolean {
    checkPrefix(prefix);
    const trie = this.trie(prefix.family);
    const node = trie.findNode(prefix);
    if (!node || !this.removeAnnouncement(node, peer)) return false;
    const routes = this.byPeer.get(peer);
    if (routes) {
      routes.nodes.delete(node);
      routes.changed();
      if (routes.nodes.size === 0) this.byPeer.delete(peer);
    }
    trie.prune(node);
    return true;
  }

  /** Removes every route of `peer`; returns how many (wireguard-go's RemoveByPeer). */
  removePeer(peer: P): number {
    const routes = this.byPeer.get(peer);
    if (!routes) return 0;
    this.byPeer.delete(peer);
    let removed = 0;
    for (const node of routes.nodes) {
      if (!this.removeAnnouncement(node, peer)) continue;
      removed++;
      this.trie(node.prefix.family).prune(node);
    }
    return removed;
  }

  /** The prefixes `peer` currently has routes for, in routes() order. */
  peerPrefixes(peer: P): Prefix[] {
    const routes = this.byPeer.get(peer);
    if (!routes) return [];
    return [...routes.nodes].map((n) => copyPrefix(n.prefix)).sort(comparePrefixes);
  }

  /** Every prefix that has at least one route, in routes() order. */
  prefixes(): Prefix[] {
    const seen = new Set<TrieNode<P>>();
    for (const routes of this.byPeer.values()) for (const node of routes.nodes) seen.add(node);
    return [...seen].map((n) => copyPrefix(n.prefix)).sort(comparePrefixes);
  }

  /** The peer for a destination address (4 or 16 bytes), or undefined. Per-packet hot path. */
  lookup(addr: Uint8Array): P | undefined {
    if (addr.length === 4) return this.lookupAt(addr, 0, 4);
    if (addr.length === 16) return this.lookupAt(addr, 0, 6);
    return undefined;
  }

  /**
   * lookup() for the address at buf[offset..offset+4 or 16), e.g. the destination field of an
   * IP header (offset 16 for IPv4, 24 for IPv6), without a subarray per packet.
   */
  lookupAt(buf: Uint8Array, offset: number, family: Family): P | undefined {
    if (offset < 0 || offset + (family === 4 ? 4 : 16) > buf.length) return undefined;
    const node = (family === 4 ? this.v4 : this.v6).lookupNode(buf, offset);
    return node === null ? undefined : node.winner;
  }

  /**
   * Whether some route of `peer` contains `addr` (4 or 16 bytes), winning or not: the receive
   * path's source check, so a peer may send from anything it routes even where another peer has
   * a more specific route. Per-packet hot path.
   */
  routesTo(addr: Uint8Array, peer: P): boolean {
    const routes = this.byPeer.get(peer);
    if (routes === undefined) return false;
    if (addr.length === 4) return routes.contains4(addr);
    if (addr.length === 16) return routes.contains6(addr);
    return false;
  }

  /** The winning route for `addr`, for diagnostics and tests. */
  lookupRoute(addr: Uint8Array): Route<P> | undefined {
    const trie = addr.length === 4 ? this.v4 : addr.length === 16 ? this.v6 : null;
    const node = trie?.lookupNode(addr, 0);
    const best = node?.announcements[0];
    if (!node || !best) return undefined;
    return { prefix: copyPrefix(node.prefix), peer: best.peer, metric: best.metric };
  }

  /** Every route, sorted by family, prefix address, prefix length, metric, peer key. */
  routes(): Route<P>[] {
    const out: Array<Route<P> & { key: string }> = [];
    const seen = new Set<TrieNode<P>>();
    for (const routes of this.byPeer.values()) {
      for (const node of routes.nodes) {
        if (seen.has(node)) continue;
        seen.add(node);
        for (const a of node.announcements) out.push({ prefix: copyPrefix(node.prefix), peer: a.peer, key: a.key, metric: a.metric });
      }
    }
    out.sort((a, b) => comparePrefixes(a.prefix, b.prefix) || a.metric - b.metric || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out.map(({ prefix, peer, metric }) => ({ prefix, peer, metric }));
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.byPeer.clear();
    this.count = 0;
  }

  private trie(family: Family): PrefixTrie<P> {
    return family === 4 ? this.v4 : this.v6;
  }

  private removeAnnouncement(node: TrieNode<P>, peer: P): boolean {
    const list = node.announcements;
    const index = list.findIndex((a) => a.peer === peer);
    if (index < 0) return false;
    list.splice(index, 1);
    node.winner = list[0]?.peer;
    this.count--;
    return true;
  }
}

/** Refuses prefixes the trie cannot hold correctly; callers get canonical ones from parseCidr. */
function checkPrefix(prefix: Prefix): void {
  const problem = prefixProblem(prefix);
  // A wrong byte count is a type error (not a prefix at all); the rest are range errors.
  if (problem !== null) throw new (problem.includes('address bytes') ? TypeError : RangeError)(`RouteTable: ${problem}`);
}

/** The table keeps its own copy so a caller reusing its buffer cannot move a route. */
function ownPrefix(prefix: Prefix): Prefix {
  return Object.freeze(copyPrefix(prefix));
}

function copyPrefix(prefix: Prefix): Prefix {
  return { family: prefix.family, bytes: new Uint8Array(prefix.bytes), length: prefix.length };
}
