import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';

const FILE = '/etc/vibepn/config.toml';
const HOME = '/home/tester';
const FP1 = '1f3a'.repeat(16);
const FP2 = 'b0b0'.repeat(16);
const IDENTITY = '[identity]\ncert = "/etc/vibepn/certs/node.crt"\nkey = "/etc/vibepn/certs/node.key"\n';

function parse(text: string) {
  return parseConfig(text, FILE, { homeDir: HOME });
}

/** The ConfigError lines for `text`; fails the test if it parses. */
function errorsOf(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const configError = err as ConfigError;
    expect(configError.message).toBe(configError.errors.join('\n'));
    return configError.errors;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

/** `[identity]` (lines 1-3) followed by `body` starting on line 4. */
function withIdentity(body: string): string {
  return IDENTITY + body;
}

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
        listen: '0.0.0.0:51820',
        controlSocket: '/var/run/vibepn.sock',
        metricsListen: ':9000',
        logLevel: 'info',
        acceptUnknownPeers: false,
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
networks = ["corp"]
allowed_routes = ["FD10:0::/48"]

[networks.corp]
prefix = "FD00:0:0:0::/64"
address = "fd00:0000::0001"
routes = ["2001:DB8::/32"]
`),
    );
    expect(config.peers).toStrictEqual([{ name: 'node2', address: '', networks: ['corp'], allowedRoutes: ['fd10::/48'] }]);
    expect(config.networks.get('corp')).toStrictEqual({
      name: 'corp',
      prefix: 'fd00::/64',
      address: 'fd00::1',
      export: true,
      mtu: 1280,
      routes: ['2001:db8::/32'],
    });
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
      listen: '[::]:0',
      controlSocket: '/run/v.sock',
      metricsListen: '',
      logLevel: 'debug',
      acceptUnknownPeers: true,
    });
    expect(config.peers[0]).toStrictEqual({
      name: 'node2',
      address: 'node2.example.com:51820',
      fingerprint: FP2,
      networks: ['zeta', 'alpha'],
      allowedRoutes: [],
    });
    expect([...config.networks.keys()]).toEqual(['zeta', 'alpha']);
    expect(config.networks.get('zeta')).toMatchObject({ address: '10.1.0.7', export: false, interface: 'vpn-zeta', mtu: 1420 });
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
    expect(config.networks.get('p2p')!.address).toBe('10.9.0.0');
    expect(config.networks.get('host')!.address).toBe('10.8.0.1');
    // IPv6 has no broadcast address: all-ones hosts are fine when configured statically.
    expect(config.networks.get('v6')!.address).toBe('fd00::ffff:ffff:ffff:ffff');
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
      `${FILE}:11: unknown key 'networks.corp.knownPeers' (known keys: prefix, address, export, interface, mtu, routes)`,
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
    expect(errors).toContain(`${FILE}:18: unknown key 'peers[1].adress' (did you mean 'address'?)`);
    expect(errors).toContain(`${FILE}:22: unknown key 'networks.corp.colour' (known keys: prefix, address, export, interface, mtu, routes)`);
    expect(errors).toHaveLength(2);
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
      `${FILE}:15: networks.corp.mtu: expected an integer, got float`,
      `${FILE}:16: networks.corp.export: expected a boolean, got integer`,
      `${FILE}:17: networks.corp.routes[1]: expected a string, got integer`,
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
    ['log_level = "verbose"', `daemon.log_level: 'verbose' is not a log level (use one of debug, info, warn, error)`],
    ['control_socket = ""', 'daemon.control_socket: must not be empty (remove the line to use the default)'],
  ])('%s', (line, message) => {
    expect(errorsOf(withIdentity(`[daemon]\n${line}\n`))).toEqual([`${FILE}:5: ${message}`]);
  });

  it.each(['0.0.0.0:51820', '127.0.0.1:0', '[::]:51820', '[fd00::1]:1', 'vpn.example.com:443', 'localhost:1'])(
    'accepts listen = %s',
    (listen) => {
      expect(parse(withIdentity(`[daemon]\nlisten = "${listen}"\n`)).daemon.listen).toBe(listen);
    },
  );

  it('accepts ":port" and "" for metrics_listen', () => {
    expect(parse(withIdentity('[daemon]\nmetrics_listen = ":9100"\n')).daemon.metricsListen).toBe(':9100');
    expect(parse(withIdentity('[daemon]\nmetrics_listen = ""\n')).daemon.metricsListen).toBe('');
  });
});

describe('parseConfig: peer validation', () => {
  const NETWORKS = '\n[networks.corp]\nprefix = "10.42.0.0/24"\n';

  it('rejects duplicate names and fingerprints', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
name = "node2"
fingerprint = "${FP1}"
networks = ["corp"]
[[peers]]
name = "node2"
fingerprint = "${FP1.toUpperCase()}"
networks = ["corp"]
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:9: peers[1].name: duplicate peer name 'node2' (also used by peers[0])`,
      `${FILE}:10: peers[1].fingerprint: ${FP1} is already the fingerprint of peer 'node2'`,
    ]);
  });

  it('rejects malformed fingerprints', () => {
    const errors = errorsOf(withIdentity(`[[peers]]\nname = "a"\nfingerprint = "${FP1.slice(1)}"\nnetworks = ["corp"]\n${NETWORKS}`));
    expect(errors).toEqual([
      `${FILE}:6: peers[0].fingerprint: '${FP1.slice(1)}' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)`,
    ]);
    expect(errorsOf(withIdentity(`[[peers]]\nname = "a"\nfingerprint = "${'g'.repeat(64)}"\nnetworks = ["corp"]\n${NETWORKS}`))[0]).toContain(
      'is not a valid fingerprint',
    );
  });

  it('rejects unknown, missing and empty network lists', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
name = "a"
networks = ["corp", "lab"]
[[peers]]
name = "b"
[[peers]]
name = "c"
networks = []
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:6: peers[0].networks: unknown network 'lab' (configured networks: corp)`,
      `${FILE}:7: peers[1].networks: required key is missing (the networks this peer may announce routes for, e.g. networks = ["corp"])`,
      `${FILE}:11: peers[2].networks: must list at least one network`,
    ]);
    expect(errorsOf(withIdentity('[[peers]]\nname = "a"\nnetworks = ["corp"]\n'))).toEqual([
      `${FILE}:6: peers[0].networks: unknown network 'corp' (no [networks.NAME] sections are configured)`,
    ]);
  });

  it('requires a non-empty name and a dialable address', () => {
    const errors = errorsOf(
      withIdentity(`[[peers]]
networks = ["corp"]
[[peers]]
name = ""
address = "203.0.113.42:0"
networks = ["corp"]
[[peers]]
name = "ok"
allowed_routes = ["10.0.0.1/8"]
networks = ["corp"]
${NETWORKS}`),
    );
    expect(errors).toEqual([
      `${FILE}:4: peers[0].name: required key is missing (e.g. name = "node2")`,
      `${FILE}:7: peers[1].name: must not be empty (e.g. name = "node2")`,
      `${FILE}:8: peers[1].address: '203.0.113.42:0' is not a valid HOST:PORT (port must be a number 1..65535); use "" to only accept inbound connections`,
      `${FILE}:12: peers[2].allowed_routes[0]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)`,
    ]);
  });
});

describe('parseConfig: network validation', () => {
  function networkErrors(body: string): string[] {
    return errorsOf(withIdentity(body));
  }

  it('rejects invalid CIDRs and host bits', () => {
    expect(networkErrors('[networks.corp]\nprefix = "10.42.0.0/33"\n')).toEqual([
      `${FILE}:5: networks.corp.prefix: '10.42.0.0/33' is not a valid CIDR (prefix length must be 0..32)`,
    ]);
    expect(networkErrors('[networks.corp]\nprefix = "10.42.0.5/24"\n')).toEqual([
      `${FILE}:5: networks.corp.prefix: '10.42.0.5/24' has host bits set (did you mean 10.42.0.0/24?)`,
    ]);
    expect(networkErrors('[networks.corp]\naddress = "auto"\n')).toEqual([
      `${FILE}:4: networks.corp.prefix: required key is missing (e.g. prefix = "10.42.0.0/24")`,
    ]);
  });

  it.each([
    ['10.42.1.5', `'10.42.1.5' is outside prefix 10.42.0.0/24`],
    ['10.42.0.0', `'10.42.0.0' is the network address of 10.42.0.0/24; use a host address or "auto"`],
    ['10.42.0.255', `'10.42.0.255' is the broadcast address of 10.42.0.0/24; use a host address or "auto"`],
    ['fd00::1', `'fd00::1' is an IPv6 address but prefix 10.42.0.0/24 is IPv4`],
    ['10.42.0', `'10.42.0' is not an IP address (use an address inside the prefix, or "auto")`],
  ])('rejects address = %s', (address, message) => {
    expect(networkErrors(`[networks.corp]\nprefix = "10.42.0.0/24"\naddress = "${address}"\n`)).toEqual([
      `${FILE}:6: networks.corp.address: ${message}`,
    ]);
  });

  it('rejects the IPv6 network (subnet-router anycast) address', () => {
    expect(networkErrors('[networks.v6]\nprefix = "fd00::/64"\naddress = "fd00::"\n')).toEqual([
      `${FILE}:6: networks.v6.address: 'fd00::' is the network address of fd00::/64; use a host address or "auto"`,
    ]);
  });

  it('rejects overlapping prefixes, naming both networks', () => {
    expect(
      networkErrors(`[networks.corp]
