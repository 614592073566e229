// A mesh of vibepn nodes on a Lab (netns.ts) for the fault, restart and roaming end-to-end tests:
// identities, configs, starting, killing and restarting daemons, fast control-socket queries and
// asynchronous pings through the overlay. Every daemon run of a node is kept so a failure can show
// the logs of all of them.
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeIdentityFiles } from '../../src/crypto/identity.js';
import { distinctIdentity } from './identities.js';
import { newConfig, newNetwork, newPeer, writeConfigFile } from '../../src/config/write.js';
import { resolveNetworkAddress } from '../../src/config/address.js';
import { formatIp } from '../../src/netgraph/addr.js';
import { controlRequest } from '../../src/control/client.js';
import type { NetworkConfig, PeerConfig } from '../../src/config/types.js';
import type { PeerRow, RouteRow, StatusResult } from '../../src/control/api.js';
import { Lab, VPNCTL, daemonLogs, type Host } from './netns.js';

export const CORP = newNetwork('corp', '10.42.0.0/24');
export const METRICS_PORT = 9100;

export interface MeshNode {
  name: string;
  host: Host;
  dir: string;
  fingerprint: string;
  socket: string;
  /** The running daemon (the last one started). */
  daemon?: ChildProcess;
  /** Every daemon process started for this node, oldest first. */
  runs: ChildProcess[];
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The node's overlay address in `net` (auto, derived from its fingerprint). */
export function overlay(node: MeshNode, net: NetworkConfig = CORP): string {
  return formatIp(resolveNetworkAddress(net, node.fingerprint));
}

export class Mesh {
  readonly lab = new Lab();
  readonly root = mkdtempSync(join(tmpdir(), 'vibepn-e2e-'));
  readonly nodes: MeshNode[] = [];
  private readonly takenAddresses = new Set<string>();
  private readonly cleanups: Array<() => Promise<unknown> | unknown> = [];

  /** Runs `fn` on destroy(), before the namespaces go (helper processes, e.g. a relay). */
  atDestroy(fn: () => Promise<unknown> | unknown): void {
    this.cleanups.push(fn);
  }

  /** Adds `count` nodes n1..nK on the lab's segment at 192.0.2.1..K (or at the given indices). */
  async addNodes(count: number, indices?: number[]): Promise<MeshNode[]> {
    const added: MeshNode[] = [];
    for (let i = 0; i < count; i++) {
      const index = indices?.[i] ?? this.nodes.length + 1;
      const name = `n${index}`;
      const dir = join(this.root, name);
      const identity = await distinctIdentity(name, this.takenAddresses);
      writeIdentityFiles(join(dir, 'node.crt'), join(dir, 'node.key'), identity);
      const node: MeshNode = { name, host: this.lab.addHost(index), dir, fingerprint: identity.fingerprint, socket: join(dir, 'vpn.sock'), runs: [] };
      this.nodes.push(node);
      added.push(node);
    }
    return added;
  }

  /** Writes the node's config. `listen` defaults to its underlay address, port 51820. */
  configure(node: MeshNode, peers: PeerConfig[], networks: NetworkConfig[] = [CORP], options: { listen?: string; offload?: boolean; relay?: boolean } = {}): void {
    const config = newConfig(join(node.dir, 'config.toml'), {
      cert: 'node.crt',
      key: 'node.key',
      knownPeers: 'known_peers.json',
      daemon: {
        listen: options.listen ?? `${node.host.underlay}:51820`,
        controlSocket: node.socket,
        metricsListen: `127.0.0.1:${METRICS_PORT}`,
        logLevel: 'debug',
        ...(options.offload === undefined ? {} : { offload: options.offload }),
        ...(options.relay === undefined ? {} : { relay: options.relay }),
      },
      peers,
      networks,
    });
    writeConfigFile(config.path, config, { force: true });
  }

