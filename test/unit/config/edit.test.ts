// Text edits of a config file (add-peer, remove-peer, rekey): only the changed [[peers]] table or
// key moves; every other byte, comments and blank lines included, stays as the user wrote it.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import type { Config, PeerConfig } from '../../../src/config/types.js';
import {
  checkConfigText,
  peerTables,
  readConfigText,
  withIdentityFingerprint,
  withPeerAdded,
  withPeerRemoved,
  withPeerReplaced,
  writeConfigText,
  type ConfigText,
} from '../../../src/config/edit.js';
import { newPeer } from '../../../src/config/write.js';

const EXAMPLE = readFileSync(resolve(import.meta.dirname, '../../../examples/config.toml'), 'utf8');
const FILE = '/etc/vibepn/config.toml';
const FP = 'ab'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'vibepn-edit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileOf(text: string, path = FILE): ConfigText {
  return { path, text, config: parseConfig(text, path) };
}

/** The config `text` loads as, checked to be `expected` (checkConfigText), for chaining edits. */
function checked(file: ConfigText, text: string, expected: Config): ConfigText {
  checkConfigText(file, text, expected);
  return fileOf(text, file.path);
}

const withPeers = (file: ConfigText, peers: PeerConfig[]): Config => ({ ...file.config, peers });
const commentLines = (text: string): string[] => text.split('\n').filter((line) => line.includes('#'));

/** Whether every line of `inner` appears in `outer` in order (the edit only added lines). */
function isSubsequence(inner: string[], outer: string[]): boolean {
  let i = 0;
  for (const line of outer) if (i < inner.length && line === inner[i]) i++;
  return i === inner.length;
}

