// End to end (issue 4): real daemons as subprocesses in network namespaces, real TUN devices,
// real pings and TCP. Needs root; CI runs as root.
import { DEFAULTS } from '../../src/config/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { writeIdentityFiles } from '../../src/crypto/identity.js';
import { newConfig, newNetwork, newPeer, writeConfigFile } from '../../src/config/write.js';
import { resolveNetworkAddress } from '../../src/config/address.js';
import { formatIp } from '../../src/netgraph/addr.js';
import type { NetworkConfig, PeerConfig } from '../../src/config/types.js';
import { Lab, VPNCTL, daemonLogs, inNs, netnsUnavailable, type Host } from '../helpers/netns.js';
import { ping, sample, scrape, tcpTransfer } from '../helpers/traffic.js';
import { distinctIdentity } from '../helpers/identities.js';

const skip = netnsUnavailable();
const METRICS_PORT = 9100;

interface Node {
  name: string;
  host: Host;
  dir: string;
  fingerprint: string;
  socket: string;
  daemon?: ChildProcess;
}

let lab: Lab | null = null;
let root = '';

afterEach(async () => {
  await lab?.destroy();
  lab = null;
  if (root) rmSync(root, { recursive: true, force: true });
});

async function makeNodes(count: number): Promise<Node[]> {
  lab = new Lab();
  root = mkdtempSync(join(tmpdir(), 'vibepn-e2e-'));
  const nodes: Node[] = [];
  const taken = new Set<string>();
  for (let i = 1; i <= count; i++) {
    const name = `n${i}`;
    const dir = join(root, name);
    const identity = await distinctIdentity(name, taken);
    writeIdentityFiles(join(dir, 'node.crt'), join(dir, 'node.key'), identity);
    nodes.push({ name, host: lab.addHost(i), dir, fingerprint: identity.fingerprint, socket: join(dir, 'vpn.sock') });
  }
  return nodes;
}

function configure(node: Node, peers: PeerConfig[], networks: NetworkConfig[]): void {
  const config = newConfig(join(node.dir, 'config.toml'), {
    cert: 'node.crt',
    key: 'node.key',
    knownPeers: 'known_peers.json',
    daemon: { listen: `${node.host.underlay}:51820`, controlSocket: node.socket, metricsListen: `127.0.0.1:${METRICS_PORT}`, logLevel: 'debug' },
    peers,
    networks,
  });
  writeConfigFile(config.path, config, { force: true });
}

function peer(node: Node, networks: string[], options: NonNullable<Parameters<typeof newPeer>[2]> = {}): PeerConfig {
  return newPeer(node.name, networks, { address: `${node.host.underlay}:51820`, fingerprint: node.fingerprint, ...options });
}

async function start(node: Node): Promise<void> {
  node.daemon = await lab!.startDaemon(node.host, join(node.dir, 'config.toml'), node.socket, join(node.dir, 'vpn.log'));
}

function vpnctl(node: Node, ...args: string[]): unknown {
  const out = execFileSync(process.execPath, [VPNCTL, '--socket', node.socket, '--json', ...args], { encoding: 'utf8' });
  return JSON.parse(out);
}

/**
 * Until `peers` are connected over one connection each: when both sides dial, a packet sent while
 * the duplicate is still open may go on the one the tie-break then closes.
 */
