import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadConfigAsync, parseConfig } from '../../../src/config/load.js';
import { formatEndpoint, formatNetworkAddress } from '../../../src/config/values.js';
import { formatIp, formatPrefix } from '../../../src/netgraph/addr.js';
import { FILE, FP1, FP2, HOME, IDENTITY, INBOUND_ONLY_NEEDS_PIN, cidr, errorsOf, ip, parse, withIdentity } from './parse-helpers.js';

describe('parseConfig: defaults', () => {
  it('fills every default for a minimal config', () => {
    const config = parse(IDENTITY);
    expect(config).toStrictEqual({
      path: FILE,
      identity: {
        cert: '/etc/vibepn/certs/node.crt',
        key: '/etc/vibepn/certs/node.key',
        knownPeers: '/home/tester/.vibepn/known_peers.json',
      },
      daemon: {
        listen: { host: '0.0.0.0', port: 51820 },
        controlSocket: '/var/run/vibepn.sock',
        metricsListen: { host: '', port: 9000 },
        logLevel: 'info',
        acceptUnknownPeers: false,
        offload: true,
        relay: false,
        socketGroup: '',
      },
      peers: [],
      networks: new Map(),
    });
  });

  it('canonicalizes prefix, address and route text', () => {
    const config = parse(
      withIdentity(`
[[peers]]
name = "node2"
fingerprint = "${FP2}"
networks = ["corp"]
allowed_routes = ["FD10:0::/48"]

[networks.corp]
prefix = "FD00:0:0:0::/64"
address = "fd00:0000::0001"
routes = ["2001:DB8::/32"]
`),
    );
    expect(config.peers).toStrictEqual([{ name: 'node2', address: null, fingerprint: FP2, networks: ['corp'], allowedRoutes: [cidr('fd10::/48')] }]);
    const corp = config.networks.get('corp')!;
    expect(corp).toStrictEqual({
      name: 'corp',
      prefix: cidr('fd00::/64'),
      address: ip('fd00::1'),
      export: true,
      mtu: 8000,
      routes: [cidr('2001:db8::/32')],
    });
    // Written back, every value reads in its canonical form.
    expect(formatPrefix(corp.prefix)).toBe('fd00::/64');
    expect(formatNetworkAddress(corp.address)).toBe('fd00::1');
    expect(corp.routes.map(formatPrefix)).toEqual(['2001:db8::/32']);
    expect(config.peers[0]!.allowedRoutes.map(formatPrefix)).toEqual(['fd10::/48']);
  });

  it('keeps networks in file order and reads every documented key', () => {
    const config = parse(`
[identity]
cert = "/c.crt"
key = "/c.key"
fingerprint = "${FP1.toUpperCase()}"
known_peers = "/var/lib/vibepn/known_peers.json"

[daemon]
listen = "[::]:0"
control_socket = "/run/v.sock"
metrics_listen = ""
log_level = "debug"
accept_unknown_peers = true
offload = false
relay = true
socket_group = "vibepn"

[[peers]]
name = "node2"
address = "node2.example.com:51820"
fingerprint = "${FP2}"
networks = ["zeta", "alpha"]

[networks.zeta]
prefix = "10.1.0.0/24"
address = "10.1.0.7"
export = false
interface = "vpn-zeta"
mtu = 1420

[networks.alpha]
prefix = "10.2.0.0/24"
`);
    expect(config.identity).toStrictEqual({
      cert: '/c.crt',
      key: '/c.key',
      fingerprint: FP1,
      knownPeers: '/var/lib/vibepn/known_peers.json',
    });
    expect(config.daemon).toStrictEqual({
      listen: { host: '::', port: 0 },
      controlSocket: '/run/v.sock',
      metricsListen: null,
      logLevel: 'debug',
      acceptUnknownPeers: true,
      offload: false,
      relay: true,
      socketGroup: 'vibepn',
    });
    expect(config.peers[0]).toStrictEqual({
      name: 'node2',
      address: { host: 'node2.example.com', port: 51820 },
      fingerprint: FP2,
      networks: ['zeta', 'alpha'],
      allowedRoutes: [],
    });
    expect([...config.networks.keys()]).toEqual(['zeta', 'alpha']);
    expect(config.networks.get('zeta')).toMatchObject({ address: ip('10.1.0.7'), export: false, interface: 'vpn-zeta', mtu: 1420 });
    expect(formatIp(config.networks.get('zeta')!.address as Uint8Array)).toBe('10.1.0.7');
  });

  it('accepts colon-separated fingerprints and treats "" as unset', () => {
    const colon = FP1.match(/../g)!.join(':').toUpperCase();
    const config = parse(
      withIdentity(`
[[peers]]
name = "a"
fingerprint = "${colon}"
networks = ["corp"]

[[peers]]
name = "b"
address = "203.0.113.2:51820"
fingerprint = ""
networks = ["corp"]

[networks.corp]
prefix = "10.42.0.0/24"
`),
    );
    expect(config.peers[0]!.fingerprint).toBe(FP1);
    expect(config.peers[1]).not.toHaveProperty('fingerprint');
  });

  it('allows zero networks and point-to-point static addresses', () => {
    expect(parse(IDENTITY).networks.size).toBe(0);
    const config = parse(
      withIdentity(`
[networks.p2p]
prefix = "10.9.0.0/31"
address = "10.9.0.0"
[networks.host]
prefix = "10.8.0.1/32"
address = "10.8.0.1"
[networks.v6]
prefix = "fd00::/64"
address = "fd00::ffff:ffff:ffff:ffff"
`),
    );
    const address = (name: string) => formatNetworkAddress(config.networks.get(name)!.address);
    expect(address('p2p')).toBe('10.9.0.0');
    expect(address('host')).toBe('10.8.0.1');
    // IPv6 has no broadcast address: all-ones hosts are fine when configured statically.
    expect(address('v6')).toBe('fd00::ffff:ffff:ffff:ffff');
  });
});

