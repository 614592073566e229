// RouteTable against a linear reference, like wireguard-go's allowedips_rand_test.go: random
// prefixes of random lengths announced, re-announced with new metrics and withdrawn by several
// peers, then lookup, lookupAt, lookupRoute and routesTo for thousands of addresses compared with
// a scan of every route. The changes come in bursts of varying size between lookups (one change,
// a batch, a bulk load past the table's patch limit), so the lookup index is both patched and
// rebuilt whole; addresses include prefix boundaries, where an interval index goes wrong first.
// Fixed seeds keep CI reproducible; NETGRAPH_SEED replays a failure or explores new seeds.

import { describe, expect, it } from 'vitest';
import { type Prefix, comparePrefixes, formatIp, formatPrefix, maskBytes, prefixContains } from '../../../src/netgraph/addr.js';
import { type Route, RouteTable } from '../../../src/netgraph/table.js';
import { prng } from '../../helpers/bytes.js';

function describeRoute(r: Route | undefined): string {
  return r ? `${formatPrefix(r.prefix)} via ${r.peer.slice(0, 8)} metric ${r.metric}` : 'none';
}

class ReferenceTable {
  private routes: Route[] = [];

  add(prefix: Prefix, peer: string, metric: number): boolean {
    const index = this.routes.findIndex((r) => r.peer === peer && samePrefix(r.prefix, prefix));
    if (index >= 0 && this.routes[index]!.metric === metric) return false;
    const route = { prefix, peer, metric };
    if (index >= 0) this.routes[index] = route;
    else this.routes.push(route);
    return true;
  }

  withdraw(prefix: Prefix, peer: string): boolean {
    const before = this.routes.length;
    this.routes = this.routes.filter((r) => !(r.peer === peer && samePrefix(r.prefix, prefix)));
    return this.routes.length !== before;
  }

  removePeer(peer: string): number {
    const before = this.routes.length;
    this.routes = this.routes.filter((r) => r.peer !== peer);
    return before - this.routes.length;
  }

  /** The winning route (longest prefix, then metric, then key) and every peer with a route there. */
  scan(addr: Uint8Array): { best: Route | undefined; peers: Set<string> } {
    let best: Route | undefined;
    const peers = new Set<string>();
    for (const r of this.routes) {
      if (!prefixContains(r.prefix, addr)) continue;
      peers.add(r.peer);
      if (
        !best ||
        r.prefix.length > best.prefix.length ||
        (r.prefix.length === best.prefix.length && (r.metric < best.metric || (r.metric === best.metric && r.peer < best.peer)))
      ) {
        best = r;
      }
    }
    return { best, peers };
  }

  all(): Route[] {
    return [...this.routes].sort(compareRoutes);
  }

  unsorted(): readonly Route[] {
    return this.routes;
  }
}

function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.length === b.length && a.bytes.every((v, i) => v === b.bytes[i]);
}

function compareRoutes(a: Route, b: Route): number {
  return comparePrefixes(a.prefix, b.prefix) || a.metric - b.metric || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0);
}

/** `address` with every bit past `length` set to `hostBit`. */
function fillHost(address: Uint8Array, length: number, hostBit: 0 | 1): Uint8Array {
  const out = maskBytes(address, length);
  if (hostBit === 1) for (let i = 0; i < out.length; i++) out[i]! |= 0xff >> Math.max(0, Math.min(8, length - i * 8));
  return out;
}

/** The address one above (+1) or below (-1), wrapping around at the ends of the space. */
function step(address: Uint8Array, by: 1 | -1): Uint8Array {
  const out = new Uint8Array(address);
  for (let i = out.length - 1; i >= 0; i--) {
    const before = out[i]!;
    out[i] = (before + by) & 0xff;
    if ((by === 1 && before !== 0xff) || (by === -1 && before !== 0)) break;
  }
  return out;
}

