// All route tables of this node, one per network. Networks never share routes: the same
// prefix may mean different hosts in two networks, so every lookup names its network.

import { type Prefix, formatPrefix } from './addr.js';
import { RouteTable } from './table.js';

export interface NetworkRoute {
  network: string;
  /** Canonical CIDR text. */
  prefix: string;
  peer: string;
  metric: number;
}

export interface RemovedRoute {
  network: string;
  prefix: Prefix;
}

export class NetGraph {
  private readonly tables = new Map<string, RouteTable>();

  table(network: string): RouteTable | undefined {
    return this.tables.get(network);
  }

  ensure(network: string): RouteTable {
    let table = this.tables.get(network);
    if (!table) this.tables.set(network, (table = new RouteTable()));
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
  removePeer(peer: string): RemovedRoute[] {
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
  routes(): NetworkRoute[] {
    const out: NetworkRoute[] = [];
    for (const network of this.networks()) {
      for (const r of this.tables.get(network)!.routes()) {
        out.push({ network, prefix: formatPrefix(r.prefix), peer: r.peer, metric: r.metric });
      }
    }
    return out;
  }

  /** Route count for metrics; 0 for a network without a table. */
  routeCount(network: string): number {
    return this.tables.get(network)?.size ?? 0;
  }
}
