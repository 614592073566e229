// Per-packet route lookup cost at realistic and large table sizes.
// Run: npx vitest bench --run bench/route-lookup.bench.ts
import { bench, describe } from 'vitest';
import { maskBytes } from '../src/netgraph/addr.js';
import { RouteTable } from '../src/netgraph/table.js';
import { prng } from '../test/helpers/bytes.js';

function build(family: 4 | 6, routes: number): { table: RouteTable; addrs: Uint8Array[] } {
  const rand = prng(routes * family);
  const size = family === 4 ? 4 : 16;
  const table = new RouteTable();
  const addrs: Uint8Array[] = [];
  for (let i = 0; i < routes; i++) {
    const addr = Uint8Array.from({ length: size }, () => Math.floor(rand() * 256));
    addr[0] = 10; // all inside one big network, like a mesh
    const length = rand() < 0.8 ? size * 8 : 8 + Math.floor(rand() * (size * 8 - 8));
    table.add({ family, bytes: maskBytes(addr, length), length }, i.toString(16).padStart(64, '0'), 1);
    addrs.push(addr);
  }
  return { table, addrs };
}

for (const family of [4, 6] as const) {
  describe(`IPv${family} lookup`, () => {
    for (const routes of [10, 1_000, 100_000]) {
      const { table, addrs } = build(family, routes);
      let i = 0;
      bench(`${routes} routes`, () => {
        table.lookup(addrs[i++ % addrs.length]!);
      });
    }
  });
}