describe('peerTables', () => {
  it('finds each [[peers]] table of the example with the comment block that introduces it', () => {
    const lines = EXAMPLE.split('\n');
    const [hq, laptop] = peerTables(fileOf(EXAMPLE));
    expect(lines[hq!.first]).toBe('# A peer we dial, pinned by fingerprint. Without `fingerprint` it would be trusted on first use:');
    expect(lines[hq!.header]).toBe('[[peers]]');
    expect(lines[hq!.last]).toMatch(/^# original = true/);
    expect(lines[laptop!.first]).toMatch(/^# A laptop that dials us/);
    expect(lines[laptop!.last]).toBe('networks = ["corp"]');
    expect(lines[laptop!.last + 2]).toBe('[networks.corp]');
  });

  it('gives a comment block set off by blank lines to neither neighbour', () => {
    const text = `[identity]\ncert = "c"\nkey = "k"\n\n[[peers]]\nname = "a"\naddress = "192.0.2.1:1"\nnetworks = ["corp"]\n\n# about the network\n\n[networks.corp]\nprefix = "10.42.0.0/24"\n`;
    const [a] = peerTables(fileOf(text));
    expect(a).toMatchObject({ first: 4, header: 4, last: 7 });
  });

  it('refuses peers written as an inline array, naming the line', () => {
    const text = `peers = [{ name = "a", address = "192.0.2.1:1", networks = ["corp"] }]\n[identity]\ncert = "c"\nkey = "k"\n[networks.corp]\nprefix = "10.42.0.0/24"\n`;
    expect(() => peerTables(fileOf(text))).toThrow(`${FILE}:1: peers: vpnctl edits peers written as [[peers]] tables only`);
  });
});

describe('withPeerAdded', () => {
  it('keeps every comment and blank line of the example, adding the table after the last [[peers]]', () => {
    const file = fileOf(EXAMPLE);
    const peer = newPeer('beta', ['corp'], { address: '198.51.100.7:51820', fingerprint: FP });
    const text = withPeerAdded(file, peer);
    expect(commentLines(text)).toEqual(commentLines(EXAMPLE));
    expect(commentLines(EXAMPLE).length).toBeGreaterThan(20);
    expect(isSubsequence(EXAMPLE.split('\n'), text.split('\n'))).toBe(true);
    // The only new lines: one blank separator and the table, right after laptop's.
    expect(text).toContain(
      `networks = ["corp"]\n\n[[peers]]\nname = "beta"\naddress = "198.51.100.7:51820"\nfingerprint = "${FP}"\nnetworks = ["corp"]\n\n[networks.corp]`,
    );
    expect(text.split('\n').length - EXAMPLE.split('\n').length).toBe(6);
    checkConfigText(file, text, withPeers(file, [...file.config.peers, peer]));
  });

  it('appends to a file without peers, and keeps CRLF line endings', () => {
    const text = '# mine\r\n[identity]\r\ncert = "c"  # cert\r\nkey = "k"\r\n\r\n[networks.corp]\r\nprefix = "10.42.0.0/24"\r\n';
    const file = fileOf(text);
    const peer = newPeer('beta', ['corp'], { address: '198.51.100.7:51820' });
    const edited = withPeerAdded(file, peer);
    expect(edited).toBe(`${text}\r\n[[peers]]\r\nname = "beta"\r\naddress = "198.51.100.7:51820"\r\nnetworks = ["corp"]\r\n`);
    checkConfigText(file, edited, withPeers(file, [peer]));
  });

  it('ends the file with a newline when it had none', () => {
    const text = '[identity]\ncert = "c"\nkey = "k"\n[networks.corp]\nprefix = "10.42.0.0/24"';
    const edited = withPeerAdded(fileOf(text), newPeer('beta', ['corp'], { address: '198.51.100.7:51820' }));
    expect(edited).toBe(`${text}\n\n[[peers]]\nname = "beta"\naddress = "198.51.100.7:51820"\nnetworks = ["corp"]\n`);
  });
});

describe('withPeerReplaced', () => {
  const file = fileOf(EXAMPLE);
  const hq = file.config.peers[0]!;

  it('rewrites only the value that changed, keeping its comment at its column', () => {
    const peer = newPeer('hq', ['corp'], { address: '203.0.113.10:51820', fingerprint: hq.fingerprint, allowedRoutes: ['192.168.10.0/24', '192.168.11.0/24'] });
    const text = withPeerReplaced(file, 0, peer);
    const changed = text.split('\n').filter((line, i) => line !== EXAMPLE.split('\n')[i]);
    expect(changed).toEqual(['allowed_routes = ["192.168.10.0/24", "192.168.11.0/24"]  # hq is a subnet router for its office LAN']);
    checkConfigText(file, text, withPeers(file, [peer, file.config.peers[1]!]));

    const shorter = withPeerReplaced(file, 0, { ...peer, allowedRoutes: [peer.allowedRoutes[1]!] });
    expect(shorter).toContain('\nallowed_routes = ["192.168.11.0/24"]      # hq is a subnet router for its office LAN\n');
  });

  it('pins a peer trusted on first use by adding one line after its address', () => {
    const text = EXAMPLE.replace(/fingerprint = "1f3a[0-9a-f]+"\n/, '');
    const tofu = fileOf(text);
    const pinned = { ...tofu.config.peers[0]!, fingerprint: FP };
    const edited = withPeerReplaced(tofu, 0, pinned);
    expect(edited).toBe(text.replace('address = "203.0.113.10:51820"\n', `address = "203.0.113.10:51820"\nfingerprint = "${FP}"\n`));
    checkConfigText(tofu, edited, withPeers(tofu, [pinned, tofu.config.peers[1]!]));
  });

  it('drops keys now at their default and adds new ones in the documented order, comment lines kept', () => {
    const peer = newPeer('hq', ['corp'], { address: '203.0.113.10:51820', original: true });
    const text = withPeerReplaced(file, 0, peer);
    expect(text).toContain(
      '[[peers]]\nname = "hq"\naddress = "203.0.113.10:51820"\nnetworks = ["corp"]\noriginal = true\n# original = true                         # hq runs the original',
    );
    expect(commentLines(text)).toEqual(commentLines(EXAMPLE).filter((line) => !line.includes('subnet router')));
    checkConfigText(file, text, withPeers(file, [peer, file.config.peers[1]!]));
  });

  it('keeps a key written differently but meaning the same, and rewrites a value over several lines as one', () => {
    const text = `[identity]\ncert = "c"\nkey = "k"\n\n[[peers]]\n  "name" = 'a'   # the office\n  address = "192.0.2.1:1"\n  fingerprint = ""\n  networks = [\n    "corp", # first\n  ]\n  original = false\n\n[networks.corp]\nprefix = "10.42.0.0/24"\n[networks.lab]\nprefix = "10.43.0.0/24"\n`;
    const base = fileOf(text);
    const peer = newPeer('a', ['corp', 'lab'], { address: '192.0.2.1:1', allowedRoutes: ['10.9.0.0/16'] });
    const edited = withPeerReplaced(base, 0, peer);
    expect(edited).toBe(
      text.replace('  networks = [\n    "corp", # first\n  ]\n', '  networks = ["corp", "lab"]\n  allowed_routes = ["10.9.0.0/16"]\n'),
    );
    checkConfigText(base, edited, withPeers(base, [peer]));
  });
});

describe('withPeerRemoved', () => {
  const file = fileOf(EXAMPLE);

  it('removes a table with its introducing comment and one separator, keeping every other line', () => {
    const text = withPeerRemoved(file, 0);
    const lines = EXAMPLE.split('\n');
    const [hq] = peerTables(file);
    expect(text).toBe([...lines.slice(0, hq!.first), ...lines.slice(hq!.last + 2)].join('\n'));
    expect(text).toContain('accept_unknown_peers = false              # true admits certificates no [[peers]] entry names\n\n# A laptop that dials us;');
    checkConfigText(file, text, withPeers(file, [file.config.peers[1]!]));
  });

  it('removes the last table before a section, and the only one at the end of a file', () => {
    const text = withPeerRemoved(file, 1);
    expect(text).toContain('# original = true                         # hq runs the original VibePN (Go): always dialed, its /24 taken as its own address\n\n[networks.corp]');
    checkConfigText(file, text, withPeers(file, [file.config.peers[0]!]));

    const end = fileOf('[identity]\ncert = "c"\nkey = "k"\n[networks.corp]\nprefix = "10.42.0.0/24"\n\n[[peers]]\nname = "a"\naddress = "192.0.2.1:1"\nnetworks = ["corp"]\n');
    expect(withPeerRemoved(end, 0)).toBe('[identity]\ncert = "c"\nkey = "k"\n[networks.corp]\nprefix = "10.42.0.0/24"\n');
  });

  it('removing what was added gives the file back byte for byte', () => {
    const peer = newPeer('beta', ['corp'], { address: '198.51.100.7:51820' });
    const added = checked(file, withPeerAdded(file, peer), withPeers(file, [...file.config.peers, peer]));
    expect(withPeerRemoved(added, 2)).toBe(EXAMPLE);
  });
});

describe('withIdentityFingerprint', () => {
  it('changes the pinned value only, keeping the comment; leaves a file that pins none alone', () => {
    const text = EXAMPLE.replace('# fingerprint = "<64 hex>"   ', `fingerprint = "${'cd'.repeat(32)}"`);
    const file = fileOf(text);
    const edited = withIdentityFingerprint(file, FP);
    expect(edited).toBe(text.replace('cd'.repeat(32), FP));
    expect(edited).toContain('# optional: refuse to start if the cert does not hash to this');
    checkConfigText(file, edited, { ...file.config, identity: { ...file.config.identity, fingerprint: FP } });
    expect(withIdentityFingerprint(fileOf(EXAMPLE), FP)).toBe(EXAMPLE);
  });

  it('finds a fingerprint written as a dotted key', () => {
    const text = `identity.cert = "c"\nidentity.key = "k"\nidentity.fingerprint = '${'cd'.repeat(32)}' # pin\n`;
    expect(withIdentityFingerprint(fileOf(text), FP)).toBe(`identity.cert = "c"\nidentity.key = "k"\nidentity.fingerprint = "${FP}" # pin\n`);
  });
});

describe('writeConfigText', () => {
  it('replaces the file atomically with its mode, through a symlink, after loading the result', () => {
    const real = join(dir, 'real.toml');
    const link = join(dir, 'link.toml');
    writeFileSync(real, EXAMPLE);
    chmodSync(real, 0o640);
    symlinkSync(real, link);
    const file = readConfigText(link);
    const peer = newPeer('beta', ['corp'], { address: '198.51.100.7:51820' });
    writeConfigText(file, withPeerAdded(file, peer), withPeers(file, [...file.config.peers, peer]));
    expect(statSync(real).mode & 0o777).toBe(0o640);
    expect(statSync(link, { throwIfNoEntry: true }).isFile()).toBe(true);
    expect(loadConfig(real).peers.map((p) => p.name)).toEqual(['hq', 'laptop', 'beta']);
    expect(readFileSync(real, 'utf8')).toContain('# A laptop that dials us');
  });

  it('refuses text that does not load as intended, or a file changed meanwhile, and writes nothing', () => {
    const path = join(dir, 'refuse.toml');
    writeFileSync(path, EXAMPLE);
    const file = readConfigText(path);
    const peer = newPeer('beta', ['lab'], { address: '198.51.100.7:51820' });
    const refused = () => writeConfigText(file, withPeerAdded(file, peer), withPeers(file, [...file.config.peers, peer]));
    expect(refused).toThrow(ConfigError);
    // No line number: it would be a line of text that is not on disk.
    expect(refused).toThrow(`cannot change ${path}: it would be refused: peers[2].networks: unknown network 'lab' (configured networks: corp)`);
    const other = newPeer('gamma', ['corp'], { address: '198.51.100.8:51820' });
    expect(() => writeConfigText(file, withPeerAdded(file, other), file.config)).toThrow('cannot edit this file in place (the edited text does not load as the intended config)');
    writeFileSync(path, EXAMPLE + '\n# edited meanwhile\n');
    expect(() => writeConfigText(file, withPeerAdded(file, other), withPeers(file, [...file.config.peers, other]))).toThrow('changed while vpnctl was editing it');
    expect(readFileSync(path, 'utf8')).toBe(EXAMPLE + '\n# edited meanwhile\n');
  });

  it('reports an unreadable file as the loader does', () => {
    expect(() => readConfigText(join(dir, 'missing.toml'))).toThrow('cannot read config file: no such file (create one with `vpnctl init`, or pass -config PATH)');
  });
});
