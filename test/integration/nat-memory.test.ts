// Three whole daemons on an in-memory network with a fake clock (daemon-memory.test.ts): A and B
// cannot reach each other and know each other only by fingerprint; both reach H. The path finder
// (src/peer/path-finder.ts) must bring A↔B up through H's relay, move to a direct path once one
// exists (the partition heals: H's introduction makes both dial), fall back to the relay when the
// direct path breaks, and say why when there is no path at all.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.js';
import { controlRequest } from '../../src/control/client.js';
import type { MemoryNetwork } from '../../src/quic/memory-network.js';
import type { PeerRow } from '../../src/control/api.js';
import { metricsText, metricValue, peerOf, writeNodeConfig, type TestNode } from '../helpers/cluster.js';
import { MemoryLab } from '../helpers/memory-lab.js';

let lab: MemoryLab;
let network: MemoryNetwork;

beforeEach(() => {
  lab = new MemoryLab('vibepn-nat-');
  network = lab.network;
});

afterEach(() => lab.destroy());

const H = '10.0.0.1';
const A = '10.0.0.2';
const B = '10.0.0.3';

const memoryNode = (name: string, host: string): Promise<TestNode> => lab.node(name, host);
const start = (node: TestNode, config: Config): Promise<unknown> => lab.start(node, config);
const advance = (seconds: number): Promise<void> => lab.advance(seconds);

async function peerRow(node: TestNode, name: string): Promise<PeerRow> {
  const rows = (await controlRequest(join(node.dir, 'vpn.sock'), { cmd: 'peers' })) as PeerRow[];
  return rows.find((r) => r.name === name)!;
}

function until(condition: () => Promise<boolean>, what: string, seconds: number, logsOf: TestNode[]): Promise<number> {
  return lab.until(condition, what, seconds, logsOf);
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
    writeNodeConfig(h, [peerOf(a, ['corp'], { address: '' }), peerOf(lab.nodes[2]!, ['corp'], { address: '' })], undefined, { relay: true });
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
