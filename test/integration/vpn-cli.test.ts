// The `vpn` command line as a user types it, on the built daemon (`node dist/cmd/vpn.js`, so run
// `npm run build` first): the config path as an argument, -v, unknown flags, a private key that
// others can read, and a package whose native addons were never built. Control plane only
// (--no-tun), on loopback, in a temporary directory.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Subprocesses, VPN, VPNCTL, type RunResult, type Running } from '../helpers/cli-run.js';
import { createNode, peerOf, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

const REPO = resolve(import.meta.dirname, '../..');
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
/** Long enough for a loaded machine; a daemon on loopback is up in well under a second. */
const START_TIMEOUT_MS = 10_000;

let root: string;
let procs: Subprocesses;

const run = (script: string, args: string[]): Promise<RunResult> => procs.run(script, args);
const vpn = (...args: string[]) => run(VPN, args);

/** Starts vpn and waits for its "listening" line; fails with its output if it exits first. */
async function startVpn(args: string[], script = VPN): Promise<Running> {
  const running = procs.spawn(script, args);
  let early: RunResult | null = null;
  void running.exited.then((r) => (early = r));
  const started = Date.now();
  while (!running.lines.some((l) => l.includes('listening on udp'))) {
    if (early !== null) throw new Error(`vpn ${args.join(' ')} exited at start-up: ${JSON.stringify(early)}`);
    if (Date.now() - started > START_TIMEOUT_MS) throw new Error(`vpn ${args.join(' ')} did not start:\n${running.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return running;
}

async function statusName(node: TestNode): Promise<string> {
  const r = await run(VPNCTL, ['--socket', join(node.dir, 'vpn.sock'), '--json', 'status']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { name: string }).name;
}

let counter = 0;
async function node(name: string, peers: TestNode[] = []): Promise<TestNode> {
  const created = await createNode(root, `${name}${++counter}`);
  writeNodeConfig(created, peers.map((p) => peerOf(p, ['corp'])), undefined, { metricsListen: '', logLevel: 'info' });
  return created;
}

/** vpn's own usage text, as `vpn -h` prints it. */
let usage: string;

beforeAll(async () => {
  if (!existsSync(VPN)) throw new Error(`${VPN} is missing: run 'npm run build' first (npm test does)`);
  root = mkdtempSync(join(tmpdir(), 'vibepn-vpn-cli-'));
  procs = new Subprocesses(root);
  usage = (await vpn('-h')).stdout;
  expect(usage).toMatch(/^usage: vpn /);
});

afterEach(() => procs.stopAll());

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('vpn CONFIG: the config path as the one argument', () => {
  it('a relative path as the only argument is the config file (not the default one)', async () => {
    const a = await node('positional');
    await startVpn([relative(root, a.configPath), '--no-tun']);
    expect(await statusName(a)).toBe(a.name);
  });

  it('the same file given both ways is fine', async () => {
    const a = await node('bothways');
    await startVpn(['-config', a.configPath, relative(root, a.configPath), '--no-tun']);
    expect(await statusName(a)).toBe(a.name);
  });

  it('two config paths are a usage error naming both', async () => {
    const a = await node('twice');
    const b = await node('twice');
    const r = await vpn(a.configPath, b.configPath, '--no-tun');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const first = r.stderr.split('\n')[0]!;
    expect(first).toMatch(/^vpn: /);
    expect(first).toContain(a.configPath);
    expect(first).toContain(b.configPath);
    expect(r.stderr).toContain(usage);
  });

  it.each(['-config', '--config'])('an argument and a different %s are a usage error naming both', async (flag) => {
    const a = await node('conflict');
    const b = await node('conflict');
    const r = await vpn(a.configPath, flag, b.configPath, '--no-tun');
    expect(r.code).toBe(2);
    const first = r.stderr.split('\n')[0]!;
    expect(first).toContain(a.configPath);
    expect(first).toContain(b.configPath);
    expect(r.stderr).toContain(usage);
    expect(existsSync(join(a.dir, 'vpn.sock')) || existsSync(join(b.dir, 'vpn.sock'))).toBe(false);
  });

  it('more arguments than that are a usage error with the usage', async () => {
    const r = await vpn('a.toml', 'b.toml', 'c.toml', '--no-tun');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vpn: .*'c\.toml'/);
    expect(r.stderr).toContain(usage);
  });
});

describe('vpn flags', () => {
  it.each(['-v', '--version', '-version'])('%s prints vibepn <version>', async (flag) => {
    const r = await vpn(flag);
    expect(r).toEqual({ code: 0, signal: null, stdout: `vibepn ${PACKAGE_VERSION}\n`, stderr: '' });
  });

  it.each([
    [['-x'], '-x'],
    [['-bogus'], '-bogus'],
    [['--bogus=1'], '--bogus'],
    [['--no-tun', '-q', 'config.toml'], '-q'],
  ])('%j: one line naming the flag as typed, then the usage, exit 2', async (args, shown) => {
    const r = await vpn(...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`vpn: unknown flag '${shown}'\n${usage}`);
  });

  it('-h shows the argument form, -v and --version', async () => {
    expect(usage).toContain('vpn [-config PATH | PATH]');
    expect(usage).toMatch(/-v, --version/);
  });
});

describe('a private key others can read', () => {
  it.each(['0644', '0640', '0604', '0660'])('mode %s: refused before anything starts, naming the file and the chmod', async (mode) => {
    const a = await node('loosekey');
    const key = join(a.dir, 'node.key');
    chmodSync(key, parseInt(mode, 8));
    const r = await vpn('-config', a.configPath, '--no-tun');
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^vpn: private key file /);
    expect(lines[0]).toContain(key);
    expect(lines[0]).toContain(`mode ${mode}`);
    expect(lines[0]).toContain(`chmod 600 ${key}`);
    expect(existsSync(join(a.dir, 'vpn.sock'))).toBe(false);
    expect(existsSync(join(a.dir, 'known_peers.json'))).toBe(false);
  });

  it.each(['0600', '0400'])('mode %s starts', async (mode) => {
    const a = await node('tightkey');
    chmodSync(join(a.dir, 'node.key'), parseInt(mode, 8));
    await startVpn(['-config', a.configPath, '--no-tun']);
    expect(await statusName(a)).toBe(a.name);
  });

  it('only the key is checked: a world-readable certificate is normal', async () => {
    const a = await node('cert644');
    chmodSync(join(a.dir, 'node.crt'), 0o644);
    chmodSync(join(a.dir, 'node.key'), 0o600);
    await startVpn(['-config', a.configPath, '--no-tun']);
  });
});

describe('a package whose native addons are missing', () => {
  /**
   * dist/ copied where no build/Release lies above it, with the real node_modules: the daemon as
   * installed from a tarball whose addon build failed.
   */
  function packageWithout(name: string, addons: Record<string, string> = {}): string {
    const dir = join(root, name);
    // The daemon looks for build/Release in every directory above its own: one above the test
    // root (TMPDIR inside a checkout) would be found, and nothing would be missing.
    for (let up = root; up !== dirname(up); up = dirname(up)) {
      if (existsSync(join(up, 'build', 'Release'))) throw new Error(`${up}/build/Release exists above the test root ${root}: set TMPDIR outside any vibepn checkout`);
    }
    cpSync(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true });
    cpSync(join(REPO, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    for (const [file, content] of Object.entries(addons)) {
      mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
      writeFileSync(join(dir, 'build', 'Release', file), content);
    }
    return join(dir, 'dist/cmd/vpn.js');
  }

  /** What the daemon said about its addons: other start-up warnings are not this test's business. */
  const addonLines = (running: Running) => running.lines.filter((l) => l.includes('.node'));

  it('one warning at start-up names the batched UDP addon and how to build it', async () => {
    const script = packageWithout('no-addons');
    const a = await node('noaddon');
    const running = await startVpn(['-config', a.configPath, '--no-tun'], script);
    const warnings = addonLines(running);
    expect(warnings, running.lines.join('\n')).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\S+ WARN {2}\[native\] /);
    expect(warnings[0]).toContain('vibepn_udp.node');
    expect(warnings[0]).toContain('npm run build:native');
    // --no-tun opens no TUN, so its addon is not missed.
    expect(warnings[0]).not.toContain('vibepn_tun.node');
    expect(await statusName(a)).toBe(a.name);
  });

  it('an addon that is there but does not load is named with the reason', async () => {
    const script = packageWithout('broken-addon', { 'vibepn_udp.node': 'not an ELF file\n' });
    const a = await node('brokenaddon');
    const running = await startVpn(['-config', a.configPath, '--no-tun'], script);
    const warnings = addonLines(running);
    expect(warnings, running.lines.join('\n')).toHaveLength(1);
    expect(warnings[0]).toContain('vibepn_udp.node');
    expect(warnings[0]).toMatch(/does not load: \S*vibepn_udp\.node: /);
    expect(warnings[0]).toContain('npm run build:native');
  });

  it('with the addons built, nothing is said', async () => {
    const a = await node('withaddons');
    const running = await startVpn(['-config', a.configPath, '--no-tun']);
    expect(addonLines(running)).toEqual([]);
  });
});
