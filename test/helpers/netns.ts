// Test hosts in network namespaces: a hub namespace with a bridge, each host joined to it by a
// veth pair, underlay 192.0.2.0/24 (TEST-NET-1, only ever inside these namespaces). Daemons run as
// real subprocesses inside their host's namespace, the way users run them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export const REPO = resolve(import.meta.dirname, '../..');
export const VPN = join(REPO, 'dist/cmd/vpn.js');
export const VPNCTL = join(REPO, 'dist/cmd/vpnctl.js');

/** Why namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return "needs the 'ip' command (iproute2)";
  }
  if (!existsSync(VPN)) return `needs ${VPN} (npm run build)`;
  return null;
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function inNs(ns: string, command: string, args: string[], options: { timeout?: number; input?: string } = {}): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: options.timeout ?? 30_000,
    input: options.input,
  });
}

export interface Host {
  ns: string;
  /** Underlay address, 192.0.2.N. */
  underlay: string;
}

/** A set of hosts on one underlay segment; `destroy()` removes every namespace it made. */
export class Lab {
  readonly tag = randomBytes(3).toString('hex');
  readonly hub: string;
  readonly hosts: Host[] = [];
  private readonly namespaces: string[] = [];
  private readonly daemons: ChildProcess[] = [];

  constructor() {
    this.hub = this.addNamespace('hub');
    ip('-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.hub, 'link', 'set', 'br0', 'up');
  }

  addNamespace(role: string): string {
    const ns = `vt${this.tag}${role}`.slice(0, 30);
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** A host on the shared segment with underlay address 192.0.2.<index>. */
  addHost(index: number): Host {
    const ns = this.addNamespace(`h${index}`);
    const outside = `v${this.tag}${index}`.slice(0, 15);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('link', 'set', outside, 'netns', this.hub);
    ip('-n', this.hub, 'link', 'set', outside, 'master', 'br0', 'up');
    ip('-n', ns, 'addr', 'add', `192.0.2.${index}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    const host = { ns, underlay: `192.0.2.${index}` };
    this.hosts.push(host);
    return host;
  }

  /** A host behind `router` on its own link (subnet-router tests): router gets .1, the host .2. */
  addHostBehind(router: Host, subnet24: string): Host {
    const ns = this.addNamespace(`lan${this.namespaces.length}`);
    ip('-n', router.ns, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', router.ns, 'addr', 'add', `${subnet24}.1/24`, 'dev', 'lan0');
    ip('-n', router.ns, 'link', 'set', 'lan0', 'up');
    ip('-n', ns, 'addr', 'add', `${subnet24}.2/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', `${subnet24}.1`);
    inNs(router.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    return { ns, underlay: `${subnet24}.2` };
  }

  /** Starts `vpn -config` in the host's namespace; resolves once its control socket answers. */
  async startDaemon(host: Host, configPath: string, socketPath: string, logPath: string): Promise<ChildProcess> {
    mkdirSync(resolve(logPath, '..'), { recursive: true });
    const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, VPN, '-config', configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stderr!.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('exit', () => {
      try {
        execFileSync('sh', ['-c', `cat >> '${logPath}'`], { input: Buffer.concat(chunks) });
      } catch {
        /* best effort */
      }
    });
    this.daemons.push(child);
    const started = Date.now();
    while (!existsSync(socketPath)) {
      if (child.exitCode !== null) throw new Error(`vpn in ${host.ns} exited ${child.exitCode}: ${Buffer.concat(chunks).toString()}`);
      if (Date.now() - started > 15_000) throw new Error(`vpn in ${host.ns} did not open ${socketPath}: ${Buffer.concat(chunks).toString()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    (child as ChildProcess & { logs: () => string }).logs = () => Buffer.concat(chunks).toString();
    return child;
  }

  /**
   * Like startDaemon, but the daemon's stderr goes to `stderr`: a file descriptor (the daemon's
   * log writes then never queue inside it, whatever reads the log) or 'pipe', read by the caller
   * from child.stderr as fast or as slowly as it likes. Resolves once the control socket exists.
   */
  async startDaemonWithStderr(host: Host, configPath: string, socketPath: string, stderr: number | 'pipe'): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, VPN, '-config', configPath], {
      stdio: ['ignore', 'ignore', stderr],
    });
    this.daemons.push(child);
    const started = Date.now();
    while (!existsSync(socketPath)) {
      if (child.exitCode !== null) throw new Error(`vpn in ${host.ns} exited ${child.exitCode}`);
      if (Date.now() - started > 15_000) throw new Error(`vpn in ${host.ns} did not open ${socketPath}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return child;
  }

  async destroy(): Promise<void> {
    for (const child of this.daemons) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(
      this.daemons.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              resolve();
            }, 4000);
            child.on('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    for (const ns of this.namespaces.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  }
}

export function daemonLogs(child: ChildProcess): string {
  return (child as ChildProcess & { logs?: () => string }).logs?.() ?? '';
}

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}
