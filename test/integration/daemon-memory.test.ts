// Two whole daemons with no sockets and no waiting: QUIC (real quiche, real certificates) over an
// in-memory datagram network, daemon time on a FakeClock (wireguard-go's conn/bindtest +
// tun/tuntest in device_test.go). PROTOCOL.md's real timings apply — a 10 s keepalive and a 30 s
// liveness timeout — and the test steps through them instead of sleeping.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/clock/fake.js';
import { newNetwork } from '../../src/config/write.js';
import { ownHostRoute } from '../../src/daemon/announce.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { DEFAULT_TIMING } from '../../src/peer/timing.js';
import { MemoryNetwork } from '../../src/quic/memory-network.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import { createNode, metricsText, metricValue, peerOf, routeSet, startNode, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

let root: string;
let nodes: TestNode[] = [];
let clock: FakeClock;
let network: MemoryNetwork;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-memory-'));
  nodes = [];
  clock = new FakeClock();
  network = new MemoryNetwork();
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  await Promise.all(crashed.splice(0).map((d) => d.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

/** A node at `host` on the memory network. */
async function memoryNode(name: string, host: string): Promise<TestNode> {
  const node = await createNode(root, name);
  node.address = `${host}:51820`;
  nodes.push(node);
  return node;
}

/** Each node's current endpoint, so a test can pull its socket out from under it (a crash). */
const endpoints = new Map<TestNode, QuicEndpoint>();

/** What each node believes its own addresses are (a roaming test moves one). */
const ownAddresses = new Map<TestNode, string[]>();

function start(node: TestNode, peers: TestNode[], nonce?: bigint, timing = DEFAULT_TIMING): Promise<Daemon> {
  const host = node.address.slice(0, node.address.lastIndexOf(':'));
  // A crashed life still holds its control socket; each life gets its own.
  const controlSocket = join(node.dir, `vpn-${crashed.length}.sock`);
  return startNode(node, writeNodeConfig(node, peers.map((p) => peerOf(p, ['corp'])), undefined, { controlSocket }), {
    clock,
    timing,
    ...(nonce === undefined ? {} : { nonce: () => nonce }),
    localAddresses: () => (ownAddresses.get(node) ?? [host]).map((address) => ({ interface: 'eth0', address })),
    endpointFactory: async (options) => {
      const endpoint = await QuicEndpoint.listen({ ...options, socket: network.socket(host) });
      endpoints.set(node, endpoint);
      return endpoint;
    },
  });
}

/**
 * kill -9: the process and its socket vanish without a word; nothing it owned says Goodbye. The
 * old Daemon object is only stopped at the end of the test, its packets going nowhere.
 */
async function crash(node: TestNode): Promise<Daemon> {
  const dead = node.daemon!;
  await endpoints.get(node)!.socket.close();
  node.daemon = undefined;
  crashed.push(dead);
  return dead;
}
const crashed: Daemon[] = [];

/**
 * Moves daemon time forward in small steps (liveness probes wait fractions of a second). QUIC's
 * own timers (path validation, retransmission) run on real time, so `realMs` of it pass per step.
 */
async function advanceMs(ms: number, step = 50, realMs = 0): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    if (realMs > 0) await new Promise((resolve) => setTimeout(resolve, realMs));
  }
}

/** Moves daemon time forward one second at a time, letting the event loop carry each second's packets. */
async function advance(seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    clock.advance(1000);
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
  }
}

const hostRoute = (node: TestNode): string => ownHostRoute(newNetwork('corp', '10.42.0.0/24'), node.fingerprint);

