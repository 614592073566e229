// Runs the built daemon as a user would: `node dist/cmd/vpn.js` as a subprocess, control plane
// only (--no-tun), on loopback, in a temporary directory.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Subprocesses, VPN, type RunResult, type Running } from '../helpers/cli-run.js';
import { createNode, peerOf, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

const PACKAGE_VERSION = (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
/** CONFIG.md: `[2026-11-22T10:00:00Z] INFO  [peer/manager] connected to node2 (1f3a…)`. */
const LOG_LINE = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] (DEBUG|INFO |WARN |ERROR) \[[\w./-]+\] \S.*$/;
/** Well under the 30 s liveness timeout: only a Goodbye explains a route gone this fast. */
const GOODBYE_SEEN_MS = 2000;
const EXIT_DEADLINE_MS = 3000;

type Result = RunResult;

let root: string;
let procs: Subprocesses;
const sockets = new Set<Socket>();

/** Runs vpn to completion (for the commands that exit on their own). */
const vpn = (...args: string[]): Promise<Result> => procs.run(VPN, args);
const vpnctl = (...args: string[]): Promise<Result> => procs.vpnctl(...args);
const startDaemon = (node: TestNode, configFlag = '-config'): Promise<Running> => procs.startDaemon(node, configFlag);

/** The exit of a daemon that was asked to stop, or a failure if it takes over the deadline. */
async function exitWithin(running: Running, ms: number): Promise<Result> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`daemon still running ${ms} ms after it was asked to stop:\n${running.lines.join('\n')}`)), ms);
  });
  try {
    return await Promise.race([running.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function routeCount(node: TestNode): Promise<number> {
  const r = await vpnctl('--socket', socketOf(node), '--json', 'routes');
  if (r.code !== 0) return -1;
  return (JSON.parse(r.stdout) as unknown[]).length;
}

/** Polls an async condition (waitFor takes a synchronous one). */
async function waitForAsync(condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function socketOf(node: TestNode): string {
  return join(node.dir, 'vpn.sock');
}

function nonEmptyLines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** A node with a config that needs no root and no port 9000. */
async function node(name: string, peers: TestNode[] = []): Promise<TestNode> {
  const created = await createNode(root, name);
  writeNodeConfig(created, peers.map((p) => peerOf(p, ['corp'])), undefined, { metricsListen: '' });
  return created;
}

let counter = 0;
/** A unique node name, so every test gets its own directory under root. */
function unique(name: string): string {
  return `${name}${++counter}`;
}

beforeAll(() => {
  if (!existsSync(VPN)) throw new Error(`${VPN} is missing: run 'npm run build' first (npm test does)`);
  root = mkdtempSync(join(tmpdir(), 'vibepn-cmd-vpn-'));
  procs = new Subprocesses(root);
});

afterEach(async () => {
  await procs.stopAll();
  for (const socket of sockets) socket.close();
  sockets.clear();
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('vpn command line', () => {
  it('--version prints the package version', async () => {
    const r = await vpn('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`vibepn ${PACKAGE_VERSION}\n`);
  });

  it.each(['-h', '--help'])('%s prints usage', async (flag) => {
    const r = await vpn(flag);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: vpn /);
    expect(r.stdout).toContain('--no-tun');
    expect(r.stdout).toContain('-config, --config PATH');
  });

  it('an unknown flag is a usage error naming the flag', async () => {
    const r = await vpn('--bogus-flag');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--bogus-flag');
    expect(r.stderr).toContain('usage: vpn');
    expect(r.stdout).toBe('');
  });
});

describe('vpn start-up failures: one line on stderr, exit 1', () => {
  async function expectFatal(args: string[], ...fragments: Array<string | RegExp>): Promise<string> {
    const r = await vpn('--no-tun', ...args);
    const lines = nonEmptyLines(r.stderr);
    expect(lines, `stderr:\n${r.stderr}`).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatch(/^vpn: /);
    for (const fragment of fragments) {
      if (typeof fragment === 'string') expect(line).toContain(fragment);
      else expect(line).toMatch(fragment);
    }
    expect(r.code).toBe(1);
    return line;
  }

  it('missing config file names the file', async () => {
    const missing = join(root, 'nowhere', 'config.toml');
    await expectFatal(['-config', missing], missing, 'vpnctl init');
  });

  it('invalid config names the key', async () => {
    const a = await node(unique('badcfg'));
    writeFileSync(a.configPath, readFileSync(a.configPath, 'utf8').replace(/log_level = "debug"/, 'log_level = "loud"'));
    expect(readFileSync(a.configPath, 'utf8')).toContain('"loud"');
    await expectFatal(['-config', a.configPath], 'log_level', a.configPath);
  });

  it('missing certificate file names the file', async () => {
    const a = await node(unique('nocert'));
    rmSync(join(a.dir, 'node.crt'));
    await expectFatal(['-config', a.configPath], join(a.dir, 'node.crt'));
  });

  it('missing key file names the file', async () => {
    const a = await node(unique('nokey'));
    rmSync(join(a.dir, 'node.key'));
    await expectFatal(['-config', a.configPath], join(a.dir, 'node.key'));
  });

  it('a UDP port in use says so', async () => {
    const a = await node(unique('busy'));
    const squatter = createSocket('udp4');
    sockets.add(squatter);
    await new Promise<void>((r) => squatter.bind(a.port, '127.0.0.1', r));
    await expectFatal(['-config', a.configPath], `127.0.0.1:${a.port}`, /address (is )?(already )?in use/i);
    expect(existsSync(socketOf(a))).toBe(false);
  });

  it('a control socket in use by a live daemon says so and leaves that daemon alone', async () => {
    const first = await node(unique('owner'));
    const running = await startDaemon(first);
    const second = await node(unique('intruder'));
    writeNodeConfig(second, [], undefined, { metricsListen: '', controlSocket: socketOf(first) });
    await expectFatal(['-config', second.configPath], socketOf(first), 'in use by another vibepn daemon');
    const status = await vpnctl('--socket', socketOf(first), '--json', 'status');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { name: string }).name).toBe(first.name);
    expect(running.child.exitCode).toBeNull();
  });
});

describe('vpn running', () => {
  it.each(['-config', '--config'])('%s PATH starts the daemon', async (flag) => {
    const a = await node(unique('flag'));
    await startDaemon(a, flag);
    const status = await vpnctl('--socket', socketOf(a), '--json', 'status');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: a.name, port: a.port });
  });

  it('logs in the documented format', async () => {
    const a = await node(unique('fmt'));
    const running = await startDaemon(a);
    expect(running.lines.length).toBeGreaterThanOrEqual(2);
    for (const line of running.lines) expect(line).toMatch(LOG_LINE);
    expect(running.lines.some((l) => / INFO {2}\[daemon\] .*listening on udp 127\.0\.0\.1:\d+/.test(l))).toBe(true);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s: exit 0, socket removed, the peer hears goodbye', async (signal) => {
    const a = await createNode(root, unique('leaver'));
    const b = await createNode(root, unique('stayer'));
    writeNodeConfig(a, [peerOf(b, ['corp'])], undefined, { metricsListen: '' });
    writeNodeConfig(b, [peerOf(a, ['corp'])], undefined, { metricsListen: '' });
    const leaver = await startDaemon(a);
    const stayer = await startDaemon(b);
    await waitForAsync(async () => (await routeCount(b)) === 1, `${b.name} to learn ${a.name}'s route`, 10_000);
    expect(existsSync(socketOf(a))).toBe(true);

    leaver.child.kill(signal);
    const result = await exitWithin(leaver, EXIT_DEADLINE_MS);
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(existsSync(socketOf(a))).toBe(false);
    expect(leaver.lines.some((l) => l.includes(`shutting down (${signal})`))).toBe(true);

    await waitForAsync(async () => (await routeCount(b)) === 0, `${b.name} to drop ${a.name}'s route`, GOODBYE_SEEN_MS);
    await waitFor(() => stayer.lines.some((l) => l.includes(`${a.name}`) && l.includes('said goodbye')), `${b.name} to log the goodbye`, 1000);
    expect(stayer.child.exitCode).toBeNull();
  });

  it('vpnctl goodbye shuts the daemon down with exit 0', async () => {
    const a = await node(unique('bye'));
    const running = await startDaemon(a);
    const r = await vpnctl('--socket', socketOf(a), 'goodbye');
    expect(r.code).toBe(0);
    const result = await exitWithin(running, EXIT_DEADLINE_MS);
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(existsSync(socketOf(a))).toBe(false);
  });

  it('SIGHUP reloads the config, and refuses a bad one while it keeps running', async () => {
    const a = await node(unique('hup'));
    const newcomer = await createNode(root, unique('newcomer'));
    const running = await startDaemon(a);

    writeNodeConfig(a, [peerOf(newcomer, ['corp'])], undefined, { metricsListen: '' });
    running.child.kill('SIGHUP');
    await waitFor(
      () => running.lines.some((l) => l.includes('reloaded') && l.includes(`peers added: ${newcomer.name}`)),
      `reload log line (stderr:\n${running.lines.join('\n')})`,
      5000,
    );

    writeFileSync(a.configPath, readFileSync(a.configPath, 'utf8') + '\nbogus_key = 1\n');
    running.child.kill('SIGHUP');
    await waitFor(() => running.lines.some((l) => /reload refused/.test(l)), `refused reload log line (stderr:\n${running.lines.join('\n')})`, 5000);
    const refusal = running.lines.find((l) => /reload refused/.test(l))!;
    expect(refusal).toMatch(LOG_LINE);
    expect(refusal).toContain('bogus_key');

    const status = await vpnctl('--socket', socketOf(a), '--json', 'status');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: a.name, peers_configured: 1 });
    expect(running.child.exitCode).toBeNull();
  });
});
