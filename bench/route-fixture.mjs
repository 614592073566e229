// The route tables and destinations both route-lookup benchmarks measure, plain JavaScript so the
// vitest bench (TypeScript, src/) and the timing loop (node, dist/) draw exactly the same ones.

/** mulberry32, as test/helpers/bytes.ts: seeded so every run measures the same table. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function masked(bytes, length) {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const bitsHere = length - i * 8;
    if (bitsHere >= 8) continue;
    out[i] = bitsHere <= 0 ? 0 : out[i] & (0xff << (8 - bitsHere));
  }
  return out;
}

/**
 * `count` routes inside one /8 (like a mesh: 80 % host routes, the rest of random length), one
 * peer each, and `destinations` addresses packed into one buffer, each inside a random route
 * with random host bits, so lookups spread over the whole table instead of hitting a few hot
 * paths. `routeOf[i]` is the route destination i was drawn from (its peer routes it).
 */
export function routeFixture(family, count, destinations) {
  const rand = prng(count * family);
  const size = family === 4 ? 4 : 16;
  const routes = [];
  for (let i = 0; i < count; i++) {
    const addr = Uint8Array.from({ length: size }, () => Math.floor(rand() * 256));
    addr[0] = 10;
    const length = rand() < 0.8 ? size * 8 : 8 + Math.floor(rand() * (size * 8 - 8));
    routes.push({ prefix: { family, bytes: masked(addr, length), length }, peer: i.toString(16).padStart(64, '0'), metric: 1 });
  }
  const buffer = new Uint8Array(destinations * size);
  const routeOf = new Int32Array(destinations);
  for (let d = 0; d < destinations; d++) {
    const r = Math.floor(rand() * count);
    const { bytes, length } = routes[r].prefix;
    routeOf[d] = r;
    for (let i = 0; i < size; i++) {
      const keep = Math.max(0, Math.min(8, length - i * 8));
      const hostBits = 0xff >> keep;
      buffer[d * size + i] = bytes[i] | (Math.floor(rand() * 256) & hostBits);
    }
  }
  return { routes, buffer, routeOf, size };
}
