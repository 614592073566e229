// Three whole daemons on an in-memory network with a fake clock (daemon-memory.test.ts): A and B
// cannot reach each other and know each other only by fingerprint; both reach H. The path finder
// (src/peer/path-finder.ts) must bring A↔B up through H's relay, move to a direct path once one
// exists (the partition heals: H's introduction makes both dial), fall back to the relay when the
// direct path breaks, and say why when there is no path at all.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/clock/fake.js';
import { controlRequest } from '../../src/control/client.js';
import { DEFAULT_TIMING } from '../../src/peer/timing.js';
import { MemoryNetwork } from '../../src/quic/memory-network.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import type { PeerRow } from '../../src/control/api.js';
import { createNode, metricsText, metricValue, peerOf, startNode, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

let root: string;
let nodes: TestNode[] = [];
let clock: FakeClock;
let network: MemoryNetwork;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-nat-'));
  nodes = [];
  clock = new FakeClock();
  network = new MemoryNetwork();
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

const H = '10.0.0.1';
const A = '10.0.0.2';
const B = '10.0.0.3';

async function memoryNode(name: string, host: string): Promise<TestNode> {
  const node = await createNode(root, name);
  node.address = `${host}:51820`;
  nodes.push(node);
  return node;
}

function start(node: TestNode, config: ReturnType<typeof writeNodeConfig>): Promise<unknown> {
  const host = node.address.slice(0, node.address.lastIndexOf(':'));
  return startNode(node, config, {
    clock,
    timing: DEFAULT_TIMING,
    localAddresses: () => [{ interface: 'eth0', address: host }],
    endpointFactory: (options) => QuicEndpoint.listen({ ...options, socket: network.socket(host) }),
  });
}

/**
 * Daemon time in 50 ms steps (a liveness probe waits fractions of a second, and must see the
 * answer that the event loop carries meanwhile), with a little real time for QUIC's own timers.
 */
async function advance(seconds: number): Promise<void> {
  for (let step = 0; step < seconds * 20; step++) {
    clock.advance(50);
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    if (step % 5 === 4) await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function peerRow(node: TestNode, name: string): Promise<PeerRow> {
  const rows = (await controlRequest(join(node.dir, 'vpn.sock'), { cmd: 'peers' })) as PeerRow[];
  return rows.find((r) => r.name === name)!;
}

async function until(condition: () => Promise<boolean>, what: string, seconds: number, logsOf: TestNode[]): Promise<number> {
  for (let s = 0; s < seconds; s++) {
    if (await condition()) return s;
    await advance(1);
  }
  if (await condition()) return seconds;
  throw new Error(`${what} not within ${seconds} s of daemon time\n${logsOf.map((n) => `--- ${n.name}\n${n.lines.slice(-80).join('\n')}`).join('\n')}`);
}

/** H (relay on or off) reachable by both; A and B know each other only by fingerprint. */
async function triangle(relay: boolean): Promise<{ h: TestNode; a: TestNode; b: TestNode }> {
  const h = await memoryNode('h', H);
  const a = await memoryNode('a', A);
  const b = await memoryNode('b', B);
  network.partition(A, B);
  await start(h, writeNodeConfig(h, [peerOf(a, ['corp'], { address: '' }), peerOf(b, ['corp'], { address: '' })], undefined, { relay }));
  await start(a, writeNodeConfig(a, [peerOf(h, ['corp']), peerOf(b, ['corp'], { address: '' })]));
  await start(b, writeNodeConfig(b, [peerOf(h, ['corp']), peerOf(a, ['corp'], { address: '' })]));
  return { h, a, b };
}

describe('NAT traversal on an in-memory network', () => {
  it('no direct path: A and B come up through H’s relay after about 5 s, and H counts what it relays', async () => {
    const { h, a, b } = await triangle(true);
    const took = await until(async () => (await peerRow(a, 'b')).connected && (await peerRow(b, 'a')).connected, 'a↔b relayed', 30, [a, b, h]);
    expect(took).toBeGreaterThanOrEqual(4);
    for (const [node, other] of [[a, 'b'], [b, 'a']] as const) {
      expect(await peerRow(node, other)).toMatchObject({ connected: true, path: 'relay', via: 'h', remote: 'via h' });
    }
    expect(await peerRow(a, 'h')).toMatchObject({ path: 'direct', via: null });
    expect(metricValue(await metricsText(h), 'vibepn_relay_forwarded_packets_total', '')).toBeGreaterThan(0);
    expect(metricValue(await metricsText(a), 'vibepn_relay_path_packets_total', 'direction="out"')).toBeGreaterThan(0);
    // The relayed session stays up (keepalives through H) and is not forced direct.
    await advance(25);
    expect(await peerRow(a, 'b')).toMatchObject({ connected: true, path: 'relay' });
  });

  it('moves to a direct path once one exists, falls back to the relay when it breaks, and returns', async () => {
    const { h, a, b } = await triangle(true);
    await until(async () => (await peerRow(a, 'b')).path === 'relay' && (await peerRow(b, 'a')).path === 'relay', 'a↔b relayed', 30, [a, b, h]);
    network.heal(A, B);
    // The next round of introductions (every 10 s while relayed) makes both dial; direct wins.
    await until(async () => (await peerRow(a, 'b')).path === 'direct' && (await peerRow(b, 'a')).path === 'direct', 'a↔b direct', 25, [a, b, h]);
    expect((await peerRow(a, 'b')).remote).toBe(`${B}:51820`);
    // The relayed connection is closed once quiet; one connection each way remains.
    await advance(12);
    expect(a.daemon!.connectionCount()).toBe(2);
    network.partition(A, B);
    const fallback = await until(async () => (await peerRow(a, 'b')).path === 'relay' && (await peerRow(b, 'a')).path === 'relay', 'fallback to the relay', 15, [a, b, h]);
    expect(fallback).toBeLessThanOrEqual(10);
    expect(a.lines.some((l) => l.includes('nothing received on the direct path'))).toBe(true);
    network.heal(A, B);
    await until(async () => (await peerRow(a, 'b')).path === 'direct', 'back to direct', 25, [a, b, h]);
  });

  it('a peer whose configured address does not answer is reached through the relay too', async () => {
    const h = await memoryNode('h', H);
    const a = await memoryNode('a', A);
    const b = await memoryNode('b', B);
    network.partition(A, B);
    await start(h, writeNodeConfig(h, [peerOf(a, ['corp'], { address: '' }), peerOf(b, ['corp'], { address: '' })], undefined, { relay: true }));
    // Both know the other's (unreachable) address: their own dials fail, and the path finder steps in.
    await start(a, writeNodeConfig(a, [peerOf(h, ['corp']), peerOf(b, ['corp'])]));
    await start(b, writeNodeConfig(b, [peerOf(h, ['corp']), peerOf(a, ['corp'])]));
    await until(async () => (await peerRow(a, 'b')).path === 'relay' && (await peerRow(b, 'a')).path === 'relay', 'a↔b relayed', 40, [a, b, h]);
    expect(await peerRow(a, 'b')).toMatchObject({ via: 'h', last_error: null });
  });

  it('no common peer relays: no path, and vpnctl peers says why', async () => {
    const { h, a } = await triangle(false);
    await advance(20);
    const row = await peerRow(a, 'b');
    expect(row.connected).toBe(false);
    expect(row.last_error).toMatch(/direct attempts through h failed.*no common peer has relay = true/);
    expect(metricValue(await metricsText(h), 'vibepn_relay_forwarded_packets_total', '')).toBe(0);
    // relay = true by reload: h offers relay on its open sessions at once, and they meet through it.
    writeNodeConfig(h, [peerOf(a, ['corp'], { address: '' }), peerOf(nodes[2]!, ['corp'], { address: '' })], undefined, { relay: true });
    expect(await h.daemon!.reload()).toBe('settings changed: daemon.relay');
    await until(async () => (await peerRow(a, 'b')).path === 'relay', 'a↔b relayed after the reload', 30, [a, h]);
  });

  it('a peer that nobody can introduce: the reason says so', async () => {
    const a = await memoryNode('a', A);
    const b = await memoryNode('b', B);
    await start(a, writeNodeConfig(a, [peerOf(b, ['corp'], { address: '' })]));
    await advance(3);
    expect((await peerRow(a, 'b')).last_error).toMatch(/no connected peer that can introduce it/);
  });
});
