// vpnctl's commands on files, run in-process: remove-peer, forget and rekey (which cmd/vpnctl.ts
// does not dispatch yet; test/integration/cli-files.test.ts has their subprocess tests), and the
// cases of add-peer, join and doctor that need a hand-made file.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAddPeer } from '../../../src/cli/add-peer.js';
import { runDoctor } from '../../../src/cli/doctor.js';
import { runForget } from '../../../src/cli/forget.js';
import { runInit, runJoin } from '../../../src/cli/onboard.js';
import { runRekey } from '../../../src/cli/rekey.js';
import { runRemovePeer } from '../../../src/cli/remove-peer.js';
import { loadConfig } from '../../../src/config/load.js';
import { fingerprintOfPem, loadIdentity } from '../../../src/crypto/identity.js';
import { createInvite } from '../../../src/crypto/invite.js';
import { runCommand } from './run-command.js';

const EXAMPLE = resolve(import.meta.dirname, '../../../examples/config.toml');
const FP_A = 'ab'.repeat(32);
const FP_B = 'cd'.repeat(32);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-cli-files-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A node made by `vpnctl init` in its own directory; returns its config path and fingerprint. */
async function initNode(name: string, ...extra: string[]): Promise<{ config: string; fingerprint: string; dir: string }> {
  const home = join(dir, name);
  const r = await runCommand(runInit, [
    '--config', join(home, 'config.toml'), '--cert', join(home, 'node.crt'), '--key', join(home, 'node.key'), '--name', name,
    '--socket', join(home, 'vpn.sock'), '--known-peers', join(home, 'known_peers.json'), '--metrics-listen', '', '--json', ...extra,
  ]);
  expect(r.stderr).toBe('');
  const json = JSON.parse(r.stdout) as { fingerprint: string; config: string };
  return { config: json.config, fingerprint: json.fingerprint, dir: home };
}

/** A copy of examples/config.toml whose known-peers file lives in the test directory. */
function exampleCopy(name: string, edit: (text: string) => string = (t) => t): { path: string; knownPeers: string } {
  const path = join(dir, `${name}.toml`);
  const knownPeers = join(dir, `${name}-known.json`);
  writeFileSync(path, edit(readFileSync(EXAMPLE, 'utf8').replace('/var/lib/vibepn/known_peers.json', knownPeers)));
  return { path, knownPeers };
}

describe('vpnctl remove-peer', () => {
  it('removes the table as text, comments elsewhere kept, and says to reload', async () => {
    const { path } = exampleCopy('remove');
    const before = readFileSync(path, 'utf8');
    const r = await runCommand(runRemovePeer, ['--config', path, 'hq']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`removed peer hq (203.0.113.10:51820) from ${path}\nif the daemon is running: vpnctl reload (it says Goodbye to hq and drops its routes)\n`);
    const after = readFileSync(path, 'utf8');
    const start = before.indexOf('# A peer we dial');
    const end = before.indexOf('# A laptop');
    expect(after).toBe(before.slice(0, start) + before.slice(end));
    expect(loadConfig(path).peers.map((p) => p.name)).toEqual(['laptop']);
  });

  it('refuses an unknown name with exit 1, listing the names, and a missing one as a usage error', async () => {
    const { path } = exampleCopy('remove-unknown');
    const before = readFileSync(path, 'utf8');
    const unknown = await runCommand(runRemovePeer, ['--config', path, 'hqq']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`vpnctl: no peer named 'hqq' in ${path} (peers: hq, laptop)\n`);
    expect((await runCommand(runRemovePeer, ['--config', path])).code).toBe(2);
    expect((await runCommand(runRemovePeer, ['--config', path, 'hq', 'laptop'])).stderr).toContain('expected one peer NAME, got hq laptop');
    expect(readFileSync(path, 'utf8')).toBe(before);
  });

  it('with --json prints one object; mentions a key learned on first use that stays', async () => {
    const { path, knownPeers } = exampleCopy('remove-json');
    writeFileSync(knownPeers, JSON.stringify({ laptop: FP_A }));
    const r = await runCommand(runRemovePeer, ['--config', path, 'laptop', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      removed: { name: 'laptop', address: '', fingerprint: '9c4e2a7f1b3d5e6f8a0c2e4b6d8f0a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d0f', networks: ['corp'] },
      config: path,
      learned_fingerprint: FP_A,
      forget_command: `vpnctl forget --config ${path} laptop`,
      next: 'vpnctl reload',
    });
    const text = await runCommand(runRemovePeer, ['--config', path, 'hq']);
    expect(text.stdout).not.toContain('forget');
  });
});