async function waitConnected(node: Node, peers: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const status = vpnctl(node, 'status') as { peers_connected: number; connections: number };
    if (status.peers_connected >= peers && status.connections === peers) return;
    if (Date.now() - started > 15_000) {
      throw new Error(`${node.name} has ${status.peers_connected}/${peers} peers over ${status.connections} connections:\n${daemonLogs(node.daemon!)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitRoutes(node: Node, count: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const routes = vpnctl(node, 'routes') as unknown[];
    if (routes.length >= count) return;
    if (Date.now() - started > 15_000) throw new Error(`${node.name} has ${routes.length}/${count} routes:\n${daemonLogs(node.daemon!)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const CORP = newNetwork('corp', '10.42.0.0/24');
const overlay = (node: Node, net: NetworkConfig = CORP) => formatIp(resolveNetworkAddress(net, node.fingerprint));

describe.skipIf(skip !== null)(`end to end in network namespaces${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('two nodes: ping both ways, a 20 MB TCP transfer, vpnctl views and packet counters', async () => {
    const [a, b] = (await makeNodes(2)) as [Node, Node];
    configure(a, [peer(b, ['corp'])], [CORP]);
    configure(b, [peer(a, ['corp'])], [CORP]);
    await start(a);
    await start(b);
    await waitConnected(a, 1);
    await waitConnected(b, 1);
    await waitRoutes(a, 1);
    await waitRoutes(b, 1);

    expect(ping(a.host.ns, overlay(b), 5)).toBe(5);
    expect(ping(b.host.ns, overlay(a), 5)).toBe(5);

    const transfer = await tcpTransfer(a.host.ns, b.host.ns, overlay(b), 20 * 1024 * 1024);
    expect(transfer.received).toBe(transfer.sent);
    expect(transfer.sent).toMatch(/^20971520 [0-9a-f]{64}$/);

    const peers = vpnctl(a, 'peers') as Array<{ name: string; connected: boolean; fingerprint: string }>;
    expect(peers).toEqual([expect.objectContaining({ name: 'n2', connected: true, fingerprint: b.fingerprint })]);
    const routes = vpnctl(a, 'routes') as Array<{ network: string; prefix: string; peer: string }>;
    expect(routes).toEqual([expect.objectContaining({ network: 'corp', prefix: `${overlay(b)}/32`, peer: b.fingerprint })]);
    const status = vpnctl(b, 'status') as { networks: Array<{ name: string; interface: string; address: string }> };
    expect(status.networks).toEqual([expect.objectContaining({ name: 'corp', address: overlay(b) })]);

    const metricsA = scrape(a.host.ns, METRICS_PORT);
    // 5 pings + the TCP transfer (20 MB in packets of at most the overlay MTU).
    const transferPackets = Math.floor((20 * 1024 * 1024) / DEFAULTS.mtu);
    expect(sample(metricsA, 'vibepn_forward_packets_total', 'network="corp"', 'direction="out"')).toBeGreaterThanOrEqual(5 + transferPackets);
    expect(sample(metricsA, 'vibepn_forward_bytes_total', 'network="corp"', 'direction="out"')).toBeGreaterThan(20 * 1024 * 1024);
    const metricsB = scrape(b.host.ns, METRICS_PORT);
    expect(sample(metricsB, 'vibepn_forward_packets_total', 'network="corp"', 'direction="in"')).toBeGreaterThanOrEqual(5 + transferPackets);
  });

  it('three nodes in one network: A reaches B and C, each at the right node', async () => {
    const [a, b, c] = (await makeNodes(3)) as [Node, Node, Node];
    configure(a, [peer(b, ['corp']), peer(c, ['corp'])], [CORP]);
    configure(b, [peer(a, ['corp']), peer(c, ['corp'])], [CORP]);
    configure(c, [peer(a, ['corp']), peer(b, ['corp'])], [CORP]);
    await Promise.all([start(a), start(b), start(c)]);
    for (const n of [a, b, c]) await waitRoutes(n, 2);

    const before = { b: scrape(b.host.ns, METRICS_PORT), c: scrape(c.host.ns, METRICS_PORT) };
    const inOf = (text: string) => sample(text, 'vibepn_forward_packets_total', 'network="corp"', 'direction="in"');
    expect(ping(a.host.ns, overlay(b), 4)).toBe(4);
    const midC = inOf(scrape(c.host.ns, METRICS_PORT));
    expect(midC - inOf(before.c)).toBeLessThan(4); // B's pings went to B, not C
    expect(inOf(scrape(b.host.ns, METRICS_PORT)) - inOf(before.b)).toBeGreaterThanOrEqual(4);
    expect(ping(a.host.ns, overlay(c), 4)).toBe(4);
    expect(inOf(scrape(c.host.ns, METRICS_PORT)) - midC).toBeGreaterThanOrEqual(4);
    expect(ping(b.host.ns, overlay(c), 2)).toBe(2);
  });

  it('an IPv6 overlay network carries a ping and a TCP transfer', async () => {
    const v6 = newNetwork('six', 'fd42:6:6::/64');
    const [a, b] = (await makeNodes(2)) as [Node, Node];
    configure(a, [peer(b, ['six'])], [v6]);
    configure(b, [peer(a, ['six'])], [v6]);
    await start(a);
    await start(b);
    await waitRoutes(a, 1);
    await waitRoutes(b, 1);
    expect(ping(a.host.ns, overlay(b, v6), 3)).toBe(3);
    const transfer = await tcpTransfer(a.host.ns, b.host.ns, overlay(b, v6), 2 * 1024 * 1024);
    expect(transfer.received).toBe(transfer.sent);
  });

  it('a subnet route exported by a node makes a host behind it reachable', async () => {
    const [a, b] = (await makeNodes(2)) as [Node, Node];
    const lanHost = lab!.addHostBehind(b.host, '192.168.50');
    configure(a, [peer(b, ['corp'], { allowedRoutes: ['192.168.50.0/24'] })], [CORP]);
    configure(b, [peer(a, ['corp'])], [newNetwork('corp', '10.42.0.0/24', { routes: ['192.168.50.0/24'] })]);
    await start(a);
    await start(b);
    await waitRoutes(a, 2);
    expect(ping(a.host.ns, lanHost.underlay, 3)).toBe(3);
  });

  it('drops and counts a packet with no route, and nothing else breaks', async () => {
    const [a, b] = (await makeNodes(2)) as [Node, Node];
    configure(a, [peer(b, ['corp'])], [CORP]);
    configure(b, [peer(a, ['corp'])], [CORP]);
    await start(a);
    await start(b);
    await waitRoutes(a, 1);
    const unrouted = [...Array(250).keys()].map((i) => `10.42.0.${i + 2}`).find((ip) => ip !== overlay(a) && ip !== overlay(b))!;
    expect(ping(a.host.ns, unrouted, 2)).toBe(0);
    const metrics = scrape(a.host.ns, METRICS_PORT);
    expect(sample(metrics, 'vibepn_forward_drops_total', 'network="corp"', 'reason="no_route"')).toBeGreaterThanOrEqual(2);
    expect(ping(a.host.ns, overlay(b), 2)).toBe(2);
    expect((vpnctl(a, 'status') as { peers_connected: number }).peers_connected).toBe(1);
  });

  it('gives each network its own interface and removes it on reload and on shutdown', async () => {
    const lab2 = newNetwork('lab', '10.77.0.0/24');
    const [a, b] = (await makeNodes(2)) as [Node, Node];
    configure(a, [peer(b, ['corp', 'lab'])], [CORP, lab2]);
    configure(b, [peer(a, ['corp', 'lab'])], [CORP, lab2]);
    await start(a);
    await start(b);
    await waitRoutes(a, 2);
    const links = () => (JSON.parse(inNs(a.host.ns, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);
    expect(links()).toEqual(expect.arrayContaining(['vpn-corp', 'vpn-lab']));
    expect(ping(a.host.ns, overlay(b, lab2), 2)).toBe(2);

    configure(a, [peer(b, ['corp'])], [CORP]);
    expect(vpnctl(a, 'reload')).toContain('networks removed: lab');
    expect(links()).not.toContain('vpn-lab');
    expect(links()).toContain('vpn-corp');
    expect(ping(a.host.ns, overlay(b), 2)).toBe(2);

    a.daemon!.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => a.daemon!.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(links()).not.toContain('vpn-corp');
  });
});

