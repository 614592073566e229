// One-step joining (issue 12) through the built vpnctl, as a user runs it: init makes the creator
// the network's admin, invite makes a short vibepn2: invite recorded in the admin's ledger, and
// join writes the admin as a pinned peer and admin plus the invite for the daemon to redeem.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { formatPrefix } from '../../src/netgraph/addr.js';
import { decodeShortInvite, encodeShortInvite, type ShortInviteFields } from '../../src/invite/short-invite.js';
import { nodeFileFlags, vpnctlSync } from '../helpers/cli-run.js';

const VPNCTL = resolve(import.meta.dirname, '../../dist/cmd/vpnctl.js');
let dir: string;
let alphaFp = '';
const alphaConfig = () => join(dir, 'alpha/config.toml');

function vpnctl(...args: string[]): { code: number; stdout: string; stderr: string } {
  return vpnctlSync(dir, ...args);
}

function nodeFlags(name: string): string[] {
  return nodeFileFlags(dir, name);
}

function invite(...extra: string[]): ReturnType<typeof vpnctl> {
  return vpnctl('invite', '--config', alphaConfig(), '--network', 'corp', '--address', '127.0.0.1:51820', ...extra);
}

function decoded(text: string): ShortInviteFields {
  const r = decodeShortInvite(text, new Date());
  if (!r.ok) throw new Error(r.message);
  return r.invite;
}

interface LedgerJson {
  invites: Array<{ secret_sha256: string; network: string; uses_left: number; expires_at: number; redeemed: unknown[] }>;
}

