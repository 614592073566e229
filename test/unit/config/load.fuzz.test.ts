// Fuzzing the config loader (parseConfig) with fast-check. A config is written by an admin, by
// vpnctl, or pasted from somewhere; the loader promises a typed Config or a ConfigError (one line
// per problem, ConfigError.errors) and nothing else, on any text.
// Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { stringify } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { KeyLines } from '../../../src/config/lines.js';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer, renderConfig } from '../../../src/config/write.js';
import { LOG_LEVELS } from '../../../src/log/logger.js';
import { formatIp, maskBytes } from '../../../src/netgraph/addr.js';
import { FUZZ_TIMEOUT_MS, editsArb, fuzz, mutateText } from '../../helpers/fuzz.js';

const FILE = '/etc/vibepn/config.toml';
const HOME = '/home/tester';

/**
 * parseConfig's contract on any text: a Config, or a ConfigError listing non-empty problems that
 * each name the file and each fit on one line (ConfigError's "one line per problem").
 */
function load(text: string): Config | ConfigError {
  try {
    return parseConfig(text, FILE, { homeDir: HOME });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`parseConfig threw ${String(err)}, not a ConfigError`);
    if (err.errors.length === 0) throw new Error('ConfigError without problems');
    if (err.message !== err.errors.join('\n')) throw new Error('ConfigError message is not its lines');
    for (const line of err.errors) {
      if (line.length === 0) throw new Error('empty problem line');
      if (!line.startsWith(FILE)) throw new Error(`problem line does not name the file: ${JSON.stringify(line.slice(0, 120))}`);
      if (/[\r\n]/.test(line)) throw new Error(`problem line spans lines: ${JSON.stringify(line.slice(0, 200))}`);
    }
    return err;
  }
}

// ---- arbitrary text ----

/** Fragments of TOML and of this config's keys and values, so random text is often near-valid. */
const TOML_TOKENS = [
  '[', ']', '[[', ']]', '{', '}', '=', ' = ', '.', ',', '"', "'", '"""', "'''", '\\', '\n', '\r\n', ' ', '\t', '#', '# c\n',
  'identity', 'daemon', 'networks', 'peers', 'networks.corp', '[identity]\n', '[daemon]\n', '[[peers]]\n', '[networks.corp]\n',
  'cert', 'key', 'fingerprint', 'known_peers', 'listen', 'control_socket', 'metrics_listen', 'log_level', 'accept_unknown_peers',
  'name', 'address', 'networks', 'allowed_routes', 'prefix', 'export', 'interface', 'mtu', 'routes',
  '"10.42.0.0/24"', '"fd00::/64"', '"auto"', '"0.0.0.0:51820"', '":9000"', '""', '"debug"', '"corp"', '["corp"]', '"/a/b"', '"~/x"',
  `"${'ab'.repeat(32)}"`, '1280', '0', '-1', '65536', '1e3', '1.5', 'inf', 'nan', 'true', 'false', '1979-05-27T07:32:00Z', '0x10',
  '\\u0000', '\\n', 'é', '😀', '\u0000', '\ufeff',
];
const tomlishText = fc.array(fc.constantFrom(...TOML_TOKENS), { maxLength: 40 }).map((tokens) => tokens.join(''));

// ---- structured documents: any shape and type, serialised by smol-toml ----

const valuePool = fc.constantFrom(
  '10.42.0.0/24', '10.42.0.5/24', 'fd00::/64', '10.42.0.7', 'fd00::7', 'auto', '0.0.0.0:51820', '[::]:0', ':9000', '127.0.0.1:9100',
  '198.51.100.20:51820', 'host.example:1', 'nohost', '', ' ', 'debug', 'info', 'loud', 'corp', 'v6', 'vpn0', 'x'.repeat(16), '.', '..',
  '/etc/vibepn/node.crt', 'certs/node.crt', '~/kp.json', '~', 'ab'.repeat(32), `${'AB:'.repeat(31)}AB`, 'a\nb', "it's \"q\"",
);
const tomlScalar: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: valuePool },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom(0n, 1n, 576n, 1280n, 1279n, 65535n, 65536n, -1n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.date({ noInvalidDate: true }) },
);
const tomlValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: tomlScalar },
  { weight: 2, arbitrary: fc.array(tomlScalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), tomlScalar, { maxKeys: 3 }) },
);

