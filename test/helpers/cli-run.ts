// The built `vpn` and `vpnctl` as subprocesses, the way a user runs them: run to completion
// with a deadline, or start a daemon and wait for its start-up line.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { waitFor, type TestNode } from './cluster.js';

export const VPN = resolve(import.meta.dirname, '../../dist/cmd/vpn.js');
export const VPNCTL = resolve(import.meta.dirname, '../../dist/cmd/vpnctl.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  lines: string[];
  exited: Promise<RunResult>;
}

/** Every child started here, for the test's afterEach to kill. */
export class Subprocesses {
  readonly children = new Set<ChildProcess>();

  constructor(
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  spawn(script: string, args: string[], env: NodeJS.ProcessEnv = {}, as?: { uid: number; gid: number }): Running {
    const child = spawn(process.execPath, [script, ...args], { cwd: this.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...this.env, ...env }, ...as });
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    const lines: string[] = [];
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    const exited = new Promise<RunResult>((resolveExit) => {
      child.on('close', (code, signal) => {
        this.children.delete(child);
        if (partial) lines.push(partial);
        resolveExit({ code, signal, stdout, stderr });
      });
    });
    return { child, exited, lines };
  }

  /** Runs to completion, killed after 15 s; `as` another user (tests run as root). */
  async run(script: string, args: string[], env: NodeJS.ProcessEnv = {}, as?: { uid: number; gid: number }): Promise<RunResult> {
    const { child, exited } = this.spawn(script, args, env, as);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const result = await exited;
    clearTimeout(timer);
    return result;
  }

  vpnctl(...args: string[]): Promise<RunResult> {
    return this.run(VPNCTL, args);
  }

  /** `vpn --no-tun -config FILE` (or --config, as `configFlag` says), resolved once it logged that it listens. */
  async startDaemon(node: TestNode, configFlag = '-config'): Promise<Running> {
    const running = this.spawn(VPN, ['--no-tun', configFlag, node.configPath]);
    let exitedEarly: RunResult | null = null;
    void running.exited.then((r) => (exitedEarly = r));
    await waitFor(() => exitedEarly !== null || running.lines.some((l) => l.includes('listening on udp')), `${node.name} to start (stderr so far:\n${running.lines.join('\n')})`);
    if (exitedEarly) throw new Error(`${node.name} exited at start-up: ${JSON.stringify(exitedEarly)}`);
    return running;
  }

  killAll(): void {
    for (const child of this.children) child.kill('SIGKILL');
  }

  /** killAll, resolved once every child has closed (so the next test starts on a free port). */
  async stopAll(): Promise<void> {
    const closing = [...this.children].map((child) => new Promise<void>((resolve) => child.once('close', () => resolve())));
    this.killAll();
    await Promise.all(closing);
  }
}

/** The built vpnctl run to completion (offline commands, which never wait on a daemon), in `cwd`. */
export function vpnctlSync(cwd: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [VPNCTL, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** init/join flags that keep a node's files inside the test directory `dir`, under `name`. */
export function nodeFileFlags(dir: string, name: string): string[] {
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