beforeAll(() => {
  if (!existsSync(VPNCTL)) throw new Error(`${VPNCTL} is missing: run 'npm run build' first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'vibepn-short-'));
  const r = vpnctl('init', ...nodeFlags('alpha'), '--listen', '127.0.0.1:51820', '--json');
  expect(r.stderr).toBe('');
  const json = JSON.parse(r.stdout) as { fingerprint: string; admin: boolean };
  alphaFp = json.fingerprint;
  expect(json.admin).toBe(true);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vpnctl init', () => {
  it("writes admins = [this node's fingerprint] in the network it creates, and says so", () => {
    expect(loadConfig(alphaConfig()).networks.get('corp')!.admins).toEqual([alphaFp]);
    expect(readFileSync(alphaConfig(), 'utf8')).toContain(`admins = ["${alphaFp}"]`);
    const text = vpnctl('init', ...nodeFlags('other'));
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}admin {3}this node \(admins = \["[0-9a-f]{16}…"\]\): it issues corp's invites$/m);
  });
});

describe('vpnctl invite (short)', () => {
  it('prints a vibepn2 invite of at most 200 characters alone on stdout, and records it in a 0600 ledger', () => {
    const before = Math.floor(Date.now() / 1000);
    const r = invite('--uses', '3', '--ttl', '2h');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toHaveLength(2); // the invite and the final newline: $(vpnctl invite …) is the invite
    const text = lines[0]!;
    expect(text).toMatch(/^vibepn2:[A-Za-z0-9_-]+$/);
    expect(text.length).toBeLessThanOrEqual(200);
    const fields = decoded(text);
    expect(fields).toMatchObject({ endpoint: { host: '127.0.0.1', port: 51820 }, fingerprint: alphaFp, network: 'corp', name: 'alpha' });
    expect(formatPrefix(fields.prefix)).toBe('10.42.0.0/24');
    expect(fields.expiresAt - before).toBeGreaterThanOrEqual(7200);
    expect(fields.expiresAt - before).toBeLessThanOrEqual(7205);
    expect(r.stderr).toMatch(/^invite [0-9a-f]{12}, valid 2h \(until \S+Z\), 3 uses; on the new machine: sudo vpnctl join --invite vibepn2:\S+ && sudo vpn\n$/);

    const ledger = join(dir, 'alpha/invites.json');
    expect(statSync(ledger).mode & 0o777).toBe(0o600);
    const entries = (JSON.parse(readFileSync(ledger, 'utf8')) as LedgerJson).invites;
    const hash = createHash('sha256').update(fields.secret).digest('hex');
    expect(entries.find((e) => e.secret_sha256 === hash)).toEqual({ secret_sha256: hash, network: 'corp', uses_left: 3, expires_at: fields.expiresAt, redeemed: [] });
    // The secret itself is never stored.
    expect(readFileSync(ledger, 'utf8')).not.toContain(Buffer.from(fields.secret).toString('hex'));
  });

  it('defaults to 1 use and 24h; --json gives every detail', () => {
    const r = invite('--json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(['invite', 'kind', 'network', 'prefix', 'name', 'address', 'fingerprint', 'uses', 'routes', 'expires_at', 'id', 'ledger', 'out']);
    expect(json).toMatchObject({ kind: 'short', network: 'corp', prefix: '10.42.0.0/24', name: 'alpha', address: '127.0.0.1:51820', fingerprint: alphaFp, uses: 1, routes: [], ledger: join(dir, 'alpha/invites.json'), out: null });
    const fields = decoded(json.invite as string);
    expect(new Date(json.expires_at as string).getTime()).toBe(fields.expiresAt * 1000);
    expect(fields.expiresAt - Date.now() / 1000).toBeGreaterThan(24 * 3600 - 30);
    const hash = createHash('sha256').update(fields.secret).digest('hex');
    const entry = (JSON.parse(readFileSync(join(dir, 'alpha/invites.json'), 'utf8')) as LedgerJson).invites.find((e) => e.secret_sha256 === hash);
    expect(entry?.uses_left).toBe(1);
  });

  it('--routes records the subnets its joiners may announce in the ledger entry, canonical and once each', () => {
    const r = invite('--json', '--routes', '192.168.50.0/24, fd00:50::/64,192.168.50.0/24');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { invite: string; routes: string[] };
    expect(json.routes).toEqual(['192.168.50.0/24', 'fd00:50::/64']);
    const hash = createHash('sha256').update(decoded(json.invite).secret).digest('hex');
    const entry = (JSON.parse(readFileSync(join(dir, 'alpha/invites.json'), 'utf8')) as { invites: Array<{ secret_sha256: string; routes?: string[] }> }).invites.find((e) => e.secret_sha256 === hash);
    expect(entry?.routes).toEqual(['192.168.50.0/24', 'fd00:50::/64']);
    const bad = invite('--routes', '192.168.50.1/24');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--routes ');
    expect(bad.stderr).toContain('host bits');
  });

  it('--qr prints the invite, then a QR code block, on stdout', () => {
    const r = invite('--qr');
    expect(r.code, r.stderr).toBe(0);
    const [first, ...qr] = r.stdout.trimEnd().split('\n');
    expect(first).toMatch(/^vibepn2:/);
    expect(qr.length).toBeGreaterThanOrEqual(20);
    for (const line of qr) expect(line).toMatch(/[█▀▄]/);
    // Square: every row as wide as the next (half-height blocks: about twice as wide as tall).
    // eslint-disable-next-line no-control-regex
    const widths = new Set(qr.slice(0, -1).map((l) => l.replace(/\u001b\[[0-9;]*m/g, '').length));
    expect(widths.size).toBe(1);
  });

  it('--out writes the invite 0600 and the hint on stdout', () => {
    const file = join(dir, 'invite.txt');
    const r = invite('--out', file);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^vibepn2:[A-Za-z0-9_-]+\n$/);
    expect(r.stdout).toMatch(new RegExp(`wrote invite for network corp to ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(invite [0-9a-f]{12}, valid 24h`));
    expect(r.stdout).toContain(`on the new machine: sudo vpnctl join --invite-file ${file}`);
  });

  it('refuses a node that is not an admin, or a network without admins, naming the fix; writes no ledger', () => {
    const text = readFileSync(alphaConfig(), 'utf8');
    const other = 'ab'.repeat(32);
    const notAdmin = join(dir, 'alpha/not-admin.toml');
    writeFileSync(notAdmin, text.replace(`admins = ["${alphaFp}"]`, `admins = ["${other}"]`));
    const r = vpnctl('invite', '--config', notAdmin, '--network', 'corp', '--address', '127.0.0.1:51820');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `vpnctl: this node is not an admin of corp (admins = ["abababababababab…"] in ${notAdmin}): run vpnctl invite on an admin, ` +
        `or add this node's fingerprint ${alphaFp} to networks.corp.admins (then vpnctl reload), or use --long\n`,
    );
    const none = join(dir, 'alpha/no-admins.toml');
    writeFileSync(none, text.replace(`admins = ["${alphaFp}"]\n`, ''));
    const n = vpnctl('invite', '--config', none, '--network', 'corp', '--address', '127.0.0.1:51820');
    expect(n.code).toBe(1);
    expect(n.stderr).toContain(`vpnctl: network corp has no admins in ${none}`);
    expect(n.stderr).toContain(`add admins = ["${alphaFp}"] to [networks.corp]`);
    expect(n.stderr).toContain('vpnctl invite --long');
    // Neither touched the ledger beside them (the one the earlier tests wrote is alpha's own).
    const before = readFileSync(join(dir, 'alpha/invites.json'), 'utf8');
    vpnctl('invite', '--config', notAdmin, '--network', 'corp', '--address', '127.0.0.1:51820');
    expect(readFileSync(join(dir, 'alpha/invites.json'), 'utf8')).toBe(before);
    // --long needs no admin.
    expect(vpnctl('invite', '--config', none, '--network', 'corp', '--address', '127.0.0.1:51820', '--long').stdout).toMatch(/^vibepn1:/);
  });

  it('refuses what a short invite cannot carry, pointing at --long', () => {
    const host = `${'h'.repeat(60)}.example.org`;
    const r = vpnctl('invite', '--config', alphaConfig(), '--network', 'corp', '--address', `${host}:51820`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `vpnctl: cannot make a short invite: the hostname '${host}' is 72 bytes, over the 63 a short invite carries; ` +
        "give a shorter name or the admin's IP address, or make a long invite with --long\n",
    );
    const name = 'n'.repeat(64);
    expect(vpnctl('init', ...nodeFlags('longname'), '--name', name).code).toBe(0);
    const n = vpnctl('invite', '--config', join(dir, 'longname/config.toml'), '--network', 'corp', '--address', '127.0.0.1:51820');
    expect(n.code).toBe(1);
    expect(n.stderr).toContain(`this node's name cannot go into a short invite (the joiner lists the admin under it): '${name}' is longer than the 63 characters`);
    expect(n.stderr).toContain('vpnctl invite --long --name NAME');
  });

  it('refuses flags of the other kind, and bad --uses, as usage errors', () => {
    const cases: Array<[string[], string]> = [
      [['--long', '--uses', '2'], '--uses applies only to short invites'],
      [['--long', '--qr'], '--qr needs a short invite'],
      [['--long', '--routes', '192.168.50.0/24'], '--routes applies only to short invites'],
      [['--name', 'hq'], '--name applies only to --long invites'],
      [['--uses', '0'], "--uses must be a whole number 1..1000 (how many machines may join with this invite), got '0'"],
      [['--uses', '1001'], '--uses must be a whole number 1..1000'],
      [['--uses', '2x'], '--uses must be a whole number 1..1000'],
      [['--ttl', '366d'], 'at most 365d'],
    ];
    for (const [flags, message] of cases) {
      const r = invite(...flags);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr, flags.join(' ')).toContain(message);
    }
  });
});

