// Builds test nodes: identity files, configs and daemons in a temporary directory, on loopback.
import { createSocket } from 'node:dgram';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, writeIdentityFiles } from '../../src/crypto/identity.js';
import { newConfig, newNetwork, newPeer, writeConfigFile, type NewConfigOptions } from '../../src/config/write.js';
import type { Config, NetworkConfig, PeerConfig } from '../../src/config/types.js';
import { Daemon, type DaemonOptions, type DaemonTiming } from '../../src/daemon/daemon.js';
import { Logger } from '../../src/log/logger.js';

export interface TestNode {
  name: string;
  dir: string;
  configPath: string;
  fingerprint: string;
  port: number;
  address: string;
  daemon?: Daemon;
  lines: string[];
}

/** A UDP port that was free a moment ago (bind to 0, read it, release it). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function createNode(root: string, name: string): Promise<TestNode> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const identity = await generateIdentity(name);
  writeIdentityFiles(join(dir, 'node.crt'), join(dir, 'node.key'), identity);
  const port = await freeUdpPort();
  return { name, dir, configPath: join(dir, 'config.toml'), fingerprint: identity.fingerprint, port, address: `127.0.0.1:${port}`, lines: [] };
}

export function peerOf(node: TestNode, networks: string[], options: NonNullable<Parameters<typeof newPeer>[2]> = {}): PeerConfig {
  return newPeer(node.name, networks, { address: node.address, fingerprint: node.fingerprint, ...options });
}

export function writeNodeConfig(
  node: TestNode,
  peers: PeerConfig[],
  networks: NetworkConfig[] = [newNetwork('corp', '10.42.0.0/24')],
  daemon: NonNullable<NewConfigOptions['daemon']> = {},
): Config {
  const config = newConfig(node.configPath, {
    cert: 'node.crt',
    key: 'node.key',
    knownPeers: 'known_peers.json',
    daemon: {
      listen: node.address,
      controlSocket: join(node.dir, 'vpn.sock'),
      metricsListen: '127.0.0.1:0',
      logLevel: 'debug',
      ...daemon,
    },
    peers,
    networks,
  });
  writeConfigFile(node.configPath, config, { force: true });
  return config;
}

export const FAST_TIMING: Partial<DaemonTiming> = {
  keepaliveMs: 300,
  deadAfterMs: 1500,
  tickMs: 100,
  idleTimeoutMs: 5000,
  handshakeTimeoutMs: 2000,
  backoff: { initialMs: 100, maxMs: 500 },
  healthyAfterMs: 1000,
};

export async function startNode(node: TestNode, config: Config, options: Partial<DaemonOptions> = {}): Promise<Daemon> {
  const logger = new Logger(node.name, { level: 'debug', sink: (line) => node.lines.push(line) });
  const daemon = new Daemon({ config, logger, timing: FAST_TIMING, processMetrics: false, ...options });
  await daemon.start();
  node.daemon = daemon;
  return daemon;
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function metricsText(node: TestNode): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${node.daemon!.metricsPort}/metrics`);
  return response.text();
}

/** One sample's value from Prometheus text; `labels` is "a=\"x\",b=\"y\"" or '' for an unlabelled metric. */
export function metricValue(text: string, name: string, labels: string): number {
  const line = text
    .split('\n')
    .find((l) => (labels === '' ? l.startsWith(`${name} `) : l.startsWith(`${name}{`) && labels.split(',').every((label) => l.includes(label))));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

/** The learned routes of a daemon as "network prefix → peer fingerprint" strings. */
export function routeSet(daemon: Daemon): string[] {
  return daemon
    .routeList()
    .map((r) => `${r.network} ${r.prefix} ${r.peer}`)
    .sort();
}

/**
 * A UDP relay in front of a node: peers dial the relay, which forwards to the node. `drop` cuts
 * the path both ways, as a crash or a network partition would, without the node saying Goodbye.
 */
export class UdpRelay {
  drop = false;
  /** Added one-way latency, both directions. */
  delayMs = 0;
  port = 0;
  private readonly front = createSocket('udp4');
  private readonly backs = new Map<string, ReturnType<typeof createSocket>>();

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.front.on('message', (msg, from) => {
      if (this.drop) return;
      const key = `${from.address}:${from.port}`;
      let back = this.backs.get(key);
      if (!back) {
        back = createSocket('udp4');
        back.on('message', (reply) => {
          if (!this.drop) this.later(() => this.front.send(reply, from.port, from.address));
        });
        back.bind(0, '127.0.0.1');
        this.backs.set(key, back);
      }
      const out = back;
      this.later(() => out.send(msg, this.targetPort, '127.0.0.1'));
    });
    await new Promise<void>((resolve) => this.front.bind(0, '127.0.0.1', resolve));
    this.port = this.front.address().port;
  }

  private closed = false;

  private later(send: () => void): void {
    if (this.delayMs === 0) send();
    else setTimeout(() => !this.drop && !this.closed && send(), this.delayMs);
  }

  close(): void {
    this.closed = true;
    this.front.close();
    for (const back of this.backs.values()) back.close();
  }
}