describe('vpnctl forget', () => {
  /** The example with hq trusted on first use instead of pinned. */
  const unpinned = (text: string): string => text.replace(/fingerprint = "1f3a[0-9a-f]+"\n/, '');

  it('drops a learned key, keeps the others and the file mode, and says to reload', async () => {
    const { path, knownPeers } = exampleCopy('forget', unpinned);
    writeFileSync(knownPeers, JSON.stringify({ hq: FP_A, old: FP_B }), { mode: 0o600 });
    const r = await runCommand(runForget, ['--config', path, 'hq']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(
      `forgot the key learned for peer hq (${FP_A}) in ${knownPeers}\n` +
        `  the next key it presents on a connection to 203.0.113.10:51820 is trusted on first use again\n` +
        'if the daemon is running: vpnctl reload now (until then it trusts the old key, and may write it back)\n',
    );
    expect(JSON.parse(readFileSync(knownPeers, 'utf8'))).toEqual({ old: FP_B });
    expect(statSync(knownPeers).mode & 0o777).toBe(0o600);
    // A name left from a removed peer can be forgotten too.
    const stale = await runCommand(runForget, ['--config', path, 'old', '--json']);
    expect(stale.code).toBe(0);
    expect(JSON.parse(stale.stdout)).toMatchObject({ name: 'old', forgotten: FP_B, configured: false, pinned: null, next: 'vpnctl reload' });
    expect(JSON.parse(readFileSync(knownPeers, 'utf8'))).toEqual({});
  });

  it('refuses an unknown name with exit 1, listing configured and learned names', async () => {
    const { path, knownPeers } = exampleCopy('forget-unknown', unpinned);
    writeFileSync(knownPeers, JSON.stringify({ hq: FP_A }));
    const r = await runCommand(runForget, ['--config', path, 'nobody']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`vpnctl: no peer named 'nobody' in ${path} or ${knownPeers} (peers: hq, laptop; learned: hq)\n`);
  });

  it('says a pinned peer is pinned in the config (exit 1, with the command that changes the pin), or drops a stale entry it has', async () => {
    const { path, knownPeers } = exampleCopy('forget-pinned');
    const line = readFileSync(path, 'utf8').split('\n').indexOf('fingerprint = "9c4e2a7f1b3d5e6f8a0c2e4b6d8f0a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d0f"') + 1;
    const pinned = await runCommand(runForget, ['--config', path, 'laptop']);
    expect(pinned.code).toBe(1);
    expect(pinned.stderr).toBe(
      `vpnctl: peer 'laptop' is pinned in the config (${path}:${line}, fingerprint 9c4e2a7f1b3d5e6f…): nothing learned to forget; ` +
        `if its key changed, pin the new one: vpnctl add-peer --config ${path} --name laptop --address '' --fingerprint <new fp> --networks corp --force\n`,
    );
    writeFileSync(knownPeers, JSON.stringify({ laptop: FP_A }));
    const stale = await runCommand(runForget, ['--config', path, 'laptop']);
    expect(stale.code).toBe(0);
    expect(stale.stdout).toContain(`laptop is pinned in the config (${path}:${line}), which decides its key; the learned entry did not count`);
    expect(JSON.parse(readFileSync(knownPeers, 'utf8'))).toEqual({});
  });

  it('has nothing to do for an unpinned peer not learned yet, and leaves a missing file missing', async () => {
    const { path, knownPeers } = exampleCopy('forget-nothing', unpinned);
    const r = await runCommand(runForget, ['--config', path, 'hq']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`nothing learned for peer hq in ${knownPeers} yet: its key is learned from the first connection to 203.0.113.10:51820\n`);
    expect(() => statSync(knownPeers)).toThrow();
  });
});

describe('vpnctl rekey', () => {
  it("is doctor's fix for a damaged certificate, and replaces only the identity: the config stays byte for byte", async () => {
    const node = await initNode('rekeyed', '--listen', '0.0.0.0:51900');
    expect((await runCommand(runAddPeer, ['--config', node.config, '--name', 'hq', '--address', '203.0.113.10:51820', '--fingerprint', FP_A, '--networks', 'corp'])).code).toBe(0);
    writeFileSync(node.config, `# my notes\n${readFileSync(node.config, 'utf8')}\n[daemon.extra]\n`.replace('\n[daemon.extra]\n', '\n# the end\n'));
    const config = readFileSync(node.config, 'utf8');
    const cert = join(node.dir, 'node.crt');
    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n');

    const doctor = await runCommand(runDoctor, ['--config', node.config, '--json']);
    expect(doctor.code).toBe(1);
    const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ check: string; fix?: string }> }).checks;
    const fix = checks.find((c) => c.check === 'certificate')!.fix!;
    expect(fix).toContain(`vpnctl rekey --config ${node.config} --force for a new identity at the same paths (the config stays as it is`);
    expect(fix).not.toContain('init');

    const refused = await runCommand(runRekey, ['--config', node.config]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('pass --force to go ahead');

    // Exactly the fix doctor printed. The damaged certificate's name is lost with it, so the new
    // one is named after this host, and the command says how to keep the name peers know.
    const r = await runCommand(runRekey, fix.split(' for ')[0]!.split(' ').slice(2));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: ${cert} could not be read, so the new certificate is named '${hostname()}' after this host; if peers know this node by another name, run again with --name NAME\n`);
    const fingerprint = fingerprintOfPem(readFileSync(cert, 'utf8'));
    expect(fingerprint).not.toBe(node.fingerprint);
    expect(readFileSync(node.config, 'utf8')).toBe(config);
    expect(r.stdout).toContain(`new identity ${hostname()}\n  fingerprint ${fingerprint}\n`);
    expect(r.stdout).toContain(`${node.config} is unchanged\n`);
    expect(r.stdout).toContain(`    vpnctl add-peer --name ${hostname()} --address <this-host>:51900 --fingerprint ${fingerprint} --networks corp --force\n`);
    expect(r.stdout).toContain(`    vpnctl forget ${hostname()}\n`);
    expect(loadIdentity(cert, join(node.dir, 'node.key')).name).toBe(hostname());
    // With the certificate readable, its name carries over.
    const again = await runCommand(runRekey, ['--config', node.config, '--force']);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toContain(`new identity ${hostname()} (replaces ${fingerprint.slice(0, 16)}…)\n`);
    expect(statSync(join(node.dir, 'node.key')).mode & 0o777).toBe(0o600);
    const after = await runCommand(runDoctor, ['--config', node.config]);
    expect(after.stdout).toMatch(/all \d+ checks passed/);
    expect(after.code).toBe(0);
  });

  it('updates a pinned identity.fingerprint in place and reports the old fingerprint and addresses (--json)', async () => {
    const node = await initNode('pinned');
    const text = readFileSync(node.config, 'utf8').replace('[identity]\n', `[identity]\nfingerprint = "${node.fingerprint}"   # pinned on purpose\n`);
    writeFileSync(node.config, text);
    const r = await runCommand(runRekey, ['--config', node.config, '--force', '--json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { fingerprint: string; previous_fingerprint: string; config_changed: boolean; addresses: Array<{ network: string; address: string; previous: string }>; add_peer_command: string };
    expect(json.previous_fingerprint).toBe(node.fingerprint);
    expect(json.config_changed).toBe(true);
    expect(readFileSync(node.config, 'utf8')).toBe(text.replace(node.fingerprint, json.fingerprint));
    expect(loadConfig(node.config).identity.fingerprint).toBe(json.fingerprint);
    expect(json.addresses).toEqual([{ network: 'corp', address: expect.stringMatching(/^10\.42\.0\.\d+$/), previous: expect.stringMatching(/^10\.42\.0\.\d+$/) }]);
    expect(json.add_peer_command).toContain(`--fingerprint ${json.fingerprint}`);
  });
});

describe('vpnctl add-peer (hand-made files)', () => {
  it('refuses a fingerprint another peer has, naming it and its line in the file on disk', async () => {
    const { path } = exampleCopy('dup');
    const line = readFileSync(path, 'utf8').split('\n').findIndex((l) => l.startsWith('fingerprint = "1f3a')) + 1;
    const r = await runCommand(runAddPeer, ['--config', path, '--name', 'x', '--address', '198.51.100.1:1', '--fingerprint', '1f3a5c7e9b0d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a0c2e4b6d8f0a', '--networks', 'corp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--fingerprint 1f3a5c7e9b0d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a0c2e4b6d8f0a is already pinned for peer 'hq' (${path}:${line})`);
    expect((await runCommand(runAddPeer, ['--config', path, '--name', 'x', '--address', '198.51.100.1:1', '--networks', 'corp,corp'])).stderr).toContain("--networks lists 'corp' twice");
  });

  it('refuses a file whose peers are an inline array instead of rewriting it', async () => {
    const path = join(dir, 'inline.toml');
    const text = `peers = [{ name = "a", address = "192.0.2.1:1", networks = ["corp"] }]\n[identity]\ncert = "c"\nkey = "k"\n[networks.corp]\nprefix = "10.42.0.0/24"\n`;
    writeFileSync(path, text);
    const r = await runCommand(runAddPeer, ['--config', path, '--name', 'b', '--address', '192.0.2.2:1', '--networks', 'corp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}:1: peers: vpnctl edits peers written as [[peers]] tables only`);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });
});

describe('vpnctl join', () => {
  it("refuses an invite whose inviter name this node's config could not list as a peer", async () => {
    const inviter = await initNode('inviter');
    const identity = loadIdentity(join(inviter.dir, 'node.crt'), join(inviter.dir, 'node.key'));
    const invite = createInvite(identity, { network: 'corp', prefix: '10.42.0.0/24', address: '127.0.0.1:51820', name: 'bob the builder' });
    const home = join(dir, 'joiner');
    const r = await runCommand(runJoin, ['--config', join(home, 'c.toml'), '--cert', join(home, 'n.crt'), '--key', join(home, 'n.key'), '--name', 'joiner', '--invite', invite]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "vpnctl: the invite's inviter name 'bob the builder' is not a valid peer name (1..255 characters from A-Z a-z 0-9 _ . -), " +
        'and this node would list the inviter under it: ask for a new invite made with vpnctl invite --long --name NAME\n',
    );
    expect(() => statSync(home)).toThrow();
  });
});

describe('examples/config.toml', () => {
  it('stays a file add-peer and remove-peer can edit', async () => {
    const path = join(dir, 'roundtrip.toml');
    copyFileSync(EXAMPLE, path);
    const before = readFileSync(path, 'utf8');
    expect((await runCommand(runAddPeer, ['--config', path, '--name', 'beta', '--address', '198.51.100.7:51820', '--networks', 'corp'])).code).toBe(0);
    expect((await runCommand(runRemovePeer, ['--config', path, 'beta'])).code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe(before);
  });
});
