// vpnctl as a user runs it, against a real daemon (`vpn --no-tun`) on loopback: which daemon a
// query finds (--socket, --config, VIBEPN_SOCKET), a query right after start-up, a reader that
// stops early, `peers NAME`, arguments a command does not take, health in status, and the
// offline version and whoami.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { VPN, VPNCTL, Subprocesses } from '../helpers/cli-run.js';
import { createNode, peerOf, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

const PACKAGE_VERSION = (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;

let root: string;
let procs: Subprocesses;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-vpnctl-'));
  // No default config or socket of the machine may leak in.
  procs = new Subprocesses(root, { ...process.env, VIBEPN_SOCKET: '' });
});

afterEach(() => {
  procs.killAll();
  rmSync(root, { recursive: true, force: true });
});

/** a with one peer, b, that is never started. */
async function lonelyNode(): Promise<{ a: TestNode; b: TestNode }> {
  const a = await createNode(root, 'a');
  const b = await createNode(root, 'b');
  writeNodeConfig(a, [peerOf(b, ['corp'])]);
  return { a, b };
}

describe('vpnctl finds its daemon', () => {
  it('by --socket, by --config FILE (its daemon.control_socket) and by VIBEPN_SOCKET', async () => {
    const { a } = await lonelyNode();
    await procs.startDaemon(a);
    const socket = join(a.dir, 'vpn.sock');
    for (const [how, result] of [
      ['--socket', await procs.vpnctl('--socket', socket, '--json', 'status')],
      ['--config', await procs.vpnctl('--config', a.configPath, '--json', 'status')],
      ['--config after the command', await procs.vpnctl('status', '--json', '--config', a.configPath)],
      ['VIBEPN_SOCKET', await procs.run(VPNCTL, ['--json', 'status'], { VIBEPN_SOCKET: socket })],
    ] as const) {
      expect(result.code, `${how}: ${result.stderr}`).toBe(0);
      expect(JSON.parse(result.stdout).fingerprint, how).toBe(a.fingerprint);
    }
    // --socket wins over VIBEPN_SOCKET.
    const wrong = await procs.run(VPNCTL, ['--socket', join(root, 'nothing.sock'), 'status'], { VIBEPN_SOCKET: socket });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(join(root, 'nothing.sock'));
  });

  it('waits for a daemon that is still starting, instead of failing at once', async () => {
    const { a } = await lonelyNode();
    const query = procs.run(VPNCTL, ['--config', a.configPath, '--json', 'status']);
    procs.spawn(VPN, ['--no-tun', '-config', a.configPath]);
    const result = await query;
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).name).toBe('a');
  });

  it('gives up after a few seconds when no daemon comes, naming the socket and the flags', async () => {
    const started = Date.now();
    const result = await procs.vpnctl('--socket', join(root, 'none.sock'), 'status');
    expect(result.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(result.stderr).toMatch(/^vpnctl: cannot reach the vibepn daemon at .*none\.sock: no such file \(is `vpn` running\? use --socket or --config to choose another\)\n$/);
  });
});

