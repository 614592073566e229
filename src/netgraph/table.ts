// The route table of one network: which peer gets a packet for a given destination address.
// Routes live in one path-compressed binary trie per address family (prefix-trie.ts, modelled on
// wireguard-go's allowedips.go), where several peers may announce the same prefix, best first.
// The per-packet paths do not walk it. Lookups search a flattened index (interval-index.ts),
// brought up to date by the first lookup after a prefix gained its first or lost its last route
// (interval-build.ts), so a batch of announcements costs one update; the receive path's source
// check asks the sending peer's own ranges (peer-routes.ts).
//
// The table stores the peer itself (any value P, e.g. the daemon's Peer object), so a lookup
// hands the forwarder its destination in one step; `key` gives each peer the stable text
// (its fingerprint) that orders equal-metric routes the same way on every node.

import { MAX_METRIC } from '../control/messages.js';
import { type Family, type Prefix, comparePrefixes, formatPrefix, prefixProblem } from './addr.js';
import { FamilyIndex } from './interval-build.js';
import { LookupIndex4, LookupIndex6 } from './interval-index.js';
import { PeerRoutes } from './peer-routes.js';
import { type Announcement, NONE, PrefixTrie, isBetter } from './prefix-trie.js';

export interface Route<P = string> {
  readonly prefix: Prefix;
  readonly peer: P;
  readonly metric: number;
}

