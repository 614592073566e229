// Runs the built vpnctl as a user would: a subprocess in a temporary directory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { writeConfigFile } from '../../src/config/write.js';
import { formatIp, formatPrefix } from '../../src/netgraph/addr.js';
import { deriveAutoAddress } from '../../src/config/address.js';
import { nodeFileFlags, vpnctlSync } from '../helpers/cli-run.js';

const VPNCTL = resolve(import.meta.dirname, '../../dist/cmd/vpnctl.js');
let dir: string;

function vpnctl(...args: string[]): { code: number; stdout: string; stderr: string } {
  return vpnctlSync(dir, ...args);
}

/** Flags that keep a node's files inside the test directory. */
function nodeFlags(name: string): string[] {
  return nodeFileFlags(dir, name);
}

beforeAll(() => {
  if (!existsSync(VPNCTL)) throw new Error(`${VPNCTL} is missing: run 'npm run build' first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'vibepn-cli-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vpnctl onboarding', () => {
  let invite = '';
  let alphaFingerprint = '';
  let betaFingerprint = '';

  it('init creates an identity and a config', () => {
    const r = vpnctl('init', ...nodeFlags('alpha'), '--listen', '127.0.0.1:51820');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    alphaFingerprint = /fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]!;
    expect(statSync(join(dir, 'alpha/node.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'alpha/node.crt')).mode & 0o777).toBe(0o644);
    const config = loadConfig(join(dir, 'alpha/config.toml'));
    expect(formatPrefix(config.networks.get('corp')!.prefix)).toBe('10.42.0.0/24');
    expect(config.daemon.listen).toStrictEqual({ host: '127.0.0.1', port: 51820 });
  });

  it('invite --long prints a signed vibepn1 string', () => {
    const r = vpnctl('invite', '--config', join(dir, 'alpha/config.toml'), '--network', 'corp', '--address', '127.0.0.1:51820', '--long');
    expect(r.code).toBe(0);
    invite = r.stdout.trim();
    expect(invite).toMatch(/^vibepn1:[A-Za-z0-9_-]+$/);
  });

  it('join creates a second identity with the inviter pinned', () => {
    const corp = loadConfig(join(dir, 'alpha/config.toml')).networks.get('corp')!.prefix;
    const auto = (fp: string): string => formatIp(deriveAutoAddress('corp', corp, fp));
    let r = vpnctl('join', ...nodeFlags('beta'), '--invite', invite, '--listen', '127.0.0.1:51821');
    // Random keys: 1 in 254 share alpha's auto address, which doctor rightly warns about below.
    while (r.code === 0 && auto(/fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]!) === auto(alphaFingerprint)) {
      r = vpnctl('join', ...nodeFlags('beta'), '--invite', invite, '--listen', '127.0.0.1:51821', '--force');
    }
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('joined network corp');
    betaFingerprint = /fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain(`vpnctl add-peer --name beta`);
    const config = loadConfig(join(dir, 'beta/config.toml'));
    expect(config.peers).toEqual([
      { name: 'alpha', address: { host: '127.0.0.1', port: 51820 }, fingerprint: alphaFingerprint, networks: ['corp'], allowedRoutes: [] },
    ]);
  });

  it('add-peer adds the joiner to the inviter', () => {
    const r = vpnctl('add-peer', '--config', join(dir, 'alpha/config.toml'), '--name', 'beta', '--address', '127.0.0.1:51821', '--fingerprint', betaFingerprint, '--networks', 'corp');
    expect(r.code).toBe(0);
    expect(loadConfig(join(dir, 'alpha/config.toml')).peers[0]?.fingerprint).toBe(betaFingerprint);
    const again = vpnctl('add-peer', '--config', join(dir, 'alpha/config.toml'), '--name', 'beta', '--address', '127.0.0.1:51821', '--networks', 'corp');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("peer 'beta' is already in");
    expect(again.stderr).toContain('--force');
  });

  it('add-peer --original marks an original VibePN node, and needs its address', () => {
    const config = join(dir, 'alpha/config.toml');
    const r = vpnctl('add-peer', '--config', config, '--name', 'old', '--address', '127.0.0.1:51830', '--fingerprint', 'ab'.repeat(32), '--networks', 'corp', '--original');
    expect(r.code).toBe(0);
    expect(loadConfig(config).peers.find((p) => p.name === 'old')?.original).toBe(true);
    const inbound = vpnctl('add-peer', '--config', config, '--name', 'old2', '--address', '', '--fingerprint', 'cd'.repeat(32), '--networks', 'corp', '--original');
    expect(inbound.code).toBe(2);
    expect(inbound.stderr).toContain('--original needs --address');
    // Leave alpha's config as the later tests expect it.
    const cleaned = loadConfig(config);
    writeConfigFile(config, { ...cleaned, peers: cleaned.peers.filter((p) => p.name !== 'old') }, { force: true });
  });

  it('doctor passes on both configs, as text and as JSON', () => {
    for (const name of ['alpha', 'beta']) {
      const r = vpnctl('doctor', '--config', join(dir, name, 'config.toml'));
      expect(r.stdout).toMatch(/all \d+ checks passed/);
      expect(r.code).toBe(0);
      const json = vpnctl('doctor', '--config', join(dir, name, 'config.toml'), '--json');
      expect(json.code).toBe(0);
      const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: Array<{ check: string; ok: boolean; level: string }> };
      expect(parsed.ok).toBe(true);
      expect(parsed.checks.map((c) => c.check)).toEqual(expect.arrayContaining(['config', 'key permissions', 'key matches certificate', 'certificate validity']));
      // Every peer here is pinned, so nothing is even a warning.
      expect(parsed.checks.map((c) => c.level)).toEqual(parsed.checks.map(() => 'ok'));
    }
  });

  it('doctor fails on an unsafe key file and names the fix', () => {
    const key = join(dir, 'alpha/node.key');
    chmodSync(key, 0o644);
    try {
      const r = vpnctl('doctor', '--config', join(dir, 'alpha/config.toml'));
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('[FAIL] key permissions');
      expect(r.stdout).toContain(`fix: chmod 600 ${key}`);
    } finally {
      chmodSync(key, 0o600);
    }
  });

  it('doctor fails on a key that does not match the certificate', () => {
    const keyA = readFileSync(join(dir, 'alpha/node.key'));
    writeFileSync(join(dir, 'alpha/node.key'), readFileSync(join(dir, 'beta/node.key')), { mode: 0o600 });
    try {
      const r = vpnctl('doctor', '--config', join(dir, 'alpha/config.toml'), '--json');
      expect(r.code).toBe(1);
      const parsed = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ check: string; ok: boolean; level: string }> };
      expect(parsed.ok).toBe(false);
      expect(parsed.checks.find((c) => c.check === 'key matches certificate')).toMatchObject({ ok: false, level: 'fail' });
    } finally {
      writeFileSync(join(dir, 'alpha/node.key'), keyA, { mode: 0o600 });
    }
  });

  it('join refuses a tampered invite', () => {
    const body = invite.slice('vibepn1:'.length);
    const json = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { payload: string; sig: string };
    json.payload = json.payload.replace('10.42.0.0/24', '10.66.0.0/24');
    const tampered = 'vibepn1:' + Buffer.from(JSON.stringify(json)).toString('base64url');
    const r = vpnctl('join', ...nodeFlags('mallory'), '--invite', tampered);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/signature/i);
    expect(existsSync(join(dir, 'mallory/config.toml'))).toBe(false);
  });

  it('join accepts an invite file', () => {
    const file = join(dir, 'invite.txt');
    const out = vpnctl('invite', '--config', join(dir, 'alpha/config.toml'), '--network', 'corp', '--address', '127.0.0.1:51820', '--ttl', '1h', '--out', file);
    expect(out.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const r = vpnctl('join', ...nodeFlags('gamma'), '--invite-file', file);
    expect(r.code).toBe(0);
  });
});

describe('vpnctl failures', () => {
  it('refuses to overwrite existing files without --force', () => {
    const first = vpnctl('init', ...nodeFlags('delta'));
    expect(first.code).toBe(0);
    const second = vpnctl('init', ...nodeFlags('delta'));
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('already exist');
    expect(second.stderr).toContain('--force');
    const forced = vpnctl('init', ...nodeFlags('delta'), '--force');
    expect(forced.code).toBe(0);
  });

  it('rejects a bad CIDR as a usage error', () => {
    const r = vpnctl('init', ...nodeFlags('epsilon'), '--prefix', '10.42.0.0/33');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'10.42.0.0/33' is not a valid CIDR");
    expect(existsSync(join(dir, 'epsilon/node.key'))).toBe(false);
  });

  it('rejects a bad --listen or --metrics-listen as a usage error, with the config\'s own message', () => {
    const listen = vpnctl('init', ...nodeFlags('eta'), '--listen', '0.0.0.0');
    expect(listen.code).toBe(2);
    expect(listen.stderr).toContain("--listen '0.0.0.0' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820)");
    const metrics = vpnctl('init', ...nodeFlags('eta'), '--metrics-listen', '9000');
    expect(metrics.code).toBe(2);
    expect(metrics.stderr).toContain(`--metrics-listen '9000' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use "" to disable metrics`);
    expect(existsSync(join(dir, 'eta/node.key'))).toBe(false);
  });

  it('rejects an --address outside the prefix as a usage error', () => {
    const r = vpnctl('init', ...nodeFlags('theta'), '--address', '10.43.0.1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--address '10.43.0.1' is outside prefix 10.42.0.0/24");
    expect(existsSync(join(dir, 'theta/config.toml'))).toBe(false);
  });

  it('rejects an invite --address that is not HOST:PORT', () => {
    const r = vpnctl('invite', '--config', join(dir, 'alpha/config.toml'), '--network', 'corp', '--address', '[fd00::1]');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--address '[fd00::1]' is not a valid HOST:PORT (expected [IPv6]:PORT, e.g. [fd00::1]:51820)");
  });

  it('rejects a missing required flag as a usage error', () => {
    const r = vpnctl('invite', '--config', join(dir, 'alpha/config.toml'), '--address', '127.0.0.1:1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing required flag --network');
  });

  it('rejects an unknown command and an unknown flag', () => {
    expect(vpnctl('frobnicate').code).toBe(2);
    const r = vpnctl('init', '--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--bogus');
  });

  it('refuses an invite for a network the config does not have', () => {
    const r = vpnctl('invite', '--config', join(dir, 'alpha/config.toml'), '--network', 'nope', '--address', '127.0.0.1:1');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("network 'nope' is not in");
  });

  it('reports a missing config file clearly', () => {
    const r = vpnctl('doctor', '--config', join(dir, 'missing.toml'));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('missing.toml');
  });

  it('reports an unreachable daemon', () => {
    const r = vpnctl('status', '--socket', join(dir, 'none.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach the vibepn daemon');
  });

  it('answers -h for every subcommand', () => {
    for (const cmd of ['init', 'invite', 'invites', 'join', 'add-peer', 'doctor', 'status', 'peers', 'routes', 'reload', 'goodbye', 'ping', 'members', 'revoke']) {
      const r = vpnctl(cmd, '-h');
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain(`usage: vpnctl`);
    }
    expect(vpnctl('--help').code).toBe(0);
  });
});

describe('vpnctl paths', () => {
  it('resolves relative path flags against the working directory', () => {
    const init = vpnctl('init', '--config', 'rel/config.toml', '--cert', 'rel/node.crt', '--key', 'rel/node.key', '--name', 'rel', '--socket', 'rel/vpn.sock', '--known-peers', 'rel/kp.json');
    expect(init.code).toBe(0);
    const config = loadConfig(join(dir, 'rel/config.toml'));
    expect(config.identity.cert).toBe(join(dir, 'rel/node.crt'));
    expect(config.daemon.controlSocket).toBe(join(dir, 'rel/vpn.sock'));
    const doctor = vpnctl('doctor', '--config', 'rel/config.toml');
    expect(doctor.stdout).toMatch(/all \d+ checks passed/);
    expect(doctor.code).toBe(0);
  });
});

describe('vpnctl trust checks', () => {
  const config = () => join(dir, 'trust', 'config.toml');
  let own = '';
  const other = 'ab'.repeat(32);
  const inboundOnlyFix =
    '(an inbound-only peer is never dialed, so its key cannot be learned on first use; add --fingerprint <64 hex> as printed by vpnctl status on that node)';

  beforeAll(() => {
    const r = vpnctl('init', ...nodeFlags('trust'));
    expect(r.code).toBe(0);
    own = /fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]!;
  });

  it('add-peer refuses an inbound-only peer without --fingerprint', () => {
    const before = readFileSync(config(), 'utf8');
    const r = vpnctl('add-peer', '--config', config(), '--name', 'laptop', '--address', '', '--networks', 'corp');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`vpnctl: --address "" needs --fingerprint ${inboundOnlyFix}`);
    expect(readFileSync(config(), 'utf8')).toBe(before);
    const pinned = vpnctl('add-peer', '--config', config(), '--name', 'laptop', '--address', '', '--fingerprint', other, '--networks', 'corp');
    expect(pinned.code).toBe(0);
    expect(pinned.stdout).toContain('added peer laptop (inbound only, pinned abababababababab…)');
    expect(loadConfig(config()).peers[0]).toStrictEqual({ name: 'laptop', address: null, fingerprint: other, networks: ['corp'], allowedRoutes: [] });
  });

  it("add-peer refuses this node's own fingerprint", () => {
    const before = readFileSync(config(), 'utf8');
    const r = vpnctl('add-peer', '--config', config(), '--name', 'me', '--address', '127.0.0.1:51999', '--fingerprint', own.toUpperCase(), '--networks', 'corp');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`vpnctl: --fingerprint ${own} is this node's own (${join(dir, 'trust/node.crt')}); a node cannot be its own peer`);
    expect(readFileSync(config(), 'utf8')).toBe(before);
  });

  it('add-peer and doctor warn when a pinned peer would derive the same auto address as this node, naming the fix', () => {
    const r = vpnctl('init', ...nodeFlags('clash'));
    expect(r.code).toBe(0);
    const mine = /fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]!;
    const corp = loadConfig(join(dir, 'clash', 'config.toml')).networks.get('corp')!;
    const address = formatIp(deriveAutoAddress('corp', corp.prefix, mine));
    let twin = '';
    for (let i = 0; twin === ''; i++) {
      const candidate = createHash('sha256').update(`twin ${i}`).digest('hex');
      if (formatIp(deriveAutoAddress('corp', corp.prefix, candidate)) === address) twin = candidate;
    }
    const added = vpnctl('add-peer', '--config', join(dir, 'clash', 'config.toml'), '--name', 'twin', '--address', '127.0.0.1:51998', '--fingerprint', twin, '--networks', 'corp');
    expect(added.code).toBe(0);
    const warning = `this node and peer twin both derive ${address} in 10.42.0.0/24; if both use address = "auto", the second one's route is refused as a conflict: set a static networks.corp.address on one of them (or use a larger prefix)`;
    expect(added.stderr).toContain(`warning: ${warning}`);
    const doctor = vpnctl('doctor', '--config', join(dir, 'clash', 'config.toml'));
    expect(doctor.stdout).toContain(`both derive ${address}`);
  });

  it('add-peer parses its values with the config rules', () => {
    const address = vpnctl('add-peer', '--config', config(), '--name', 'x', '--address', 'x.example', '--networks', 'corp');
    expect(address.code).toBe(2);
    expect(address.stderr).toContain(`--address 'x.example' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use "" to only accept inbound connections`);
    const fingerprint = vpnctl('add-peer', '--config', config(), '--name', 'x', '--address', 'x.example:1', '--fingerprint', 'abc', '--networks', 'corp');
    expect(fingerprint.code).toBe(2);
    expect(fingerprint.stderr).toContain("--fingerprint 'abc' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)");
    const routes = vpnctl('add-peer', '--config', config(), '--name', 'x', '--address', 'x.example:1', '--networks', 'corp', '--allowed-routes', '10.0.0.1/8');
    expect(routes.code).toBe(2);
    expect(routes.stderr).toContain("--allowed-routes '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)");
  });

  it('doctor warns about an unpinned peer, with the command that pins it, and still exits 0', () => {
    const add = vpnctl('add-peer', '--config', config(), '--name', 'hq', '--address', '[fd00::1]:51820', '--networks', 'corp', '--allowed-routes', '192.168.10.0/24');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('added peer hq ([fd00::1]:51820, trust on first use)');

    const r = vpnctl('doctor', '--config', config());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '[warn] peer hq: [fd00::1]:51820, networks corp: not pinned, so trusted on first use — whatever key answers the first connection to [fd00::1]:51820 is believed (nothing learned yet)',
    );
    expect(r.stdout).toContain(
      `       fix: vpnctl add-peer --config ${config()} --name hq --address '[fd00::1]:51820' --fingerprint <fp> --networks corp --allowed-routes 192.168.10.0/24 --force`,
    );
    expect(r.stdout).toContain('(or pin fingerprint = "<fp>" in its [[peers]] entry)');
    expect(r.stdout).toMatch(/all \d+ checks passed \(1 warning\)/);

    const json = JSON.parse(vpnctl('doctor', '--config', config(), '--json').stdout) as {
      ok: boolean;
      checks: Array<{ check: string; ok: boolean; level: string; fix?: string }>;
    };
    expect(json.ok).toBe(true);
    expect(json.checks.find((c) => c.check === 'peer hq')).toMatchObject({ ok: true, level: 'warn' });
    expect(json.checks.find((c) => c.check === 'peer laptop')).toMatchObject({ ok: true, level: 'ok' });
  });

  it('the printed fix pins the peer and clears the warning', () => {
    const r = vpnctl('add-peer', '--config', config(), '--name', 'hq', '--address', '[fd00::1]:51820', '--fingerprint', 'cd'.repeat(32), '--networks', 'corp', '--allowed-routes', '192.168.10.0/24', '--force');
    expect(r.code).toBe(0);
    const doctor = vpnctl('doctor', '--config', config());
    expect(doctor.stdout).not.toContain('[warn]');
    expect(doctor.stdout).toMatch(/all \d+ checks passed\n/);
    expect(formatPrefix(loadConfig(config()).peers.find((p) => p.name === 'hq')!.allowedRoutes[0]!)).toBe('192.168.10.0/24');
  });

  it('doctor fails a [[peers]] entry pinned to this node itself, naming the line and the fix', () => {
    const path = join(dir, 'trust', 'self.toml');
    const text = readFileSync(config(), 'utf8') + `\n[[peers]]\nname = "me"\naddress = "127.0.0.1:51999"\nfingerprint = "${own}"\nnetworks = ["corp"]\n`;
    writeFileSync(path, text);
    const line = text.split('\n').indexOf(`fingerprint = "${own}"`) + 1;
    const r = vpnctl('doctor', '--config', path);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `[FAIL] peer me: ${path}:${line}: peers[2].fingerprint: peer 'me' is pinned to this node's own fingerprint ${own}; a node cannot be its own peer (remove that [[peers]] entry)`,
    );
    expect(r.stdout).toContain(`       fix: remove that [[peers]] entry from ${path}`);
    const json = JSON.parse(vpnctl('doctor', '--config', path, '--json').stdout) as { ok: boolean; checks: Array<{ check: string; level: string }> };
    expect(json.ok).toBe(false);
    expect(json.checks.find((c) => c.check === 'peer me')).toMatchObject({ level: 'fail' });
    // add-peer on such a file says so, and still adds a different peer.
    const add = vpnctl('add-peer', '--config', path, '--name', 'other', '--address', '127.0.0.1:52000', '--fingerprint', 'ef'.repeat(32), '--networks', 'corp');
    expect(add.code).toBe(0);
    expect(add.stderr).toContain(`warning: ${path}:${line}: peers[2].fingerprint: peer 'me' is pinned to this node's own fingerprint`);
  });

  it('doctor reports an inbound-only peer without a fingerprint as a config error at its entry', () => {
    const path = join(dir, 'trust', 'inbound.toml');
    const text = readFileSync(config(), 'utf8') + '\n[[peers]]\nname = "phone"\naddress = ""\nnetworks = ["corp"]\n';
    writeFileSync(path, text);
    const line = text.split('\n').lastIndexOf('[[peers]]') + 1;
    const r = vpnctl('doctor', '--config', path);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `[FAIL] config: ${path}:${line}: peers[2].fingerprint: required when address is "" (an inbound-only peer is never dialed, so its key cannot be learned on first use; add fingerprint = "<64 hex>" as printed by vpnctl status on that node)`,
    );
    expect(r.stdout).toContain(`fix: edit ${path}`);
  });
});
