// All route tables of this node, one per network. Networks never share routes: the same
// prefix may mean different hosts in two networks, so every lookup names its network.

import type { Prefix } from './addr.js';
import { RouteTable } from './table.js';

export interface NetworkRoute<P = string> {
  network: string;
  prefix: Prefix;
  peer: P;
  metric: number;
}

export interface RemovedRoute {
  network: string;
  prefix: Prefix;
}

export class NetGraph<P = string> {
  private readonly tables = new Map<string, RouteTable<P>>();

  /** `key` as in RouteTable: a peer's stable name (its fingerprint). */
  constructor(private readonly key: (peer: P) => string = String) {}

  table(network: string): RouteTable<P> | undefined {
    return this.tables.get(network);
  }

  ensure(network: string): RouteTable<P> {
    let table = this.tables.get(network);
    if (!table) this.tables.set(network, (table = new RouteTable<P>(this.key)));
    return table;
  }

  /** Forgets a network and all its routes (e.g. removed on reload). Returns whether it existed. */
  drop(network: string): boolean {
    return this.tables.delete(network);
  }

  networks(): string[] {
    return [...this.tables.keys()].sort();
  }

  /** Removes every route of `peer` in every network (disconnect, Goodbye, liveness timeout). */
  removePeer(peer: P): RemovedRoute[] {
    const removed: RemovedRoute[] = [];
    for (const network of this.networks()) {
      const table = this.tables.get(network)!;
      const prefixes = table.peerPrefixes(peer);
      if (prefixes.length === 0) continue;
      table.removePeer(peer);
      for (const prefix of prefixes) removed.push({ network, prefix });
    }
    return removed;
  }

  /** Every route of every network, by network name then RouteTable.routes() order (`vpnctl routes`). */
  routes(): NetworkRoute<P>[] {
    const out: NetworkRoute<P>[] = [];
    for (const network of this.networks()) {
      for (const r of this.tables.get(network)!.routes()) out.push({ network, prefix: r.prefix, peer: r.peer, metric: r.metric });
    }
    return out;
  }

  /** Route count for metrics; 0 for a network without a table. */
  routeCount(network: string): number {
    return this.tables.get(network)?.size ?? 0;
  }
}