describe('parseConfig: paths', () => {
  it('resolves relative paths against the config file directory', () => {
    const config = parseConfig(
      `[identity]
cert = "certs/node.crt"
key = "./node.key"
known_peers = "../state/known.json"
[daemon]
control_socket = "run/vpn.sock"
`,
      '/srv/vibepn/config.toml',
      { homeDir: HOME },
    );
    expect(config.identity).toStrictEqual({
      cert: '/srv/vibepn/certs/node.crt',
      key: '/srv/vibepn/node.key',
      knownPeers: '/srv/state/known.json',
    });
    expect(config.daemon.controlSocket).toBe('/srv/vibepn/run/vpn.sock');
  });

  it('expands ~/ against the home directory', () => {
    const config = parse('[identity]\ncert = "~/vpn/node.crt"\nkey = "/k"\n');
    expect(config.identity.cert).toBe('/home/tester/vpn/node.crt');
  });

  it('loadConfig reads the file and reports a missing one clearly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vibepn-config-'));
    const path = join(dir, 'config.toml');
    writeFileSync(path, '[identity]\ncert = "node.crt"\nkey = "node.key"\n');
    expect(loadConfig(path).identity.cert).toBe(join(dir, 'node.crt'));
    expect(() => loadConfig(join(dir, 'missing.toml'))).toThrow(
      `${join(dir, 'missing.toml')}: cannot read config file: no such file (create one with \`vpnctl init\`, or pass -config PATH)`,
    );
  });

  it('loadConfigAsync reads without blocking and fails exactly like loadConfig', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vibepn-config-'));
    const path = join(dir, 'config.toml');
    writeFileSync(path, '[identity]\ncert = "node.crt"\nkey = "node.key"\n[networks.corp]\nprefix = "10.42.0.0/24"\n');
    expect(await loadConfigAsync(path, { homeDir: HOME })).toStrictEqual(loadConfig(path, { homeDir: HOME }));
    const missing = join(dir, 'missing.toml');
    await expect(loadConfigAsync(missing)).rejects.toThrow(
      `${missing}: cannot read config file: no such file (create one with \`vpnctl init\`, or pass -config PATH)`,
    );
    writeFileSync(path, '[identity]\ncert = "node.crt"\n');
    const error = await loadConfigAsync(path).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors).toEqual([`${path}:1: identity.key: required key is missing (e.g. key = "/etc/vibepn/certs/node.key")`]);
  });
});

