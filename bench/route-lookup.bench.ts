// Per-packet route lookup cost at realistic and large table sizes.
// Run: npx vitest bench --run bench/route-lookup.bench.ts
// vitest bench adds its own per-call overhead; bench/route-lookup.mjs measures the same tables
// and destinations (bench/route-fixture.mjs) in a plain loop, and is what the README quotes.
import { bench, describe } from 'vitest';
import { RouteTable } from '../src/netgraph/table.js';
import { routeFixture } from './route-fixture.mjs';

/** What routeFixture (plain JavaScript) returns; bench/ is not type-checked, this documents it. */
interface Fixture {
  routes: { prefix: { family: 4 | 6; bytes: Uint8Array; length: number }; peer: string; metric: number }[];
  buffer: Uint8Array;
  size: number;
}

for (const family of [4, 6] as const) {
  describe(`IPv${family} lookup`, () => {
    for (const routes of [10, 1_000, 100_000]) {
      const fixture = routeFixture(family, routes, 1 << 16) as Fixture;
      const table = new RouteTable();
      for (const r of fixture.routes) table.add(r.prefix, r.peer, r.metric);
      const addrs = Array.from({ length: 1 << 16 }, (_, d) => fixture.buffer.subarray(d * fixture.size, (d + 1) * fixture.size));
      let i = 0;
      bench(`${routes} routes`, () => {
        table.lookup(addrs[i++ & 0xffff]!);
      });
    }
  });
}
