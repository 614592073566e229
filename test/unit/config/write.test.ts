import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { checkConfig, newConfig, newNetwork, newPeer, renderConfig, tomlString, writeConfigFile } from '../../../src/config/write.js';

const FP1 = '1f3a'.repeat(16);
const FP2 = 'b0b0'.repeat(16);
const HOME = '/home/tester';

function fullConfig(): Config {
  return newConfig('/etc/vibepn/config.toml', {
    cert: '/etc/vibepn/certs/node.crt',
    key: '/etc/vibepn/certs/node.key',
    fingerprint: FP1,
    homeDir: HOME,
    daemon: { listen: '[::]:51821', metricsListen: '', logLevel: 'debug', acceptUnknownPeers: true, controlSocket: '/run/vibepn.sock' },
    peers: [
      newPeer('node2', ['corp'], { address: '203.0.113.42:51820', fingerprint: FP2 }),
      newPeer('laptop "quoted" \\ name', ['corp', 'v6'], { allowedRoutes: ['192.168.77.0/24', 'fd77::/48'] }),
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
    expect(text).toContain('[identity]\ncert = "/etc/vibepn/certs/node.crt"\nkey = "/etc/vibepn/certs/node.key"\n');
    expect(text).toContain('[[peers]]\nname = "node2"\naddress = "203.0.113.42:51820"\n');
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

describe('checkConfig', () => {
  it('canonicalizes and validates programmatic configs', () => {
    const config = newConfig('/etc/vibepn/config.toml', {
      homeDir: HOME,
      fingerprint: FP1.toUpperCase(),
      networks: [newNetwork('corp', 'FD00:0::/64')],
    });
    expect(config.identity.fingerprint).toBe(FP1);
    expect(checkConfig(config).networks.get('corp')!.prefix).toBe('fd00::/64');
    config.peers.push(newPeer('x', ['nope']));
    expect(() => checkConfig(config)).toThrow("peers[0].networks: unknown network 'nope' (configured networks: corp)");
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
    const config = newConfig(path, { homeDir: HOME, networks: [newNetwork('corp', '10.42.0.0/33')] });
    expect(() => writeConfigFile(path, config)).toThrow("networks.corp.prefix: '10.42.0.0/33' is not a valid CIDR (prefix length must be 0..32)");
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