  /** A pinned [[peers]] entry for `node`, at its underlay address unless `address` says otherwise. */
  peer(node: MeshNode, networks: string[] = ['corp'], options: { address?: string } = {}): PeerConfig {
    return newPeer(node.name, networks, { address: options.address ?? `${node.host.underlay}:51820`, fingerprint: node.fingerprint });
  }

  /** Full mesh: every node lists every other one at its underlay address. */
  configureFullMesh(nodes: MeshNode[] = this.nodes): void {
    for (const node of nodes) this.configure(node, nodes.filter((n) => n !== node).map((n) => this.peer(n)));
  }

  /**
   * Starts the node's daemon. Resolves when the process is spawned and its socket file exists; a
   * socket left by a killed daemon exists already, so callers that restart wait on `control`.
   */
  async start(node: MeshNode): Promise<ChildProcess> {
    const child = await this.lab.startDaemon(node.host, join(node.dir, 'config.toml'), node.socket, join(node.dir, 'vpn.log'));
    node.daemon = child;
    node.runs.push(child);
    return child;
  }

  /** Sends `signal` to the node's daemon and resolves with its exit code once it is gone. */
  async stop(node: MeshNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const child = node.daemon;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  }

  alive(node: MeshNode): boolean {
    return !!node.daemon && node.daemon.exitCode === null && node.daemon.signalCode === null;
  }

  /** One control-socket request (the protocol vpnctl speaks), without spawning vpnctl. */
  async control<T>(node: MeshNode, cmd: string, timeoutMs = 1000): Promise<T> {
    return (await controlRequest(node.socket, { cmd }, timeoutMs)) as T;
  }

  /** The same, or null when the daemon does not answer (not up yet, or gone). */
  async tryControl<T>(node: MeshNode, cmd: string, timeoutMs = 1000): Promise<T | null> {
    try {
      return await this.control<T>(node, cmd, timeoutMs);
    } catch {
      return null;
    }
  }

  status(node: MeshNode): Promise<StatusResult | null> {
    return this.tryControl<StatusResult>(node, 'status');
  }

  peers(node: MeshNode): Promise<PeerRow[] | null> {
    return this.tryControl<PeerRow[]>(node, 'peers');
  }

  routes(node: MeshNode): Promise<RouteRow[] | null> {
    return this.tryControl<RouteRow[]>(node, 'routes');
  }

  /** `vpnctl --socket … --json <args>` as a subprocess (not blocking the event loop), parsed. */
  vpnctl(node: MeshNode, ...args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [VPNCTL, '--socket', node.socket, '--json', ...args], { encoding: 'utf8', timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) return reject(new Error(`vpnctl ${args.join(' ')} for ${node.name} failed: ${error.message} ${stderr}`));
        try {
          resolve(JSON.parse(stdout));
        } catch (parseError) {
          reject(parseError as Error);
        }
      });
    });
  }

  /** Every daemon run's stderr for this node, for failure messages. */
  logs(node: MeshNode, lastLines = 400): string {
    const text = node.runs.map((child, i) => `--- ${node.name} run ${i + 1} (pid ${child.pid}) ---\n${daemonLogs(child)}`).join('\n');
    const lines = text.split('\n');
    return lines.slice(-lastLines).join('\n');
  }

  allLogs(lastLines = 200): string {
    return this.nodes.map((n) => this.logs(n, lastLines)).join('\n');
  }

  async destroy(): Promise<void> {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
    await this.lab.destroy();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** One ping through the overlay from `ns`, without blocking the event loop; true if answered. */
export function pingOnce(ns: string, address: string, waitS = 1): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', String(waitS), address], { timeout: (waitS + 5) * 1000 }, (error) =>
      resolve(!error),
    );
  });
}

/** Polls `check` every `intervalMs` until it returns true; resolves with the elapsed ms, or null at `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 20): Promise<number | null> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) return null;
    await sleep(intervalMs);
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Prints one figure line for docs/RELIABILITY.md. */
export function figure(name: string, value: number | string): void {
  const shown = typeof value === 'number' ? String(Math.round(value)) : value;
  console.log(`FIGURE ${name}=${shown}`);
}