describe('vpnctl join --invite vibepn2:…', () => {
  it('pins the admin as a peer and admin, leaves the invite in a 0600 pending file, and prints no add-peer step', () => {
    const text = invite().stdout.trim();
    const r = vpnctl('join', ...nodeFlags('beta'), '--invite', text, '--listen', '127.0.0.1:51821');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('joined network corp (10.42.0.0/24) via alpha at 127.0.0.1:51820');
    expect(r.stdout).toContain(`it redeems the invite`);
    expect(r.stdout).not.toContain('add-peer');
    const config = loadConfig(join(dir, 'beta/config.toml'));
    expect(config.peers).toEqual([{ name: 'alpha', address: { host: '127.0.0.1', port: 51820 }, fingerprint: alphaFp, networks: ['corp'], allowedRoutes: [] }]);
    expect(config.networks.get('corp')!.admins).toEqual([alphaFp]);
    expect(formatPrefix(config.networks.get('corp')!.prefix)).toBe('10.42.0.0/24');
    const pending = join(dir, 'beta/pending-invites.json');
    expect(statSync(pending).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(pending, 'utf8'))).toEqual({
      version: 1,
      invites: [{ network: 'corp', admin: alphaFp, secret: Buffer.from(decoded(text).secret).toString('hex') }],
    });
  });

  it('--json says it will redeem, with no add-peer command; --invite-file works too', () => {
    const file = join(dir, 'gamma-invite.txt');
    expect(invite('--out', file).code).toBe(0);
    const r = vpnctl('join', ...nodeFlags('gamma'), '--invite-file', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      name: 'gamma',
      kind: 'short',
      redeem: true,
      add_peer_command: null,
      pending: join(dir, 'gamma/pending-invites.json'),
      inviter: { name: 'alpha', address: '127.0.0.1:51820', fingerprint: alphaFp },
    });
  });

  it('refuses an expired and a tampered invite with the code first, writing nothing', () => {
    const fields = decoded(invite().stdout.trim());
    const expired = encodeShortInvite({ ...fields, expiresAt: Math.floor(Date.now() / 1000) - 60 });
    const e = vpnctl('join', ...nodeFlags('mallory'), '--invite', expired);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/^vpnctl: invite\.expired: the invite expired at \S+Z; ask the admin for a new one \(vpnctl invite\)\n$/);
    const good = encodeShortInvite(fields);
    const i = 40;
    const tampered = good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1);
    const t = vpnctl('join', ...nodeFlags('mallory'), '--invite', tampered);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/^vpnctl: invite\.invalid: the invite is damaged or cut short \(its checksum does not match\); copy it again whole/);
    expect(existsSync(join(dir, 'mallory'))).toBe(false);
  });

  it("refuses --name equal to the admin's name", () => {
    const r = vpnctl('join', ...nodeFlags('alpha2'), '--name', 'alpha', '--invite', invite().stdout.trim());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--name alpha is the inviter's own name; choose a different name for this node");
    expect(existsSync(join(dir, 'alpha2'))).toBe(false);
  });
});

