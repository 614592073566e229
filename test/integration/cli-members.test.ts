// vpnctl members and revoke against a fake daemon: a Unix socket that records each request line
// and answers what the test set, so the exact request shapes and the printed tables are checked
// without a roster on a real daemon. The built vpnctl runs as a subprocess, through its dispatch.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MemberRow, RevokeResult, RosterStatus } from '../../src/control/api.js';
import { formatMembers, formatRevoke } from '../../src/cli/members.js';
import { Subprocesses } from '../helpers/cli-run.js';

const ALPHA = 'a1'.repeat(32);
const BETA = 'b2'.repeat(32);
const GAMMA = 'c3'.repeat(32);
const OTHER_ADMIN = 'd4'.repeat(32);

let root: string;
let socketPath: string;
let server: net.Server;
let procs: Subprocesses;
/** Each request line the fake daemon received, parsed. */
let requests: unknown[] = [];
let answer: unknown = { status: 'ok', output: [] };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-members-'));
  socketPath = join(root, 'vpn.sock');
  procs = new Subprocesses(root, { ...process.env, VIBEPN_SOCKET: '' });
  server = net.createServer((socket) => {
    let buffered = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline === -1) return;
      requests.push(JSON.parse(buffered.slice(0, newline)));
      socket.end(JSON.stringify(answer) + '\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterEach(() => {
  requests = [];
});

afterAll(async () => {
  await procs.stopAll();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
});

function member(over: Partial<MemberRow>): MemberRow {
  return {
    network: 'corp', name: 'x', address: '10.42.0.9', fingerprint: GAMMA, routes: [], endpoints: [], signed_by: 'alpha',
    signed_by_fingerprint: ALPHA, version: '1', issued_at: '2026-03-01T12:00:00.000Z', expires_at: null, self: false, reachable: false, refused: null,
    ...over,
  };
}

const CORP: RosterStatus = {
  network: 'corp',
  admins: [ALPHA, OTHER_ADMIN],
  admin: true,
  members: [
    member({ name: 'alpha', address: '10.42.0.1', fingerprint: ALPHA, self: true, reachable: true }),
    member({ name: 'beta', address: '10.42.0.7', fingerprint: BETA, reachable: true, routes: ['192.168.10.0/24'] }),
    member({ name: 'gamma', address: '10.42.0.9', fingerprint: GAMMA, refused: "the config's peer gamma has another fingerprint (cdcdcdcdcdcdcdcd…)" }),
  ],
  revoked: ['mallory'],
};