function section(keys: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.dictionary(fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }), tomlValue, {
    maxKeys: keys.length + 1,
  });
}
const networkNames = fc.oneof(fc.constantFrom('corp', 'v6', 'lab.eu-1', 'a b', ''), fc.string({ maxLength: 8 }));
const documentArb: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    identity: fc.oneof({ weight: 9, arbitrary: section(['cert', 'key', 'fingerprint', 'known_peers']) }, { weight: 1, arbitrary: tomlScalar }),
    daemon: fc.oneof({ weight: 9, arbitrary: section(['listen', 'control_socket', 'metrics_listen', 'log_level', 'accept_unknown_peers']) }, { weight: 1, arbitrary: tomlScalar }),
    networks: fc.oneof(
      { weight: 9, arbitrary: fc.dictionary(networkNames, section(['prefix', 'address', 'export', 'interface', 'mtu', 'routes']), { maxKeys: 3 }) },
      { weight: 1, arbitrary: tomlValue },
    ),
    peers: fc.oneof(
      { weight: 9, arbitrary: fc.array(section(['name', 'address', 'fingerprint', 'networks', 'allowed_routes']), { maxLength: 3 }) },
      { weight: 1, arbitrary: tomlValue },
    ),
    extra: tomlValue,
  },
  { requiredKeys: [] },
);

/** The document as TOML; undefined for the rare shape smol-toml will not write. */
function toToml(doc: Record<string, unknown>): string | undefined {
  try {
    return stringify(doc);
  } catch {
    return undefined;
  }
}

// ---- valid configs, for the round trip ----

const segment = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
const absolutePath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const fingerprintHex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const anyPrefix = fc
  .oneof(
    fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 })),
    fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 })),
  )
  .map(([bytes, length]) => `${formatIp(maskBytes(bytes, length))}/${length}`);
const endpoint = fc
  .tuple(fc.constantFrom('203.0.113.42', '[fd00::9]', 'node.example.org', 'a-1.b'), fc.integer({ min: 1, max: 65535 }))
  .map(([host, port]) => `${host}:${port}`);

/** Network i gets a prefix inside 10.i.0.0/16 (or fd00:i::/32), so no two overlap. */
const networkSpec = fc.record({
  v6: fc.boolean(),
  length: fc.integer({ min: 16, max: 30 }),
  staticAddress: fc.boolean(),
  export: fc.boolean(),
  iface: fc.boolean(),
  mtu: fc.option(fc.integer({ min: 1280, max: 65535 }), { nil: undefined }),
  routes: fc.array(anyPrefix, { maxLength: 3 }),
});
const peerSpec = fc.record({
  address: fc.option(endpoint, { nil: undefined }),
  pin: fc.boolean(),
  networkMask: fc.nat(),
  allowedRoutes: fc.array(anyPrefix, { maxLength: 3 }),
});