describe('vpnctl against a running daemon', () => {
  it('peers NAME shows one peer; an unknown name fails listing the names; peers has the wg-show columns', async () => {
    const { a } = await lonelyNode();
    await procs.startDaemon(a);
    const one = await procs.vpnctl('--config', a.configPath, 'peers', 'b');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^name +b$/m);
    expect(one.stdout).toMatch(/^state +down$/m);
    expect(one.stdout).toMatch(/^configured at +127\.0\.0\.1:\d+$/m);
    const json = await procs.vpnctl('--config', a.configPath, '--json', 'peers', 'b');
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'b', connected: false, rx_bytes: null, tx_bytes: null, rtt_ms: null, path: null });
    const unknown = await procs.vpnctl('--config', a.configPath, 'peers', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("vpnctl: no peer named 'nobody' (peers: b)\n");
    const table = await procs.vpnctl('--config', a.configPath, 'peers');
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME +ADDRESS +ENDPOINT +STATE +SINCE +LAST SEEN +RX +TX +RTT +TRUST/);
  });

  it('refuses arguments a command does not take (exit 2, with its usage)', async () => {
    const { a } = await lonelyNode();
    await procs.startDaemon(a);
    for (const args of [['status', 'extra'], ['routes', 'x'], ['peers', 'b', 'c']]) {
      const result = await procs.vpnctl('--config', a.configPath, ...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(/^vpnctl: unexpected arguments? '.+'\n\nusage: vpnctl/);
    }
  });

  it('status says what needs attention: no TUN devices, a peer down', async () => {
    const { a } = await lonelyNode();
    await procs.startDaemon(a);
    const json = JSON.parse((await procs.vpnctl('--config', a.configPath, '--json', 'status')).stdout) as { health: string[] };
    expect(json.health).toContain('no TUN devices (vpn --no-tun): sessions and routes only, no traffic is forwarded');
    expect(json.health.some((l) => /^peer b is down/.test(l))).toBe(true);
    const text = (await procs.vpnctl('--config', a.configPath, 'status')).stdout;
    expect(text).toMatch(/^health +no TUN devices/m);
    // A refused reload stays in view until one succeeds; a config others may write is flagged.
    const good = readFileSync(a.configPath, 'utf8');
    writeFileSync(a.configPath, good.replace('[daemon]', '[daemon]\nbogus_key = 1'));
    expect((await procs.vpnctl('--socket', join(a.dir, 'vpn.sock'), 'reload')).code).toBe(1);
    chmodSync(a.configPath, 0o666);
    const health = JSON.parse((await procs.vpnctl('--socket', join(a.dir, 'vpn.sock'), '--json', 'status')).stdout).health as string[];
    expect(health[0]).toMatch(/^last reload refused \d{4}-\d\d-\d\dT.*Z, the previous config keeps running: .*bogus_key/);
    expect(health[1]).toBe(`${a.configPath} is writable by anyone: whoever can write it chooses this node's peers (chmod go-w ${a.configPath})`);
    writeFileSync(a.configPath, good);
    chmodSync(a.configPath, 0o600);
    expect((await procs.vpnctl('--socket', join(a.dir, 'vpn.sock'), 'reload')).code).toBe(0);
    const after = JSON.parse((await procs.vpnctl('--socket', join(a.dir, 'vpn.sock'), '--json', 'status')).stdout).health as string[];
    expect(after.some((l) => /refused|writable/.test(l))).toBe(false);
  });

  it('a reader that stops early is a normal end: exit 0, nothing on stderr', async () => {
    const { a } = await lonelyNode();
    await procs.startDaemon(a);
    // The pipe's reader is gone before vpnctl writes: its write fails with EPIPE.
    const running = procs.spawn(VPNCTL, ['--config', a.configPath, 'peers']);
    running.child.stdout!.destroy();
    const result = await running.exited;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

// Tailscale's operator idea: members of daemon.socket_group read without sudo, only root changes
// the daemon. As root (CI): the test runs vpnctl as nobody:nogroup.
const NOBODY = { uid: 65534, gid: 65534 };
describe.skipIf(process.getuid?.() !== 0)('daemon.socket_group', () => {
  async function daemonWith(socketGroup: string): Promise<TestNode> {
    chmodSync(root, 0o755); // nobody must reach the socket and the config
    const a = await createNode(root, 'a');
    const b = await createNode(root, 'b');
    writeNodeConfig(a, [peerOf(b, ['corp'])], undefined, { socketGroup });
    await procs.startDaemon(a);
    return a;
  }

  it('lets the group read; reload and goodbye stay root-only and say so', async () => {
    const a = await daemonWith('nogroup');
    const socket = join(a.dir, 'vpn.sock');
    const stats = statSync(socket);
    expect(stats.mode & 0o777).toBe(0o660);
    expect(stats.gid).toBe(NOBODY.gid);
    const status = await procs.run(VPNCTL, ['--socket', socket, '--json', 'status'], {}, NOBODY);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).name).toBe('a');
    for (const cmd of ['reload', 'goodbye']) {
      const refused = await procs.run(VPNCTL, ['--socket', socket, cmd], {}, NOBODY);
      expect(refused.code, cmd).toBe(1);
      expect(refused.stderr, cmd).toBe(`vpnctl: '${cmd}' changes the daemon: run it as root (sudo vpnctl ${cmd}); members of daemon.socket_group may only read\n`);
    }
    // Root still may.
    expect((await procs.vpnctl('--socket', socket, 'reload')).code).toBe(0);
  });

  it('without socket_group the socket is root-only, and a user is told to use sudo', async () => {
    const a = await daemonWith('');
    const socket = join(a.dir, 'vpn.sock');
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const refused = await procs.run(VPNCTL, ['--socket', socket, 'status'], {}, NOBODY);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/permission denied \(the socket is root-only; run vpnctl with sudo\)/);
  });

  it('a group that does not exist stops the daemon at start, naming the fix', async () => {
    const a = await createNode(root, 'a');
    writeNodeConfig(a, [], undefined, { socketGroup: 'no-such-group-here' });
    const result = await procs.run(VPN, ['--no-tun', '-config', a.configPath]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("daemon.socket_group: there is no group 'no-such-group-here' on this machine (create it with `groupadd no-such-group-here`");
  });
});

describe('vpnctl ping', () => {
  it('times round trips to a connected peer and names the path; a down or unknown peer is exit 1', async () => {
    const a = await createNode(root, 'a');
    const b = await createNode(root, 'b');
    const c = await createNode(root, 'c');
    writeNodeConfig(a, [peerOf(b, ['corp']), peerOf(c, ['corp'])]);
    writeNodeConfig(b, [peerOf(a, ['corp'])]);
    await procs.startDaemon(a);
    await procs.startDaemon(b);
    let text = await procs.vpnctl('--config', a.configPath, 'ping', 'b');
    for (let i = 0; i < 50 && text.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      text = await procs.vpnctl('--config', a.configPath, 'ping', 'b');
    }
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^pong from b at 127\.0\.0\.1:\d+ \(direct\) in \d+\.\d\d ms$/);
    const json = JSON.parse((await procs.vpnctl('--config', a.configPath, '--json', 'ping', 'b', '-c', '2')).stdout) as Array<{ seq: number; rtt_ms: number; path: string }>;
    expect(json.map((r) => [r.seq, r.path])).toEqual([[1, 'direct'], [2, 'direct']]);
    expect(json.every((r) => r.rtt_ms > 0 && r.rtt_ms < 1000)).toBe(true);
    const down = await procs.vpnctl('--config', a.configPath, 'ping', 'c');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^vpnctl: c is not connected/);
    const unknown = await procs.vpnctl('--config', a.configPath, 'ping', 'zed');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("vpnctl: no peer named 'zed' (peers: b, c)\n");
    expect((await procs.vpnctl('--config', a.configPath, 'ping')).code).toBe(2);
    expect((await procs.vpnctl('--config', a.configPath, 'ping', 'b', '-c', '0')).code).toBe(2);
  });
});

