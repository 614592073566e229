// Builds test nodes: identity files, configs and daemons in a temporary directory, on loopback.
import { createSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeIdentityFiles } from '../../src/crypto/identity.js';
import { newConfig, newNetwork, newPeer, writeConfigFile, type NewConfigOptions } from '../../src/config/write.js';
import type { Config, NetworkConfig, PeerConfig } from '../../src/config/types.js';
import { Daemon, type DaemonOptions, type DaemonTiming } from '../../src/daemon/daemon.js';
import { Logger } from '../../src/log/logger.js';
import { distinctIdentity } from './identities.js';

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

/**
 * A free UDP port for a node that binds it later (its peers' configs name it first). Not one the
 * kernel picked for a bind to port 0: once released, the kernel may give that port to the next
 * socket bound to port 0 (a QUIC endpoint, a relay, another test process) before the node binds it.
 * Ports are taken below the kernel's ephemeral range instead, where nothing is assigned
 * automatically: in sequence from a random start (parallel test processes rarely meet), each
 * checked free by binding it.
 */
export async function freeUdpPort(): Promise<number> {
  for (let attempt = 0; attempt < FIXED_PORT_COUNT; attempt++) {
    const port = FIXED_PORT_FIRST + (nextFixedPort++ % FIXED_PORT_COUNT);
    if (await udpPortIsFree(port)) return port;
  }
  throw new Error(`no free UDP port in ${FIXED_PORT_FIRST}..${FIXED_PORT_FIRST + FIXED_PORT_COUNT - 1}`);
}

/** The first port of the kernel's ephemeral range (ip_local_port_range), or 32768 when unknown. */
function ephemeralPortStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    // not Linux
  }
  return 32768;
}

const FIXED_PORT_END = ephemeralPortStart();
const FIXED_PORT_FIRST = Math.max(1024, FIXED_PORT_END - 10_000);
const FIXED_PORT_COUNT = FIXED_PORT_END - FIXED_PORT_FIRST;
let nextFixedPort = randomInt(FIXED_PORT_COUNT);

async function udpPortIsFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  const bound = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => resolve(true));
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return bound;
}

/** Auto addresses already given to nodes under each test root (see identities.ts). */
const takenUnderRoot = new Map<string, Set<string>>();

/** `dirName`: another directory for a second node of the same name (a machine rejoining with a new key). */
export async function createNode(root: string, name: string, dirName = name): Promise<TestNode> {
  const dir = join(root, dirName);
  mkdirSync(dir, { recursive: true });
  let taken = takenUnderRoot.get(root);
  if (taken === undefined) takenUnderRoot.set(root, (taken = new Set()));
  const identity = await distinctIdentity(name, taken);
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

/** Polls `condition`; on timeout throws naming `what`, with the tail of `logsOf`'s daemon logs. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000, logsOf: TestNode[] = []): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) {
      const logs = logsOf.map((n) => `--- ${n.name} ---\n${n.lines.slice(-60).join('\n')}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${logs ? `\n${logs}` : ''}`);
    }
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