describe('parseConfig: syntax and structure errors', () => {
  it('reports TOML syntax errors with file, line and column', () => {
    expect(errorsOf('[identity]\ncert = "/c"\nkey = "unterminated\n')).toEqual([
      `${FILE}:3:20: invalid TOML: control characters are not allowed in strings`,
    ]);
    expect(errorsOf('[identity]\ncert = "/a"\ncert = "/b"\n')[0]).toMatch(/^\/etc\/vibepn\/config\.toml:3:1: invalid TOML: /);
  });

  it('names unknown keys with their line and a suggestion', () => {
    const errors = errorsOf(
      withIdentity(`
[daemon]
listen = "0.0.0.0:51820"
lisen = "0.0.0.0:51821"

[networks.corp]
prefix = "10.42.0.0/24"
knownPeers = 1
`),
    );
    expect(errors).toEqual([
      `${FILE}:7: unknown key 'daemon.lisen' (did you mean 'listen'?)`,
      `${FILE}:11: unknown key 'networks.corp.knownPeers' (known keys: prefix, address, export, interface, mtu, routes, admins)`,
    ]);
  });

  it('finds the line of unknown keys in array tables, dotted keys and after multi-line values', () => {
    const errors = errorsOf(`[identity]
cert = "/c"
key = """
[daemon]
bogus = 1
"""
known_peers = '/k'

[[peers]]
name = "a"
networks = [
  "corp",
]

[[peers]]
name = "b"
networks = ["corp"]
adress = "h:1"

[networks]
corp.prefix = "10.0.0.0/8"
corp.colour = "red"
`);
    // Neither peer has an address (b's is misspelt), so both are inbound-only and need a pin.
    expect(errors).toEqual([
      `${FILE}:9: peers[0].fingerprint: ${INBOUND_ONLY_NEEDS_PIN}`,
      `${FILE}:15: peers[1].fingerprint: ${INBOUND_ONLY_NEEDS_PIN}`,
      `${FILE}:18: unknown key 'peers[1].adress' (did you mean 'address'?)`,
      `${FILE}:22: unknown key 'networks.corp.colour' (known keys: prefix, address, export, interface, mtu, routes, admins)`,
    ]);
  });

  it('reports unknown top-level tables', () => {
    expect(errorsOf(withIdentity('[deamon]\nlisten = "x:1"\n'))).toEqual([
      `${FILE}:4: unknown key 'deamon' (did you mean 'daemon'?)`,
    ]);
  });

  it('reports wrong types', () => {
    const errors = errorsOf(
      withIdentity(`
[daemon]
accept_unknown_peers = "yes"
listen = 51820

[[peers]]
name = "a"
networks = "corp"
fingerprint = 1

[networks.corp]
prefix = "10.42.0.0/24"
mtu = 1280.0
export = 1
routes = ["10.1.0.0/16", 7]
`),
    );
    expect(errors).toEqual([
      `${FILE}:6: daemon.accept_unknown_peers: expected a boolean, got string`,
      `${FILE}:7: daemon.listen: expected a string, got integer`,
      `${FILE}:11: peers[0].networks: expected an array of strings, got string`,
      // Only the type error: a fingerprint that is there but wrong is not also "missing".
      `${FILE}:12: peers[0].fingerprint: expected a string, got integer`,
      `${FILE}:16: networks.corp.mtu: expected an integer, got float`,
      `${FILE}:17: networks.corp.export: expected a boolean, got integer`,
      `${FILE}:18: networks.corp.routes[1]: expected a string, got integer`,
    ]);
  });

  it('reports wrongly shaped sections', () => {
    expect(errorsOf('daemon = 1\n' + IDENTITY)).toEqual([`${FILE}:1: daemon: expected a table ([daemon] section), got integer`]);
    expect(errorsOf(withIdentity('[peers]\nname = "a"\n'))).toEqual([
      `${FILE}:4: peers: expected an array of tables ([[peers]] sections), got table`,
    ]);
  });

  it('requires identity.cert and identity.key', () => {
    expect(errorsOf('[daemon]\n')).toEqual([
      `${FILE}: identity.cert: required key is missing (e.g. cert = "/etc/vibepn/certs/node.crt")`,
      `${FILE}: identity.key: required key is missing (e.g. key = "/etc/vibepn/certs/node.key")`,
    ]);
    expect(errorsOf('[identity]\ncert = ""\nkey = "/k"\n')).toEqual([
      `${FILE}:2: identity.cert: must not be empty (e.g. cert = "/etc/vibepn/certs/node.crt")`,
    ]);
  });

  it('collects all errors in file order', () => {
    const errors = errorsOf(`
[networks.b]
prefix = "10.0.0.0/33"
[identity]
cert = "/c"
key = "/k"
fingerprint = "nope"
`);
    expect(errors).toEqual([
      `${FILE}:3: networks.b.prefix: '10.0.0.0/33' is not a valid CIDR (prefix length must be 0..32)`,
      `${FILE}:7: identity.fingerprint: 'nope' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)`,
    ]);
  });
});

