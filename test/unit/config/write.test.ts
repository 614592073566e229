import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { formatNetworkAddress } from '../../../src/config/values.js';
import { checkConfig, newConfig, newNetwork, newPeer, renderConfig, tomlString, writeConfigFile } from '../../../src/config/write.js';
import { formatPrefix } from '../../../src/netgraph/addr.js';

const FP1 = '1f3a'.repeat(16);
const FP2 = 'b0b0'.repeat(16);
const FP3 = 'c0c0'.repeat(16);
const HOME = '/home/tester';

function fullConfig(): Config {
  return newConfig('/etc/vibepn/config.toml', {
    // Quotes and a backslash in a path: the renderer must escape them.
    cert: '/etc/vibepn/certs/"quoted" \\ dir/node.crt',
    key: '/etc/vibepn/certs/node.key',
    fingerprint: FP1,
    homeDir: HOME,
    daemon: { listen: '[::]:51821', metricsListen: '', logLevel: 'debug', acceptUnknownPeers: true, controlSocket: '/run/vibepn.sock' },
    peers: [
      newPeer('node2', ['corp'], { address: '203.0.113.42:51820', fingerprint: FP2 }),
      newPeer('laptop.2_b-c', ['corp', 'v6'], { fingerprint: FP3, allowedRoutes: ['192.168.77.0/24', 'fd77::/48'] }),
      newPeer('tofu', ['corp'], { address: '[fd00::9]:51820' }),
    ],
    networks: [
      newNetwork('corp', '10.42.0.0/24'),
      newNetwork('v6', 'fd00::/64', { address: 'fd00::42', export: false, interface: 'vpn-v6', mtu: 1420, routes: ['2001:db8::/32'] }),
      newNetwork('lab.eu-1', '10.50.0.0/16', { routes: ['192.168.50.0/24', '192.168.51.0/24'] }),
    ],
  });
}