const validConfigArb: fc.Arbitrary<Config> = fc
  .record({
    cert: absolutePath,
    key: absolutePath,
    knownPeers: fc.option(absolutePath, { nil: undefined }),
    fingerprint: fc.option(fingerprintHex, { nil: undefined }),
    listen: fc.constantFrom('0.0.0.0:51820', '[::]:0', '127.0.0.1:51821'),
    metricsListen: fc.constantFrom('', ':9000', '127.0.0.1:9100', '[::1]:9101'),
    controlSocket: absolutePath,
    logLevel: fc.constantFrom(...LOG_LEVELS),
    acceptUnknownPeers: fc.boolean(),
    networkNames: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), { maxLength: 4 }),
    networks: fc.array(networkSpec, { minLength: 4, maxLength: 4 }),
    // Peer names follow the network-name rule (peer-values.ts); write.test.ts covers escaping any text.
    peerNames: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), { maxLength: 4 }),
    peers: fc.array(peerSpec, { minLength: 4, maxLength: 4 }),
    peerFingerprints: fc.uniqueArray(fingerprintHex, { minLength: 4, maxLength: 4 }),
  })
  .map((c) => {
    const networks = c.networkNames.map((name, i) => {
      const n = c.networks[i]!;
      const prefix = n.v6 ? `fd00:${i}::/${n.length + 16}` : `10.${i}.0.0/${n.length}`;
      return newNetwork(name, prefix, {
        address: n.staticAddress ? (n.v6 ? `fd00:${i}::1` : `10.${i}.0.1`) : 'auto',
        export: n.export,
        interface: n.iface ? `vpn${i}` : undefined,
        mtu: n.mtu,
        routes: n.routes,
      });
    });
    const peers =
      networks.length === 0
        ? []
        : c.peerNames.map((name, i) => {
            const p = c.peers[i]!;
            const member = networks.filter((_, j) => (p.networkMask >> j) & 1).map((net) => net.name);
            return newPeer(name, member.length > 0 ? member : [networks[0]!.name], {
              address: p.address,
              // An inbound-only peer must be pinned.
              fingerprint: p.pin || p.address === undefined ? c.peerFingerprints[i] : undefined,
              allowedRoutes: p.allowedRoutes,
            });
          });
    return newConfig(FILE, {
      cert: c.cert,
      key: c.key,
      fingerprint: c.fingerprint,
      knownPeers: c.knownPeers,
      homeDir: HOME,
      daemon: { listen: c.listen, metricsListen: c.metricsListen, controlSocket: c.controlSocket, logLevel: c.logLevel, acceptUnknownPeers: c.acceptUnknownPeers },
      peers,
      networks,
    });
  });

describe('parseConfig fuzz (fast-check)', () => {
  it(
    'arbitrary and TOML-like text: a Config or a ConfigError naming the file, never another throw',
    () => fuzz('config: arbitrary text', 0.25, fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), tomlishText), (text) => void load(text)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'documents of any shape and type: a Config or a ConfigError naming the file, never another throw',
    () =>
      fuzz('config: documents', 0.35, documentArb, (doc) => {
        const text = toToml(doc);
        if (text !== undefined) load(text);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: a valid config, rendered, loads back equal',
    () =>
      fuzz('config: round trip', 0.15, validConfigArb, (config) => {
        const loaded = load(renderConfig(config));
        if (loaded instanceof ConfigError) throw new Error(`a valid config was refused:\n${loaded.message}`);
        expect(loaded).toEqual(config);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid configs: a Config or a ConfigError naming the file, never another throw',
    () => fuzz('config: mutation', 0.25, validConfigArb, editsArb, (config, edits) => void load(mutateText(renderConfig(config), edits))),
    FUZZ_TIMEOUT_MS,
  );

  // ConfigError promises one line per problem, though problems quote values from the file: a TOML
  // string with an escaped newline once made one problem span two lines.
  it('keeps a problem quoting a value with a newline on one line', () => {
    const error = load('[daemon]\nlog_level = "a\\nb"\n');
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors[0]).toContain("'a\\nb' is not a log level");
  });

  // KeyLines (src/config/lines.ts) finds the line of each key for error messages. It once kept
  // every prefix of a dotted key as a whole path, so a key of n parts cost O(n²): 16 000 parts
  // (a 32 KB file) took ~4 s and ~600 MB. Now one node per segment.
  it('scans a dotted key of n parts in O(n) nodes', () => {
    const parts = 100_000;
    const text = `${'a.'.repeat(parts - 1)}a = 1\n[${'b.'.repeat(parts - 1)}b]\n`;
    const lines = KeyLines.scan(text);
    type Node = { children: Map<unknown, Node> };
    let nodes = 0;
    const stack: Node[] = [(lines as unknown as { root: Node }).root];
    while (stack.length > 0) {
      nodes++;
      stack.push(...stack.pop()!.children.values());
    }
    expect(nodes).toBeLessThanOrEqual(2 * parts + 1);
    expect(lines.lineOf(Array.from({ length: parts }, () => 'a'))).toBe(1);
    expect(lines.lineOf(Array.from({ length: parts }, () => 'b'))).toBe(2);
  });
});