prefix = "10.42.0.0/24"
[networks.lab]
prefix = "10.0.0.0/8"
[networks.v6a]
prefix = "fd00::/48"
[networks.v6b]
prefix = "fd00:0:0:1::/64"
`),
    ).toEqual([
      `${FILE}:7: networks.lab.prefix: 10.0.0.0/8 overlaps 10.42.0.0/24 of network 'corp' (network prefixes must not overlap)`,
      `${FILE}:11: networks.v6b.prefix: fd00:0:0:1::/64 overlaps fd00::/48 of network 'v6a' (network prefixes must not overlap)`,
    ]);
  });

  it('rejects bad and duplicate interface names', () => {
    expect(
      networkErrors(`[networks.a]
prefix = "10.1.0.0/24"
interface = "vpn-much-too-long"
[networks.b]
prefix = "10.2.0.0/24"
interface = "vpn b"
[networks.c]
prefix = "10.3.0.0/24"
interface = "vpn0"
[networks.d]
prefix = "10.4.0.0/24"
interface = "vpn0"
`),
    ).toEqual([
      `${FILE}:6: networks.a.interface: 'vpn-much-too-long' is not a valid interface name (1..15 characters from A-Z a-z 0-9 _ . -)`,
      `${FILE}:9: networks.b.interface: 'vpn b' is not a valid interface name (1..15 characters from A-Z a-z 0-9 _ . -)`,
      `${FILE}:15: networks.d.interface: 'vpn0' is already used by network 'c'`,
    ]);
  });

  it('rejects bad network names', () => {
    expect(networkErrors('[networks."corp net"]\nprefix = "10.1.0.0/24"\n')).toEqual([
      `${FILE}:4: networks."corp net": 'corp net' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`,
    ]);
    const long = 'n'.repeat(256);
    expect(networkErrors(`[networks.${long}]\nprefix = "10.1.0.0/24"\n`)[0]).toContain(`'${long}' is not a valid network name`);
    expect(parse(withIdentity(`[networks."${'n'.repeat(255)}"]\nprefix = "10.1.0.0/24"\n`)).networks.size).toBe(1);
  });

  it('checks the MTU range per family', () => {
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\nmtu = 575\n')).toEqual([
      `${FILE}:6: networks.a.mtu: 575 is out of range (576..65535 for IPv4 networks)`,
    ]);
    expect(networkErrors('[networks.a]\nprefix = "fd00::/64"\nmtu = 1000\n')).toEqual([
      `${FILE}:6: networks.a.mtu: 1000 is out of range (1280..65535 for IPv6 networks)`,
    ]);
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\nmtu = 65536\n')).toEqual([
      `${FILE}:6: networks.a.mtu: 65536 is out of range (576..65535 for IPv4 networks)`,
    ]);
    expect(parse(withIdentity('[networks.a]\nprefix = "10.1.0.0/24"\nmtu = 576\n')).networks.get('a')!.mtu).toBe(576);
  });

  it('rejects invalid route CIDRs', () => {
    expect(networkErrors('[networks.a]\nprefix = "10.1.0.0/24"\nroutes = ["192.168.50.0/24", "192.168.50.1"]\n')).toEqual([
      `${FILE}:6: networks.a.routes[1]: '192.168.50.1' is not a valid CIDR (expected ADDRESS/LENGTH, e.g. 10.42.0.0/24)`,
    ]);
  });

  it('does not report a peer network as unknown when the network itself is invalid', () => {
    expect(errorsOf(withIdentity('[[peers]]\nname = "a"\nnetworks = ["x"]\n[networks.x]\nprefix = "bad"\n'))).toEqual([
      `${FILE}:8: networks.x.prefix: 'bad' is not a valid CIDR (expected ADDRESS/LENGTH, e.g. 10.42.0.0/24)`,
    ]);
  });
});