describe('two daemons on an in-memory network with a fake clock', () => {
  it('connect, exchange routes, keep alive, declare a silent peer dead after 30 s, and reconnect', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    await start(a, [b]);
    await start(b, [a]);
    await waitFor(() => routeSet(a.daemon!).length === 1 && routeSet(b.daemon!).length === 1, 'a and b to exchange routes');
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
    expect(routeSet(b.daemon!)).toEqual([`corp ${hostRoute(a)} ${a.fingerprint}`]);
    expect(network.counters.delivered).toBeGreaterThan(0);

    // Keepalives every 10 s keep an idle session up well past the 30 s liveness timeout.
    const keepalivesIn = async () => metricValue(await metricsText(a), 'vibepn_control_messages_total', 'type="keepalive",direction="in"');
    const before = await keepalivesIn();
    await advance(40);
    expect(await keepalivesIn()).toBe(before + 4);
    expect(routeSet(a.daemon!)).toHaveLength(1);

    // Cut the link right after the 40 s keepalives: 30 s of silence is not yet death…
    network.partition('10.0.0.1', '10.0.0.2');
    await advance(30);
    expect(routeSet(a.daemon!)).toHaveLength(1);
    expect(a.lines.some((l) => l.includes('silent for over'))).toBe(false);
    // …past 30 s both sides declare the other dead and drop its routes.
    await advance(1);
    expect(routeSet(a.daemon!)).toEqual([]);
    expect(routeSet(b.daemon!)).toEqual([]);
    expect(a.lines.some((l) => l.includes('b (') && l.includes('silent for over 30s; declaring it dead'))).toBe(true);
    expect(metricValue(await metricsText(a), 'vibepn_peer_connected', '')).toBe(0);

    // The link comes back: the redial schedule (also on the fake clock) reconnects them.
    network.heal();
    for (let i = 0; i < 60 && !(routeSet(a.daemon!).length === 1 && routeSet(b.daemon!).length === 1); i++) await advance(1);
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
    expect(routeSet(b.daemon!)).toEqual([`corp ${hostRoute(a)} ${a.fingerprint}`]);
    expect(metricValue(await metricsText(a), 'vibepn_peer_connected', '')).toBe(1);
  });

  it('a peer that crashed and restarted at once is back within a second, even when its new dial loses the tie-break', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    // Low nonces for the first lives: whichever connection survives has dialer nonce 5.
    await start(a, [b], 5n);
    await start(b, [a], 5n);
    await waitFor(() => routeSet(a.daemon!).length === 1 && routeSet(b.daemon!).length === 1, 'a and b to exchange routes');
    await advanceMs(500);
    const before = a.daemon!.sessionWith(b.fingerprint);

    await crash(b);
    // The new b's nonce is the highest there is: on nonce alone, a would keep the dead connection.
    await start(b, [a], (1n << 64n) - 1n);
    let waited = 0;
    while (!(routeSet(b.daemon!).length === 1 && a.daemon!.sessionWith(b.fingerprint) !== before) && waited < 3000) {
      await advanceMs(50);
      waited += 50;
    }
    expect(waited).toBeLessThan(1000);
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
    expect(routeSet(b.daemon!)).toEqual([`corp ${hostRoute(a)} ${a.fingerprint}`]);
    expect(a.daemon!.connectionCount()).toBe(1);
    expect(a.lines.some((l) => l.includes('did not answer a probe'))).toBe(true);
    // The surviving connection really carries b's session: a keepalive from the new b is heard.
    await advanceMs(11_000, 500);
    expect(a.daemon!.sessionWith(b.fingerprint)?.lastReceivedAt).toBeGreaterThan(clock.now() - 2000);
  });

  /**
   * b's underlay address changes from 10.0.0.2 to 10.0.0.9, as a laptop's does on another network:
   * its packets now come from the new address, nothing reaches the old one, and a's config still
   * names the old one (only b can find a).
   */
  function roam(b: TestNode): void {
    network.filter = (packet) => {
      if (packet.toHost === '10.0.0.2') return false;
      if (packet.fromHost === '10.0.0.2') packet.fromHost = '10.0.0.9';
      if (packet.toHost === '10.0.0.9') packet.toHost = '10.0.0.2';
      return true;
    };
    ownAddresses.set(b, ['10.0.0.9']);
  }

  for (const survivor of ['b dialed', 'a dialed'] as const) {
    it(`a roaming node is reachable again within 10 s (the surviving connection: ${survivor})`, async () => {
      const a = await memoryNode('a', '10.0.0.1');
      const b = await memoryNode('b', '10.0.0.2');
      // The node that starts second is the one whose dial finds the other up; the first one's
      // dial is abandoned at its handshake timeout before that.
      const [first, second] = survivor === 'b dialed' ? [a, b] : [b, a];
      // Keepalives every 2 s, so "each side heard the other after the move" is measured finely.
      const timing = { ...DEFAULT_TIMING, keepaliveMs: 2000 };
      await start(first, [second], 5n, timing);
      await advanceMs(5500, 500);
      await start(second, [first], 5n, timing);
      await waitFor(() => routeSet(a.daemon!).length === 1 && routeSet(b.daemon!).length === 1 && a.daemon!.connectionCount() === 1, 'a and b to connect');
      await advanceMs(500);
      expect(a.daemon!.sessionWith(b.fingerprint)!.direction).toBe(survivor === 'b dialed' ? 'inbound' : 'outbound');

      roam(b);
      const movedAt = clock.now();
      // Recovered: each side hears the other after the move.
      const heard = (x: TestNode, y: TestNode) => (x.daemon!.sessionWith(y.fingerprint)?.lastReceivedAt ?? 0) > movedAt;
      let waited = 0;
      while (!(heard(a, b) && heard(b, a)) && waited < 30_000) {
        await advanceMs(250, 50, 2);
        waited += 250;
      }
      expect(waited).toBeLessThan(10_000);
      expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
      expect(routeSet(b.daemon!)).toEqual([`corp ${hostRoute(a)} ${a.fingerprint}`]);
      expect(b.lines.some((l) => l.includes('local addresses changed'))).toBe(true);
      // And it stays up: a minute of keepalives over the new path, no liveness timeout.
      await advanceMs(60_000, 1000);
      expect(heard(a, b) && heard(b, a)).toBe(true);
      expect(a.daemon!.sessionWith(b.fingerprint)!.lastReceivedAt).toBeGreaterThan(clock.now() - 15_000);
      expect(routeSet(a.daemon!)).toHaveLength(1);
    });
  }
});