describe('vpnctl version and whoami (offline)', () => {
  it('version, --version and -v print the version; --json an object', async () => {
    for (const args of [['version'], ['--version'], ['-v']]) {
      const result = await procs.vpnctl(...args);
      expect(result.code, args[0]).toBe(0);
      expect(result.stdout, args[0]).toBe(`vibepn ${PACKAGE_VERSION}\n`);
    }
    expect(JSON.parse((await procs.vpnctl('version', '--json')).stdout)).toEqual({ version: PACKAGE_VERSION });
  });

  it('whoami reads the config and certificate: name, fingerprint, overlay address per network', async () => {
    const { a } = await lonelyNode();
    const text = await procs.vpnctl('whoami', '--config', a.configPath);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^name +a\\nfingerprint +${a.fingerprint}\\naddress +10\\.42\\.0\\.\\d+ in corp \\(10\\.42\\.0\\.0/24\\)\\n$`));
    const json = JSON.parse((await procs.vpnctl('--json', 'whoami', '--config', a.configPath)).stdout);
    expect(json).toMatchObject({ name: 'a', fingerprint: a.fingerprint, networks: [{ name: 'corp', prefix: '10.42.0.0/24' }] });
    const missing = await procs.vpnctl('whoami', '--config', join(root, 'none.toml'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/none\.toml/);
  });
});