describe('parseConfig: daemon validation', () => {
  it.each([
    ['listen = "0.0.0.0"', `daemon.listen: '0.0.0.0' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820)`],
    ['listen = "::1:51820"', `daemon.listen: '::1:51820' is not a valid HOST:PORT (IPv6 addresses need brackets, e.g. [::1]:51820)`],
    ['listen = "0.0.0.0:65536"', `daemon.listen: '0.0.0.0:65536' is not a valid HOST:PORT (port must be a number 0..65535)`],
    ['listen = "300.1.1.1:1"', `daemon.listen: '300.1.1.1:1' is not a valid HOST:PORT ('300.1.1.1' is not an IPv4 address)`],
    ['listen = "[fd00::zz]:1"', `daemon.listen: '[fd00::zz]:1' is not a valid HOST:PORT ('fd00::zz' is not an IPv6 address)`],
    ['listen = ":51820"', `daemon.listen: ':51820' is not a valid HOST:PORT (missing host, e.g. 0.0.0.0:51820)`],
    ['listen = "bad_host:1"', `daemon.listen: 'bad_host:1' is not a valid HOST:PORT ('bad_host' is not an IP address or hostname)`],
    [
      'metrics_listen = "9000"',
      `daemon.metrics_listen: '9000' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use "" to disable metrics`,
    ],
    [
      'metrics_listen = "::1:9000"',
      `daemon.metrics_listen: '::1:9000' is not a valid HOST:PORT (IPv6 addresses need brackets, e.g. [::1]:9000); use "" to disable metrics`,
    ],
    [
      'metrics_listen = ":70000"',
      `daemon.metrics_listen: ':70000' is not a valid HOST:PORT (port must be a number 0..65535); use "" to disable metrics`,
    ],
    ['log_level = "verbose"', `daemon.log_level: 'verbose' is not a log level (use one of debug, info, warn, error)`],
    ['control_socket = ""', 'daemon.control_socket: must not be empty (remove the line to use the default)'],
  ])('%s', (line, message) => {
    expect(errorsOf(withIdentity(`[daemon]\n${line}\n`))).toEqual([`${FILE}:5: ${message}`]);
  });

  it.each(['0.0.0.0:51820', '127.0.0.1:0', '[::]:51820', '[fd00::1]:1', 'vpn.example.com:443', 'localhost:1'])(
    'accepts listen = %s',
    (listen) => {
      expect(formatEndpoint(parse(withIdentity(`[daemon]\nlisten = "${listen}"\n`)).daemon.listen)).toBe(listen);
    },
  );

  it('parses listen into host and port, IPv6 without brackets', () => {
    expect(parse(withIdentity('[daemon]\nlisten = "[fd00::1]:1"\n')).daemon.listen).toStrictEqual({ host: 'fd00::1', port: 1 });
    expect(parse(withIdentity('[daemon]\nlisten = "vpn.example.com:443"\n')).daemon.listen).toStrictEqual({ host: 'vpn.example.com', port: 443 });
  });

  it.each([
    [':9100', { host: '', port: 9100 }],
    ['127.0.0.1:9100', { host: '127.0.0.1', port: 9100 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['', null],
  ])('accepts metrics_listen = "%s" (":port" is every interface, "" disables)', (text, expected) => {
    expect(parse(withIdentity(`[daemon]\nmetrics_listen = "${text}"\n`)).daemon.metricsListen).toStrictEqual(expected);
  });
});