describe('renderConfig', () => {
  it('round-trips a config with every feature', () => {
    const config = fullConfig();
    const text = renderConfig(config);
    expect(parseConfig(text, config.path, { homeDir: '/elsewhere' })).toStrictEqual(config);
  });

  it('round-trips non-default daemon endpoints and every network address form', () => {
    const config = newConfig('/etc/vibepn/config.toml', {
      homeDir: HOME,
      daemon: { listen: '127.0.0.1:0', metricsListen: ':9100' },
      networks: [newNetwork('p2p', '10.9.0.0/31', { address: '10.9.0.1' }), newNetwork('host', 'fd00::5/128', { address: 'fd00::5' })],
    });
    const text = renderConfig(config);
    expect(text).toContain('[daemon]\nlisten = "127.0.0.1:0"\nmetrics_listen = ":9100"\n');
    expect(text).toContain('[networks.host]\nprefix = "fd00::5/128"\naddress = "fd00::5"\n');
    expect(parseConfig(text, config.path, { homeDir: HOME })).toStrictEqual(config);
  });

  it('round-trips a minimal config and omits the default daemon section', () => {
    const config = newConfig('/srv/vibepn/config.toml', { homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/24')] });
    const text = renderConfig(config);
    expect(text).not.toContain('[daemon]');
    expect(text).not.toContain('fingerprint');
    expect(text).not.toContain('mtu');
    expect(parseConfig(text, config.path)).toStrictEqual(config);
  });

  it('writes readable TOML in the documented layout', () => {
    const text = renderConfig(fullConfig());
    expect(text).toContain('[identity]\ncert = "/etc/vibepn/certs/\\"quoted\\" \\\\ dir/node.crt"\nkey = "/etc/vibepn/certs/node.key"\n');
    expect(text).toContain('[[peers]]\nname = "node2"\naddress = "203.0.113.42:51820"\n');
    expect(text).toContain(`[[peers]]\nname = "laptop.2_b-c"\naddress = ""\nfingerprint = "${FP3}"\n`);
    expect(text).toContain('allowed_routes = ["192.168.77.0/24", "fd77::/48"]');
    expect(text).toContain('[[peers]]\nname = "tofu"\naddress = "[fd00::9]:51820"\nnetworks = ["corp"]\n');
    expect(text).toContain('[daemon]\nlisten = "[::]:51821"\ncontrol_socket = "/run/vibepn.sock"\nmetrics_listen = ""\n');
    expect(text).toContain('[networks.v6]\nprefix = "fd00::/64"\naddress = "fd00::42"\nexport = false\ninterface = "vpn-v6"\nmtu = 1420\nroutes = ["2001:db8::/32"]\n');
    expect(text).toContain('[networks.corp]\nprefix = "10.42.0.0/24"\naddress = "auto"\nexport = true\n');
    expect(text).toContain('[networks."lab.eu-1"]\n');
    expect(text).toContain('routes = ["192.168.50.0/24", "192.168.51.0/24"]');
    expect(text.indexOf('[identity]')).toBeLessThan(text.indexOf('[daemon]'));
    expect(text.indexOf('[daemon]')).toBeLessThan(text.indexOf('[[peers]]'));
    expect(text.indexOf('[[peers]]')).toBeLessThan(text.indexOf('[networks.'));
  });

  it('escapes strings so any name survives', () => {
    const nasty = 'a"b\\c\nd\te\u0001f\u007fg ü 🦊';
    expect(parseToml(`k = ${tomlString(nasty)}`)).toEqual({ k: nasty });
  });
});

describe('the header of a written config', () => {
  // A comment that names a document the user does not have is no help: it must ship in the package.
  it('names docs/CONFIG.md, which exists and is in the npm package', () => {
    const header = renderConfig(newConfig('/etc/vibepn/config.toml')).split('\n')[0]!;
    expect(header).toContain('docs/CONFIG.md');
    const repo = join(import.meta.dirname, '../../..');
    expect(statSync(join(repo, 'docs/CONFIG.md')).isFile()).toBe(true);
    const files = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { files: string[] }).files;
    expect(files).toContain('docs');
  });
});

describe('checkConfig', () => {
  it('canonicalizes and validates programmatic configs', () => {
    const config = newConfig('/etc/vibepn/config.toml', {
      homeDir: HOME,
      fingerprint: FP1.toUpperCase(),
      networks: [newNetwork('corp', 'FD00:0::/64', { address: 'FD00:0::0007' })],
    });
    expect(config.identity.fingerprint).toBe(FP1);
    const corp = checkConfig(config).networks.get('corp')!;
    expect(formatPrefix(corp.prefix)).toBe('fd00::/64');
    expect(formatNetworkAddress(corp.address)).toBe('fd00::7');
    config.peers.push(newPeer('x', ['nope'], { address: 'x.example:1' }));
    expect(() => checkConfig(config)).toThrow("peers[0].networks: unknown network 'nope' (configured networks: corp)");
  });

  it('names the key but no line: the lines would be those of text that is not on disk', () => {
    const config = newConfig('/etc/vibepn/config.toml', { homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/24'), newNetwork('a b', '10.43.0.0/24')] });
    let error: unknown;
    try {
      checkConfig(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors).toEqual([
      `cannot write /etc/vibepn/config.toml: networks."a b": 'a b' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`,
    ]);
  });

  it('refuses an inbound-only peer without a fingerprint, as the loader does', () => {
    const config = newConfig('/etc/vibepn/config.toml', { homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/24')] });
    config.peers.push(newPeer('laptop', ['corp']));
    expect(() => checkConfig(config)).toThrow(
      'peers[0].fingerprint: required when address is "" (an inbound-only peer is never dialed, so its key cannot be learned on first use; ' +
        'add fingerprint = "<64 hex>" as printed by vpnctl status on that node)',
    );
    config.peers[0] = newPeer('laptop', ['corp'], { fingerprint: FP2 });
    expect(checkConfig(config).peers[0]).toStrictEqual({ name: 'laptop', address: null, fingerprint: FP2, networks: ['corp'], allowedRoutes: [] });
  });

  it('resolves relative paths in newConfig like the loader does', () => {
    const config = newConfig('/srv/vibepn/config.toml', { cert: 'node.crt', key: 'keys/node.key', homeDir: HOME });
    expect(config.identity.cert).toBe('/srv/vibepn/node.crt');
    expect(config.identity.key).toBe('/srv/vibepn/keys/node.key');
    expect(config.identity.knownPeers).toBe('/home/tester/.vibepn/known_peers.json');
  });
});

describe('writeConfigFile', () => {
  function tempPath(): string {
    return join(mkdtempSync(join(tmpdir(), 'vibepn-write-')), 'nested', 'dir', 'config.toml');
  }

  it('creates parent directories, writes mode 0644 and loads back equal', () => {
    const path = tempPath();
    const config = newConfig(path, { cert: 'node.crt', key: 'node.key', homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/24')] });
    writeConfigFile(path, config);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(loadConfig(path)).toStrictEqual(config);
    // No temporary files left behind.
    expect(readdirSync(join(path, '..'))).toEqual(['config.toml']);
  });

  it('refuses to overwrite without force, and overwrites with it', () => {
    const path = tempPath();
    const first = newConfig(path, { homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/24')] });
    writeConfigFile(path, first);
    const second = newConfig(path, { homeDir: HOME, networks: [newNetwork('lab', '10.43.0.0/24')] });
    expect(() => writeConfigFile(path, second)).toThrow(`${path}: already exists; pass --force to overwrite it`);
    expect(() => writeConfigFile(path, second)).toThrow(ConfigError);
    expect([...loadConfig(path).networks.keys()]).toEqual(['corp']);
    expect(readdirSync(join(path, '..'))).toEqual(['config.toml']);

    writeConfigFile(path, second, { force: true });
    expect([...loadConfig(path).networks.keys()]).toEqual(['lab']);
    expect(readdirSync(join(path, '..'))).toEqual(['config.toml']);
  });

  it('refuses to write an invalid config and leaves no file', () => {
    const path = tempPath();
    // Each value parses, but the address lies outside the prefix: only the loader's rules see that.
    const config = newConfig(path, { homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/24', { address: '10.43.0.1' })] });
    expect(() => writeConfigFile(path, config)).toThrow("networks.corp.address: '10.43.0.1' is outside prefix 10.42.0.0/24");
    expect(() => statSync(path)).toThrow();
  });

  it('writes over a pre-existing unrelated file only with force', () => {
    const path = tempPath();
    writeConfigFile(path, newConfig(path, { homeDir: HOME }));
    writeFileSync(path, 'hand edited\n');
    expect(() => writeConfigFile(path, newConfig(path, { homeDir: HOME }))).toThrow('--force');
    expect(readFileSync(path, 'utf8')).toBe('hand edited\n');
  });
});

describe('builders', () => {
  it('parse text into the typed values the loader produces', () => {
    expect(newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.9', routes: ['192.168.50.0/24'], interface: 'vpn0', mtu: 1420, export: false })).toStrictEqual(
      parseConfig(
        '[identity]\ncert = "/c"\nkey = "/k"\n[networks.corp]\nprefix = "10.42.0.0/24"\naddress = "10.42.0.9"\nroutes = ["192.168.50.0/24"]\ninterface = "vpn0"\nmtu = 1420\nexport = false\n',
        '/etc/vibepn/config.toml',
      ).networks.get('corp'),
    );
    expect(newPeer('hq', ['corp'], { address: '[fd00::1]:51820', fingerprint: FP1.toUpperCase(), allowedRoutes: ['10.9.0.0/16'] })).toStrictEqual({
      name: 'hq',
      address: { host: 'fd00::1', port: 51820 },
      fingerprint: FP1,
      networks: ['corp'],
      allowedRoutes: [{ family: 4, bytes: new Uint8Array([10, 9, 0, 0]), length: 16 }],
    });
    expect(newPeer('laptop', ['corp'], { address: '' }).address).toBeNull();
    const daemon = newConfig('/etc/vibepn/config.toml', { daemon: { listen: '127.0.0.1:0', metricsListen: '' } }).daemon;
    expect(daemon.listen).toStrictEqual({ host: '127.0.0.1', port: 0 });
    expect(daemon.metricsListen).toBeNull();
    expect(newConfig('/etc/vibepn/config.toml').daemon.metricsListen).toStrictEqual({ host: '', port: 9000 });
  });

  it.each([
    [() => newNetwork('corp', '10.42.0.0/33'), "network 'corp': prefix '10.42.0.0/33' is not a valid CIDR (prefix length must be 0..32)"],
    [() => newNetwork('corp', '10.42.0.5/24'), "network 'corp': prefix '10.42.0.5/24' has host bits set (did you mean 10.42.0.0/24?)"],
    [
      () => newNetwork('corp', '10.42.0.0/24', { address: '10.42.0' }),
      `network 'corp': address '10.42.0' is not an IP address (use an address inside the prefix, or "auto")`,
    ],
    [
      () => newNetwork('corp', '10.42.0.0/24', { routes: ['192.168.50.0/24', '192.168.50.1'] }),
      "network 'corp': routes[1] '192.168.50.1' is not a valid CIDR (expected ADDRESS/LENGTH, e.g. 10.42.0.0/24)",
    ],
    [
      () => newPeer('hq', ['corp'], { address: '203.0.113.1' }),
      `peer 'hq': address '203.0.113.1' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use "" to only accept inbound connections`,
    ],
    [
      () => newPeer('hq', ['corp'], { fingerprint: 'abc' }),
      "peer 'hq': fingerprint 'abc' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)",
    ],
    [() => newPeer('hq', ['corp'], { allowedRoutes: ['10.0.0.1/8'] }), "peer 'hq': allowed_routes[0] '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"],
    [
      () => newConfig('/c.toml', { daemon: { listen: '0.0.0.0' } }),
      "daemon.listen '0.0.0.0' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820)",
    ],
    [
      () => newConfig('/c.toml', { daemon: { metricsListen: '9000' } }),
      `daemon.metrics_listen '9000' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use "" to disable metrics`,
    ],
    [
      () => newConfig('/c.toml', { fingerprint: 'nope' }),
      "identity.fingerprint 'nope' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)",
    ],
  ])('throw an Error naming the bad value (%#)', (build, message) => {
    expect(build).toThrow(new Error(message));
  });
});
