// Runs the built vpnctl as a user would: a subprocess in a temporary directory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../src/config/load.js';

const VPNCTL = resolve(import.meta.dirname, '../../dist/cmd/vpnctl.js');
let dir: string;

function vpnctl(...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [VPNCTL, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Flags that keep a node's files inside the test directory. */
function nodeFlags(name: string): string[] {
  return [
    '--config', join(dir, name, 'config.toml'),
    '--cert', join(dir, name, 'node.crt'),
    '--key', join(dir, name, 'node.key'),
    '--name', name,
    '--socket', join(dir, name, 'vpn.sock'),
    '--known-peers', join(dir, name, 'known_peers.json'),
    '--metrics-listen', '',
  ];
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
    expect(config.networks.get('corp')?.prefix).toBe('10.42.0.0/24');
    expect(config.daemon.listen).toBe('127.0.0.1:51820');
  });

  it('invite prints a signed vibepn1 string', () => {
    const r = vpnctl('invite', '--config', join(dir, 'alpha/config.toml'), '--network', 'corp', '--address', '127.0.0.1:51820');
    expect(r.code).toBe(0);
    invite = r.stdout.trim();
    expect(invite).toMatch(/^vibepn1:[A-Za-z0-9_-]+$/);
  });

  it('join creates a second identity with the inviter pinned', () => {
    const r = vpnctl('join', ...nodeFlags('beta'), '--invite', invite, '--listen', '127.0.0.1:51821');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('joined network corp');
    betaFingerprint = /fingerprint ([0-9a-f]{64})/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain(`vpnctl add-peer --name beta`);
    const config = loadConfig(join(dir, 'beta/config.toml'));
    expect(config.peers).toEqual([
      { name: 'alpha', address: '127.0.0.1:51820', fingerprint: alphaFingerprint, networks: ['corp'], allowedRoutes: [] },
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

  it('doctor passes on both configs, as text and as JSON', () => {
    for (const name of ['alpha', 'beta']) {
      const r = vpnctl('doctor', '--config', join(dir, name, 'config.toml'));
      expect(r.stdout).toMatch(/all \d+ checks passed/);
      expect(r.code).toBe(0);
      const json = vpnctl('doctor', '--config', join(dir, name, 'config.toml'), '--json');
      expect(json.code).toBe(0);
      const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: Array<{ check: string; ok: boolean }> };
      expect(parsed.ok).toBe(true);
      expect(parsed.checks.map((c) => c.check)).toEqual(expect.arrayContaining(['config', 'key permissions', 'key matches certificate', 'certificate validity']));
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
      const parsed = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ check: string; ok: boolean }> };
      expect(parsed.ok).toBe(false);
      expect(parsed.checks.find((c) => c.check === 'key matches certificate')?.ok).toBe(false);
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
    for (const cmd of ['init', 'invite', 'join', 'add-peer', 'doctor', 'status', 'peers', 'routes', 'reload', 'goodbye']) {
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