export class RouteTable<P = string> {
  private readonly v4 = new PrefixTrie<P>(4);
  private readonly v6 = new PrefixTrie<P>(6);
  /** Each peer's nodes, so removePeer touches only that peer's routes and routesTo asks only them. */
  private readonly byPeer = new Map<P, PeerRoutes>();
  private count = 0;
  private readonly index4 = new FamilyIndex(this.v4, (intervals) => new LookupIndex4(intervals));
  private readonly index6 = new FamilyIndex(this.v6, (intervals) => new LookupIndex6(intervals));

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
    const trie = this.trie(prefix.family);
    const node = trie.insert(ownPrefix(prefix));
    const list = trie.announcements[node]!;
    const index = list.findIndex((a) => a.peer === peer);
    if (index >= 0) {
      if (list[index]!.metric === metric) return false;
      list.splice(index, 1);
    } else {
      this.count++;
      let routes = this.byPeer.get(peer);
      if (!routes) this.byPeer.set(peer, (routes = new PeerRoutes()));
      (prefix.family === 4 ? routes.nodes4 : routes.nodes6).add(node);
      routes.changed();
    }
    const entry: Announcement<P> = { peer, key, metric };
    let at = 0;
    while (at < list.length && isBetter(list[at]!, entry)) at++;
    list.splice(at, 0, entry);
    this.setWinner(trie, node);
    return true;
  }

  /** Removes the (prefix, peer) route. Returns whether it existed. */
  withdraw(prefix: Prefix, peer: P): boolean {
    checkPrefix(prefix);
    const trie = this.trie(prefix.family);
    const node = trie.find(prefix);
    if (node === NONE || !this.removeAnnouncement(trie, node, peer)) return false;
    const routes = this.byPeer.get(peer);
    if (routes) {
      (prefix.family === 4 ? routes.nodes4 : routes.nodes6).delete(node);
      routes.changed();
      if (routes.nodes4.size + routes.nodes6.size === 0) this.byPeer.delete(peer);
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
    for (const [trie, nodes] of [
      [this.v4, routes.nodes4],
      [this.v6, routes.nodes6],
    ] as const) {
      for (const node of nodes) {
        if (!this.removeAnnouncement(trie, node, peer)) continue;
        removed++;
        trie.prune(node);
      }
    }
    return removed;
  }

  /** The prefixes `peer` currently has routes for, in routes() order. */
  peerPrefixes(peer: P): Prefix[] {
    const routes = this.byPeer.get(peer);
    if (!routes) return [];
    const out = [...routes.nodes4].map((id) => copyPrefix(this.v4.prefixes[id]!));
    for (const id of routes.nodes6) out.push(copyPrefix(this.v6.prefixes[id]!));
    return out.sort(comparePrefixes);
  }

  /** Every prefix that has at least one route, in routes() order. */
  prefixes(): Prefix[] {
    const out: Prefix[] = [];
    // The trie's address order, outer before inner, is routes() order (comparePrefixes) already.
    for (const trie of [this.v4, this.v6]) for (const id of trie.routedInside(null)) out.push(copyPrefix(trie.prefixes[id]!));
    return out;
  }

  /** The peer for a destination address (4 or 16 bytes), or undefined. Per-packet hot path. */
  lookup(addr: Uint8Array): P | undefined {
    if (addr.length === 4) return this.lookupAt(addr, 0, 4);
    if (addr.length === 16) return this.lookupAt(addr, 0, 6);
    return undefined;
  }

  /**
   * lookup() for the address at buf[offset..offset+4 or 16), e.g. the destination field of an
   * IP header (offset 16 for IPv4, 24 for IPv6), without a subarray per packet. The first call
   * after routed prefixes came or went updates that family's index; the others allocate nothing.
   */
  lookupAt(buf: Uint8Array, offset: number, family: Family): P | undefined {
    if (family === 4) {
      if (offset < 0 || offset + 4 > buf.length) return undefined;
      return this.v4.winners[(this.index4.index ?? this.index4.refresh()).owner(buf, offset)];
    }
    if (offset < 0 || offset + 16 > buf.length) return undefined;
    return this.v6.winners[(this.index6.index ?? this.index6.refresh()).owner(buf, offset)];
  }

  /**
   * Whether some route of `peer` contains `addr` (4 or 16 bytes), winning or not: the receive
   * path's source check, so a peer may send from anything it routes even where another peer has
   * a more specific route. Per-packet hot path.
   */
  routesTo(addr: Uint8Array, peer: P): boolean {
    const routes = this.byPeer.get(peer);
    if (routes === undefined) return false;
    if (addr.length === 4) return routes.contains4(addr, this.v4.prefixes);
    if (addr.length === 16) return routes.contains6(addr, this.v6.prefixes);
    return false;
  }

  /** The winning route for `addr`, for diagnostics and tests. */
  lookupRoute(addr: Uint8Array): Route<P> | undefined {
    const trie = addr.length === 4 ? this.v4 : addr.length === 16 ? this.v6 : null;
    if (!trie) return undefined;
    const node = trie.lookup(addr, 0);
    const best = trie.announcements[node]![0];
    if (node === NONE || !best) return undefined;
    return { prefix: copyPrefix(trie.prefixes[node]!), peer: best.peer, metric: best.metric };
  }

  /** Every route, sorted by family, prefix address, prefix length, metric, peer key. */
  routes(): Route<P>[] {
    const out: Route<P>[] = [];
    // Address order from the trie, and each node's list is best first: metric, then key.
    for (const trie of [this.v4, this.v6]) {
      for (const id of trie.routedInside(null)) {
        const prefix = trie.prefixes[id]!;
        for (const a of trie.announcements[id]!) out.push({ prefix: copyPrefix(prefix), peer: a.peer, metric: a.metric });
      }
    }
    return out;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.byPeer.clear();
    this.count = 0;
    this.index4.clear();
    this.index6.clear();
  }

  private trie(family: Family): PrefixTrie<P> {
    return family === 4 ? this.v4 : this.v6;
  }

  private removeAnnouncement(trie: PrefixTrie<P>, node: number, peer: P): boolean {
    const list = trie.announcements[node]!;
    const index = list.findIndex((a) => a.peer === peer);
    if (index < 0) return false;
    list.splice(index, 1);
    this.setWinner(trie, node);
    this.count--;
    return true;
  }

  /**
   * Keeps the trie's winner per node in step. The indexes name nodes, not peers, so only a prefix
   * gaining its first route or losing its last outdates them.
   */
  private setWinner(trie: PrefixTrie<P>, node: number): void {
    const winner = trie.announcements[node]![0]?.peer;
    const before = trie.winners[node];
    if (winner === before) return;
    trie.winners[node] = winner;
    if ((winner === undefined) === (before === undefined)) return;
    (trie === this.v4 ? this.index4 : this.index6).flip(trie.prefixes[node]!, winner !== undefined);
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