describe('vpnctl doctor on membership files', () => {
  interface DoctorJson {
    ok: boolean;
    checks: Array<{ check: string; level: string; detail: string; fix?: string }>;
  }
  const doctor = (name: string): DoctorJson => JSON.parse(vpnctl('doctor', '--config', join(dir, name, 'config.toml'), '--json').stdout) as DoctorJson;
  const find = (d: DoctorJson, check: string) => d.checks.find((c) => c.check === check);

  it('on the admin: its role and the usable invites in its ledger; a damaged roster fails with the fix', () => {
    const before = doctor('alpha');
    expect(find(before, 'admins of corp')!.detail).toContain('this node is one');
    expect(find(before, 'invite ledger')!).toMatchObject({ level: 'ok' });
    expect(find(before, 'invite ledger')!.detail).toMatch(/\d+ invite\(s\) still usable/);
    writeFileSync(join(dir, 'alpha/roster.json'), '{"version":1,"records":[1]}');
    const after = doctor('alpha');
    expect(after.ok).toBe(false);
    expect(find(after, 'roster')).toMatchObject({ level: 'fail', fix: 'delete it: the daemon fetches the records again from its peers' });
    rmSync(join(dir, 'alpha/roster.json'));
  });

  it('on a joiner: the invite it still has to redeem, and no ledger check (it is no admin)', () => {
    vpnctl('join', ...nodeFlags('delta'), '--invite', invite().stdout.trim());
    const d = doctor('delta');
    expect(find(d, 'admins of corp')!.detail).not.toContain('this node is one');
    expect(find(d, 'invite ledger')).toBeUndefined();
    expect(find(d, 'pending invite')!.detail).toContain('not yet redeemed: corp');
  });
});