function fuzz(seed: number, family: 4 | 6, operations: number): { lookups: number; maxSize: number; bursts: number } {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const size = family === 4 ? 4 : 16;
  const maxBits = size * 8;
  const hex = '0123456789abcdef';
  const peers = Array.from({ length: 7 }, () => Array.from({ length: 64 }, () => hex[int(16)]).join(''));
  // A few base addresses that most prefixes derive from, so prefixes nest and collide; two at the
  // ends of the address space, where interval arithmetic wraps.
  const bases = Array.from({ length: 6 }, () => Uint8Array.from({ length: size }, () => int(256)));
  bases.push(new Uint8Array(size), new Uint8Array(size).fill(0xff));

  const randomAddress = (): Uint8Array => {
    if (rand() < 0.15) return Uint8Array.from({ length: size }, () => int(256));
    const addr = new Uint8Array(bases[int(bases.length)]!);
    // Flip a couple of bits, mostly deep ones, so many addresses share long prefixes.
    const flips = int(4);
    for (let i = 0; i < flips; i++) {
      const bit = maxBits - 1 - Math.min(maxBits - 1, Math.floor(-Math.log(1 - rand()) * (maxBits / 6)));
      addr[bit >> 3]! ^= 0x80 >> (bit & 7);
    }
    return addr;
  };
  const randomLength = (): number => {
    const roll = rand();
    if (roll < 0.2) return maxBits;
    if (roll < 0.25) return int(4);
    if (roll < 0.3) return maxBits - int(4);
    return int(maxBits + 1);
  };
  const randomPrefix = (): Prefix => {
    const length = randomLength();
    return { family, bytes: maskBytes(randomAddress(), length), length };
  };

  const table = new RouteTable();
  const ref = new ReferenceTable();
  const fail = (op: number, what: string): never => {
    throw new Error(`seed ${seed} (IPv${family}), operation ${op}: ${what}`);
  };
  let lookups = 0;
  let maxSize = 0;
  let bursts = 0;

  const checkAddress = (op: number, addr: Uint8Array): void => {
    lookups++;
    const { best, peers: routing } = ref.scan(addr);
    const got = table.lookup(addr);
    if (got !== best?.peer) fail(op, `lookup(${formatIp(addr)}) = ${got}, reference says ${describeRoute(best)}`);
    for (const peer of peers) {
      if (table.routesTo(addr, peer) !== routing.has(peer)) fail(op, `routesTo(${formatIp(addr)}, ${peer.slice(0, 8)}) should be ${routing.has(peer)}`);
    }
    if (lookups % 16 === 0) {
      const route = table.lookupRoute(addr);
      if (describeRoute(route) !== describeRoute(best)) fail(op, `lookupRoute = ${describeRoute(route)}, want ${describeRoute(best)}`);
      const buf = new Uint8Array(size + 7);
      buf.set(addr, 5);
      if (table.lookupAt(buf, 5, family) !== got) fail(op, 'lookupAt disagrees with lookup');
    }
  };

  const change = (op: number): void => {
    // First grow the table to thousands of routes, then churn it (removePeer only while churning).
    const growing = op < operations / 2;
    const roll = rand();
    const current = ref.unsorted();
    if (roll < (growing ? 0.9 : 0.5) || current.length === 0) {
      // Add: sometimes a new (prefix, peer), sometimes an existing one with a new metric.
      const existing = current.length > 0 && rand() < 0.2 ? current[int(current.length)]! : undefined;
      const prefix = existing?.prefix ?? randomPrefix();
      const peer = existing?.peer ?? peers[int(peers.length)]!;
      const metric = int(4);
      const got = table.add(prefix, peer, metric);
      const want = ref.add(prefix, peer, metric);
      if (got !== want) fail(op, `add(${formatPrefix(prefix)}, ${peer.slice(0, 8)}, ${metric}) returned ${got}, want ${want}`);
    } else if (growing || roll < 0.997) {
      const victim = rand() < 0.8 ? current[int(current.length)]! : { prefix: randomPrefix(), peer: peers[int(peers.length)]! };
      const got = table.withdraw(victim.prefix, victim.peer);
      const want = ref.withdraw(victim.prefix, victim.peer);
      if (got !== want) fail(op, `withdraw(${formatPrefix(victim.prefix)}, ${victim.peer.slice(0, 8)}) returned ${got}, want ${want}`);
    } else {
      const peer = peers[int(peers.length)]!;
      const got = table.removePeer(peer);
      const want = ref.removePeer(peer);
      if (got !== want) fail(op, `removePeer(${peer.slice(0, 8)}) returned ${got}, want ${want}`);
    }
  };

  // Once, a bulk load: more prefixes changing between two lookups than the table patches (1024).
  const bulkAt = Math.floor(operations * 0.3);
  for (let op = 0; op < operations; ) {
    const roll = rand();
    const burst = op <= bulkAt && op + 2500 > bulkAt ? 2500 : roll < 0.8 ? 1 : roll < 0.97 ? 2 + int(20) : 50 + int(150);
    const end = Math.min(operations, op + burst);
    for (; op < end; op++) change(op);
    bursts++;
    const routes = ref.unsorted();
    maxSize = Math.max(maxSize, routes.length);
    if (table.size !== routes.length) fail(op, `size ${table.size}, want ${routes.length}`);

    // Uniform, inside a route (random host bits), near a base, and a route's edges and neighbours.
    for (let i = 0; i < 30 + Math.min(3 * burst, 200); i++) {
      const kind = routes.length === 0 ? 0 : int(6);
      const r = routes[int(routes.length)];
      let addr: Uint8Array;
      if (kind === 0 || !r) addr = Uint8Array.from({ length: size }, () => int(256));
      else if (kind === 1) {
        addr = Uint8Array.from({ length: size }, () => int(256));
        const base = r.prefix.bytes;
        for (let bit = 0; bit < r.prefix.length; bit++) {
          const mask = 0x80 >> (bit & 7);
          addr[bit >> 3] = (addr[bit >> 3]! & ~mask) | (base[bit >> 3]! & mask);
        }
      } else if (kind === 2) addr = randomAddress();
      else if (kind === 3) addr = fillHost(r.prefix.bytes, r.prefix.length, int(2) as 0 | 1);
      else if (kind === 4) addr = step(fillHost(r.prefix.bytes, r.prefix.length, 1), 1);
      else addr = step(r.prefix.bytes, -1);
      checkAddress(op, addr);
    }
    if (bursts % 40 === 0 || op === operations) {
      const got = table.routes().map(describeRoute);
      const want = ref.all().map(describeRoute);
      if (got.join('\n') !== want.join('\n')) fail(op, `routes() differs:\n${got.join('\n')}\n--- want ---\n${want.join('\n')}`);
      const prefixes = [...new Set(want.map((line) => line.split(' ')[0]!))];
      if (table.prefixes().map(formatPrefix).join(' ') !== prefixes.join(' ')) fail(op, 'prefixes() differs');
      const peer = peers[int(peers.length)]!;
      const own = ref.all().filter((x) => x.peer === peer).map((x) => formatPrefix(x.prefix));
      if (table.peerPrefixes(peer).map(formatPrefix).join(' ') !== own.join(' ')) fail(op, `peerPrefixes(${peer.slice(0, 8)}) differs`);
    }
  }
  return { lookups, maxSize, bursts };
}

describe('RouteTable against a linear reference (randomized)', () => {
  const seeds = process.env.NETGRAPH_SEED ? [Number(process.env.NETGRAPH_SEED)] : [1, 2, 0xdecafbad];

  for (const family of [4, 6] as const) {
    for (const seed of seeds) {
      it(`IPv${family}, seed ${seed}`, () => {
        const { lookups, maxSize, bursts } = fuzz(seed, family, 6000);
        // Guards against a generator change that silently stops exercising the table.
        expect(lookups).toBeGreaterThanOrEqual(15_000);
        expect(maxSize).toBeGreaterThan(1000);
        expect(bursts).toBeGreaterThan(250);
      });
    }
  }
});