describe('vpnctl members', () => {
  it('sends exactly {cmd: members}, or with --network, and prints one block per network', async () => {
    answer = { status: 'ok', output: [CORP, { network: 'lab', admins: [OTHER_ADMIN], admin: false, members: [], revoked: [] }] };
    const r = await procs.vpnctl('--socket', socketPath, 'members');
    expect(r.code, r.stderr).toBe(0);
    expect(requests).toEqual([{ cmd: 'members' }]);
    expect(r.stdout.split('\n')).toEqual([
      `network corp — 3 members; admins: alpha (a1a1a1a1a1a1a1a1…), d4d4d4d4d4d4d4d4…; this node is an admin`,
      'NAME   ADDRESS    FINGERPRINT        SIGNED BY  REACHABLE  ROUTES',
      'alpha  10.42.0.1  a1a1a1a1a1a1a1a1…  alpha      self       -',
      'beta   10.42.0.7  b2b2b2b2b2b2b2b2…  alpha      yes        192.168.10.0/24',
      'gamma  10.42.0.9  c3c3c3c3c3c3c3c3…  alpha      no         -',
      "note: gamma is in the roster but not a peer here: the config's peer gamma has another fingerprint (cdcdcdcdcdcdcdcd…)",
      'revoked: mallory',
      '',
      'network lab — no members yet; admins: d4d4d4d4d4d4d4d4…',
      '  this node learns the roster from an admin once it is connected to one',
      '',
    ]);
    const one = await procs.vpnctl('members', '--network', 'corp', '--socket', socketPath);
    expect(one.code, one.stderr).toBe(0);
    expect(requests[1]).toEqual({ cmd: 'members', network: 'corp' });
  });

  it('--json passes the daemon output through unchanged', async () => {
    answer = { status: 'ok', output: [CORP] };
    const r = await procs.vpnctl('--socket', socketPath, '--json', 'members');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([CORP]);
  });

  it('says how to get a roster when there is none, and what an admin does with an empty one', () => {
    expect(formatMembers([])).toBe(
      'no network has a roster: add admins = ["<admin fingerprint>"] to [networks.NAME] in the config of every node ' +
        '(vpnctl init writes it on the node that creates a network), then vpnctl reload',
    );
    expect(formatMembers([{ network: 'lab', admins: [], admin: false, members: [], revoked: [] }])).toMatch(
      /^network lab: no admins, so no roster; add admins = \["<admin fingerprint>"\] to \[networks\.lab\]/,
    );
    expect(formatMembers([{ network: 'lab', admins: [ALPHA], admin: true, members: [], revoked: [] }]).split('\n')).toEqual([
      'network lab — no members yet; admins: a1a1a1a1a1a1a1a1…; this node is an admin',
      '  add one with vpnctl invite --network lab --address HOST:PORT (its daemon redeems the invite here)',
    ]);
  });

  it('refuses arguments and a bad --network as usage errors, and reports a daemon error as a failure', async () => {
    const extra = await procs.vpnctl('--socket', socketPath, 'members', 'corp');
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain("unexpected argument 'corp'");
    const bad = await procs.vpnctl('--socket', socketPath, 'members', '--network', 'my net');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--network 'my net' is not a valid network name");
    expect(requests).toEqual([]);
    answer = { status: 'error', error: "no network 'nope' (networks with a roster: corp)" };
    const err = await procs.vpnctl('--socket', socketPath, 'members', '--network', 'nope');
    expect(err.code).toBe(1);
    expect(err.stderr).toBe("vpnctl: no network 'nope' (networks with a roster: corp)\n");
  });
});

describe('vpnctl revoke', () => {
  const result: RevokeResult = { network: 'corp', name: 'beta', fingerprint: BETA, version: '7', told: 2 };

  it('sends exactly {cmd: revoke, name[, network]} and prints one line', async () => {
    answer = { status: 'ok', output: result };
    const r = await procs.vpnctl('--socket', socketPath, 'revoke', 'beta');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('revoked beta (b2b2b2b2b2b2b2b2…) from corp; told 2 peers\n');
    const scoped = await procs.vpnctl('revoke', 'beta', '--network', 'corp', '--socket', socketPath);
    expect(scoped.code, scoped.stderr).toBe(0);
    expect(requests).toEqual([{ cmd: 'revoke', name: 'beta' }, { cmd: 'revoke', name: 'beta', network: 'corp' }]);
    expect(formatRevoke({ ...result, told: 1 })).toBe('revoked beta (b2b2b2b2b2b2b2b2…) from corp; told 1 peer');
  });

  it('--json passes the result through', async () => {
    answer = { status: 'ok', output: result };
    const r = await procs.vpnctl('--socket', socketPath, 'revoke', 'beta', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(result);
  });

  it('needs exactly one valid NAME, and shows the daemon refusal', async () => {
    const none = await procs.vpnctl('--socket', socketPath, 'revoke');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('revoke needs the name of the member to revoke (vpnctl members lists them)');
    const two = await procs.vpnctl('--socket', socketPath, 'revoke', 'a', 'b');
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("unexpected argument 'b'");
    expect(requests).toEqual([]);
    answer = { status: 'error', error: 'this node is not an admin of corp: run vpnctl revoke on an admin' };
    const refused = await procs.vpnctl('--socket', socketPath, 'revoke', 'beta');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('vpnctl: this node is not an admin of corp: run vpnctl revoke on an admin\n');
  });

  it('answers -h with its usage, and vpnctl -h lists both commands', async () => {
    for (const cmd of ['members', 'revoke']) {
      const r = await procs.vpnctl(cmd, '-h');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`usage: vpnctl [--socket PATH | --config FILE] [--json] ${cmd}`);
    }
    const help = await procs.vpnctl('--help');
    expect(help.stdout).toMatch(/^ {2}members {6}/m);
    expect(help.stdout).toMatch(/^ {2}revoke {7}/m);
  });
});
