// Route lookups per second without a benchmark harness's per-call overhead: the figure the README
// quotes. Same tables and destinations as route-lookup.bench.ts (bench/route-fixture.mjs).
//
//   npm run build && node bench/route-lookup.mjs
//   ROUTE_TABLE=/path/to/dist/src/netgraph/table.js node bench/route-lookup.mjs   (another build)
//   --json     one JSON object on stdout instead of the table (what `npm run bench` reads)
//   --smoke    10 and 1 000 routes, short rounds: a check that it runs, in about a second
//
// Per family and table size: lookup() (what the forwarder calls, one 4/16-byte view per
// destination), lookupAt() (straight from a packet-sized buffer), routesTo() (receive-side source
// check, true case), each the median of 5 rounds of at least 0.4 s; the time to add all routes
// and the first lookup after that (where a table that builds an index lazily builds it); and one
// route change followed by the next lookup (add + lookup, withdraw + lookup), median of 21, which
// includes whatever the table updates for lookups; and the lookup after a batch of 2 000 new
// routes (median of 5), where this table rebuilds its index whole. Each (family, size) runs in its own
// process: in one process the later cases inherit the earlier ones' heap and JIT state, which
// moved the 100 000-route figures by up to 2x.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { routeFixture } from './route-fixture.mjs';

const modulePath = process.env.ROUTE_TABLE ?? new URL('../dist/src/netgraph/table.js', import.meta.url).href;
const { RouteTable } = await import(modulePath.startsWith('/') ? `file://${modulePath}` : modulePath);

const flags = new Set(process.argv.slice(2).filter((a) => a.startsWith('--')));
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const smoke = flags.has('--smoke');
const DESTINATIONS = smoke ? 1 << 12 : 1 << 18;
const ROUNDS = smoke ? 1 : 5;
const ROUND_SECONDS = smoke ? 0.02 : 0.4;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** Runs `pass` (one sweep over all destinations, returns hits) until a round lasts long enough. */
function rate(pass) {
  const rounds = [];
  pass(); // warm-up: lets the JIT optimise the loop before it is timed
  for (let r = 0; r < ROUNDS; r++) {
    let calls = 0;
    let hits = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < ROUND_SECONDS) {
      hits += pass();
      calls += DESTINATIONS;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    }
    // Every destination lies inside a route: a miss means the table (or this bench) is wrong.
    if (hits !== calls) throw new Error(`${calls - hits} of ${calls} lookups missed`);
    rounds.push(calls / elapsed);
  }
  return median(rounds);
}

function lookupPass(table, views) {
  let hits = 0;
  for (let i = 0; i < views.length; i++) if (table.lookup(views[i]) !== undefined) hits++;
  return hits;
}

function lookupAtPass(table, buffer, size, family) {
  let hits = 0;
  for (let off = 0; off < buffer.length; off += size) if (table.lookupAt(buffer, off, family) !== undefined) hits++;
  return hits;
}

function routesToPass(table, views, peers) {
  let hits = 0;
  for (let i = 0; i < views.length; i++) if (table.routesTo(views[i], peers[i])) hits++;
  return hits;
}

/** One route change and the lookup after it, in ms. */
function updateCost(table, family, size, probe) {
  const addTimes = [];
  const withdrawTimes = [];
  const bytes = new Uint8Array(size);
  bytes[0] = 11; // outside the fixture's 10/8, so it is a new prefix
  const prefix = { family, bytes, length: size * 8 };
  for (let i = 0; i < 21; i++) {
    bytes[size - 1] = i;
    let start = process.hrtime.bigint();
    table.add(prefix, 'f'.repeat(64), 1);
    table.lookup(probe);
    addTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
    start = process.hrtime.bigint();
    table.withdraw(prefix, 'f'.repeat(64));
    table.lookup(probe);
    withdrawTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const batchTimes = [];
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 2000; i++) {
      bytes[size - 2] = i >> 8;
      bytes[size - 1] = i & 0xff;
      table.add(prefix, 'e'.repeat(64), 1 + round);
    }
    const start = process.hrtime.bigint();
    table.lookup(probe);
    batchTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
    for (let i = 0; i < 2000; i++) {
      bytes[size - 2] = i >> 8;
      bytes[size - 1] = i & 0xff;
      table.withdraw(prefix, 'e'.repeat(64));
    }
    table.lookup(probe);
  }
  return { add: median(addTimes), withdraw: median(withdrawTimes), batch: median(batchTimes) };
}

const fmt = (n, digits) => n.toFixed(digits).padStart(9);

function measure(family, count) {
  const { routes, buffer, routeOf, size } = routeFixture(family, count, DESTINATIONS);
  const table = new RouteTable();
  const addStart = process.hrtime.bigint();
  for (const r of routes) table.add(r.prefix, r.peer, r.metric);
  const indexStart = process.hrtime.bigint();
  table.lookup(buffer.subarray(0, size));
  const addMs = Number(indexStart - addStart) / 1e6;
  const indexMs = Number(process.hrtime.bigint() - indexStart) / 1e6;
  const views = Array.from({ length: DESTINATIONS }, (_, d) => buffer.subarray(d * size, d * size + size));
  const peers = Array.from(routeOf, (r) => routes[r].peer);
  const lookups = rate(() => lookupPass(table, views));
  const lookupsAt = rate(() => lookupAtPass(table, buffer, size, family));
  const routesTo = rate(() => routesToPass(table, views, peers));
  const update = updateCost(table, family, size, views[0]);
  return {
    family,
    routes: count,
    lookups_per_s: lookups,
    lookup_at_per_s: lookupsAt,
    routes_to_per_s: routesTo,
    add_all_ms: addMs,
    first_lookup_ms: indexMs,
    add_lookup_ms: update.add,
    withdraw_lookup_ms: update.withdraw,
    batch_2000_lookup_ms: update.batch,
  };
}

function row(r) {
  return (
    `IPv${r.family} ${String(r.routes).padStart(9)} ${fmt(r.lookups_per_s / 1e6, 2)}    ${fmt(r.lookup_at_per_s / 1e6, 2)}    ${fmt(r.routes_to_per_s / 1e6, 2)} ` +
    `${fmt(r.add_all_ms, 1)}  ${fmt(r.first_lookup_ms, 2)}  ${fmt(r.add_lookup_ms, 3)}     ${fmt(r.withdraw_lookup_ms, 3)}      ${fmt(r.batch_2000_lookup_ms, 2)}`
  );
}

if (positional.length === 2) {
  // A child: one case, as JSON for the parent.
  console.log(JSON.stringify(measure(Number(positional[0]), Number(positional[1]))));
} else {
  const json = flags.has('--json');
  if (!json) {
    console.log(`node ${process.version}, ${modulePath}`);
    console.log('family   routes   lookup M/s lookupAt M/s routesTo M/s  add all ms 1st lookup ms add+lookup ms withdraw+lookup ms 2000 adds+lookup ms');
  }
  const results = [];
  for (const family of [4, 6]) {
    for (const count of smoke ? [10, 1_000] : [10, 1_000, 100_000]) {
      const args = [fileURLToPath(import.meta.url), String(family), String(count), ...(smoke ? ['--smoke'] : [])];
      const result = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' }));
      results.push(result);
      if (!json) console.log(row(result));
    }
  }
  if (json) console.log(JSON.stringify({ node: process.version, table: modulePath, results }));
}