describe('vpnctl invites', () => {
  it('lists the issued invites by id, and --cancel withdraws one (gone from the ledger, the rest kept)', () => {
    const made = JSON.parse(invite('--json', '--uses', '3').stdout) as { id: string; invite: string };
    expect(made.id).toMatch(/^[0-9a-f]{12}$/);
    const list = JSON.parse(vpnctl('invites', '--config', alphaConfig(), '--json').stdout) as Array<{ id: string; uses_left: number; state: string }>;
    expect(list.find((r) => r.id === made.id)).toMatchObject({ uses_left: 3, state: 'usable' });
    const text = vpnctl('invites', '--config', alphaConfig());
    expect(text.stdout.split('\n')[0]).toMatch(/^ID +NETWORK +USES LEFT +EXPIRES +STATE +REDEEMED BY/);
    expect(text.stdout).toContain(made.id);
    const cancelled = vpnctl('invites', '--config', alphaConfig(), '--cancel', made.id.slice(0, 8));
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toBe(`cancelled invite ${made.id} to corp (3 uses left)\n`);
    const after = JSON.parse(vpnctl('invites', '--config', alphaConfig(), '--json').stdout) as Array<{ id: string }>;
    expect(after.map((r) => r.id)).not.toContain(made.id);
    expect(after.length).toBe(list.length - 1);
    const again = vpnctl('invites', '--config', alphaConfig(), '--cancel', made.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no invite with id ${made.id}`);
  });
});

describe('vpnctl join --add (a running node joins one more network)', () => {
  it('adds the network with its admin and the admin pinned, keeps the rest of the file, and leaves the invite for the daemon', () => {
    const init = vpnctl('init', ...nodeFlags('epsilon'), '--network', 'lab', '--prefix', '10.50.0.0/24', '--json');
    expect(init.code, init.stderr).toBe(0);
    const config = join(dir, 'epsilon/config.toml');
    const before = readFileSync(config, 'utf8');
    const r = vpnctl('join', '--add', '--config', config, '--invite', invite().stdout.trim(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { added: boolean; network: { name: string }; next: string };
    expect(json).toMatchObject({ added: true, network: { name: 'corp' }, next: 'vpnctl reload' });
    const after = readFileSync(config, 'utf8');
    expect(after.startsWith(before)).toBe(true);
    const loaded = loadConfig(config);
    expect([...loaded.networks.keys()]).toEqual(['lab', 'corp']);
    expect(loaded.networks.get('corp')!.admins).toEqual([alphaFp]);
    expect(loaded.networks.get('lab')!.admins).toEqual([(JSON.parse(init.stdout) as { fingerprint: string }).fingerprint]);
    expect(loaded.peers).toMatchObject([{ name: 'alpha', fingerprint: alphaFp, networks: ['corp'] }]);
    expect(statSync(join(dir, 'epsilon/pending-invites.json')).mode & 0o777).toBe(0o600);
    // Twice is refused, and so are the flags a new node's files would take.
    const again = vpnctl('join', '--add', '--config', config, '--invite', invite().stdout.trim());
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('this node is already in network corp');
    const name = vpnctl('join', '--add', '--config', config, '--name', 'x', '--invite', invite().stdout.trim());
    expect(name.code).toBe(2);
    expect(name.stderr).toContain('--name does not go with --add');
    // A second network of the same admin: its existing pin gains the network, no second entry.
    const alpha = alphaConfig();
    const alphaText = readFileSync(alpha, 'utf8');
    writeFileSync(alpha, `${alphaText}\n[networks.ops]\nprefix = "10.60.0.0/24"\nadmins = ["${alphaFp}"]\n`);
    const ops = vpnctl('invite', '--config', alpha, '--network', 'ops', '--address', '127.0.0.1:51820');
    expect(ops.code, ops.stderr).toBe(0);
    const second = vpnctl('join', '--add', '--config', config, '--invite', ops.stdout.trim());
    expect(second.code, second.stderr).toBe(0);
    expect(loadConfig(config).peers).toMatchObject([{ name: 'alpha', fingerprint: alphaFp, networks: ['corp', 'ops'] }]);
    writeFileSync(alpha, alphaText);
  });
});
