// Several real daemons in one process on loopback, no TUN: sessions, routes, tie-break, liveness,
// Goodbye, reload, trust refusals and route policy (issue 3).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newNetwork } from '../../src/config/write.js';
import { ownHostRoute } from '../../src/daemon/announce.js';
import { controlRequest } from '../../src/control/client.js';
import { encodeControlMessage } from '../../src/control/messages.js';
import { Logger } from '../../src/log/logger.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import type { QuicCloseInfo } from '../../src/quic/connection.js';
import { APP_PROTOCOL_VIOLATION } from '../../src/quic/errors.js';
import { createNode, FAST_TIMING, metricsText, metricValue, peerOf, routeSet, startNode, UdpRelay, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

let root: string;
let nodes: TestNode[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-cluster-'));
  nodes = [];
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

async function makeNodes<N extends string[]>(...names: N): Promise<{ [K in keyof N]: TestNode }> {
  const made = await Promise.all(names.map((n) => createNode(root, n)));
  nodes.push(...made);
  return made as { [K in keyof N]: TestNode };
}

/**
 * For a peer entry of a node that must not dial that peer. Tests that check a session stays the
 * same let only one side dial, and start the dialed side first: a daemon that dials a peer not
 * listening yet loses its first Initial, quiche resends it about a second later, and if the peer
 * has dialed us meanwhile, that late connection is a duplicate whose tie-break may replace the
 * session (correctly: both ends agree, routes stay) after the test took hold of it.
 */
const INBOUND_ONLY = { address: '' } as const;

function hostRoute(node: TestNode, network = 'corp', prefix = '10.42.0.0/24'): string {
  return ownHostRoute(newNetwork(network, prefix), node.fingerprint);
}


async function fullMesh(names: string[]): Promise<TestNode[]> {
  const made = await makeNodes(...names);
  for (const node of made) {
    const config = writeNodeConfig(
      node,
      made.filter((n) => n !== node).map((n) => peerOf(n, ['corp'])),
    );
    await startNode(node, config);
  }
  return made;
}

function expectMeshRoutes(mesh: TestNode[]): void {
  for (const node of mesh) {
    const expected = mesh
      .filter((n) => n !== node)
      .map((n) => `corp ${hostRoute(n)} ${n.fingerprint}`)
      .sort();
    expect(routeSet(node.daemon!)).toEqual(expected);
  }
}

describe('daemon cluster', () => {
  it('connects every pair and learns every other node’s host route, with one connection per pair', async () => {
    const mesh = await fullMesh(['a', 'b', 'c', 'd']);
    await waitFor(() => mesh.every((n) => n.daemon!.routeList().length === 3), 'every node to learn 3 host routes', 10_000, mesh);
    expectMeshRoutes(mesh);
    // Every node dialed every other at start-up: simultaneous mutual dials. After the tie-break
    // exactly one connection per pair remains, and both ends agree which one.
    await waitFor(() => mesh.every((n) => n.daemon!.connectionCount() === 3), 'duplicate connections to close', 10_000, mesh);
    // Resolving the duplicates never takes a peer down: no route flaps while the mesh forms.
    for (const node of mesh) expect(node.lines.filter((l) => l.includes('disconnected from')), node.name).toEqual([]);
    for (const node of mesh) {
      for (const other of mesh) {
        if (node === other) continue;
        const here = node.daemon!.sessionWith(other.fingerprint)!;
        const there = other.daemon!.sessionWith(node.fingerprint)!;
        expect(here.direction === 'outbound').toBe(there.direction === 'inbound');
        expect(here.dialer.dialerNonce).toBe(there.dialer.dialerNonce);
      }
    }
    const status = (await controlRequest(join(mesh[0]!.dir, 'vpn.sock'), { cmd: 'status' })) as Record<string, unknown>;
    expect(status).toMatchObject({ fingerprint: mesh[0]!.fingerprint, peers_connected: 3, peers_configured: 3, routes: 3 });
    const peers = (await controlRequest(join(mesh[0]!.dir, 'vpn.sock'), { cmd: 'peers' })) as Array<Record<string, unknown>>;
    expect(peers.map((p) => [p.name, p.connected])).toEqual([
      ['b', true],
      ['c', true],
      ['d', true],
    ]);
    const routes = (await controlRequest(join(mesh[0]!.dir, 'vpn.sock'), { cmd: 'routes' })) as Array<Record<string, unknown>>;
    expect(routes).toContainEqual({ network: 'corp', prefix: hostRoute(mesh[1]!), peer: mesh[1]!.fingerprint, peer_name: 'b', metric: 1 });
  });

  it('keeps routes up while the duplicate resolves to the slower connection', async () => {
    const [a, b] = await makeNodes('a', 'b');
    // b reaches a through a slow relay; a reaches b directly. b's nonce is lower, so b's dial
    // survives. a keeps its own connection (fast, direct) open until what is in flight on it has
    // arrived, so its Hello on b's connection (slow, relayed) reaches b before that close. (When
    // the close comes first, b hands over to the survivor: test/unit/peer/connections.test.ts.)
    const relay = new UdpRelay(a.port);
    await relay.start();
    try {
      relay.delayMs = 150;
      // Both must dial, and a daemon does not dial a peer it is already connected to. Started
      // together, a's direct connection could reach b before b's peer manager starts, and b would
      // never dial. So b starts first and dials a through the relay, which holds its packets back
      // meanwhile; then a, not connected to b, dials it directly.
      relay.drop = true;
      // The relayed handshake takes several 150 ms hops, after quiche resends the held-back Initial.
      await startNode(b, writeNodeConfig(b, [peerOf({ ...a, address: `127.0.0.1:${relay.port}` }, ['corp'])]), {
        nonce: () => 1n,
        timing: { ...FAST_TIMING, handshakeTimeoutMs: 5000 },
      });
      await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]), { nonce: () => 1000n });
      await waitFor(() => b.daemon!.sessionWith(a.fingerprint)?.direction === 'inbound', 'a’s direct dial to connect');
      // a's direct dial is up long before b's relayed one.
      relay.drop = false;
      await waitFor(() => a.daemon!.connectionCount() === 1 && b.daemon!.connectionCount() === 1 && b.daemon!.sessionWith(a.fingerprint)?.direction === 'outbound', 'the duplicate to resolve to b’s dial', 10_000);
      await waitFor(() => b.daemon!.routeList().length === 1, 'b to hold a’s route');
      expect(b.lines.filter((l) => l.includes('disconnected from'))).toEqual([]);
      expect(b.lines.some((l) => /duplicate connection with a .*: keeping the outbound one/.test(l)), b.lines.join('\n')).toBe(true);
      expect(routeSet(b.daemon!)).toEqual([`corp ${hostRoute(a)} ${a.fingerprint}`]);
    } finally {
      relay.close();
    }
  });

  it('removes a silent peer’s routes after the liveness timeout and restores them after restart, leaving others alone', async () => {
    const [a, b, c] = await makeNodes('a', 'b', 'c');
    // a and b reach c only through a relay that can go silent; c's dials go nowhere.
    const relay = new UdpRelay(c.port);
    await relay.start();
    const cViaRelay = { ...c, address: `127.0.0.1:${relay.port}` };
    try {
      // One connection a-b from the start, the session checked below (see INBOUND_ONLY).
      await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'], INBOUND_ONLY), peerOf(cViaRelay, ['corp'])]));
      await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp']), peerOf(cViaRelay, ['corp'])]));
      // c must not find another way to a and b when the relay goes silent: with no address it would
      // ask the other for an introduction (PROTOCOL.md#v-introductions) and dial them directly.
      // Addresses where nothing answers keep it from finding one.
      const nowhere = { address: '127.0.0.1:9' };
      const cConfig = writeNodeConfig(c, [peerOf(a, ['corp'], nowhere), peerOf(b, ['corp'], nowhere)]);
      await startNode(c, cConfig);
      const mesh = [a, b, c];
      await waitFor(() => mesh.every((n) => n.daemon!.routeList().length === 2), 'mesh routes');
      const abSession = a.daemon!.sessionWith(b.fingerprint);
      const withC = [a.daemon!.sessionWith(c.fingerprint)!, b.daemon!.sessionWith(c.fingerprint)!];
      relay.drop = true;
      await waitFor(() => a.daemon!.routeList().length === 1 && b.daemon!.routeList().length === 1, 'c’s routes to disappear', 10_000);
      // Not before the liveness timeout, counted from the last message each heard from c (c's
      // last Keepalive came up to a keepalive interval, or more on a busy machine, before the drop).
      for (const session of withC) expect(Date.now() - session.lastReceivedAt).toBeGreaterThanOrEqual(FAST_TIMING.deadAfterMs!);
      expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
      expect(a.lines.some((l) => l.includes('silent for over'))).toBe(true);
      // c restarts and the path comes back: a and b redial it on their own.
      await c.daemon!.stop('test');
      relay.drop = false;
      await startNode(c, cConfig);
      await waitFor(() => mesh.every((n) => n.daemon!.routeList().length === 2), 'c’s routes to come back', 10_000);
      expectMeshRoutes(mesh);
      expect(a.daemon!.sessionWith(b.fingerprint)).toBe(abSession);
    } finally {
      relay.close();
    }
  });

  it('removes routes at once when a peer says Goodbye', async () => {
    const mesh = await fullMesh(['a', 'b', 'c']);
    const [a, b, c] = mesh as [TestNode, TestNode, TestNode];
    await waitFor(() => mesh.every((n) => n.daemon!.routeList().length === 2), 'mesh routes');
    const stoppedAt = Date.now();
    await b.daemon!.stop('test');
    await waitFor(() => a.daemon!.routeList().length === 1 && c.daemon!.routeList().length === 1, 'b’s routes to go', 1000);
    expect(Date.now() - stoppedAt).toBeLessThan(1000);
    expect(a.lines.some((l) => l.includes('b (') && l.includes('said goodbye'))).toBe(true);
    b.daemon = undefined;
  });

  it('reload adds and removes a peer and a network; an invalid config is refused and the old one keeps working', async () => {
    const [a, b, c] = await makeNodes('a', 'b', 'c');
    const lab = newNetwork('lab', '10.77.0.0/24');
    const corp = newNetwork('corp', '10.42.0.0/24');
    // Only b dials a, which is up first: one a-b session throughout (see INBOUND_ONLY).
    const aConfig = writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)], [corp]);
    await startNode(a, aConfig);
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp', 'lab'])], [corp, lab]));
    await startNode(c, writeNodeConfig(c, [peerOf(a, ['corp'])], [corp]));
    await waitFor(() => a.daemon!.routeList().length === 1, 'a to learn b');
    // c dials a, but a does not know c yet.
    expect(a.daemon!.sessionWith(c.fingerprint)).toBeUndefined();

    // Reload a: add peer c and network lab.
    writeNodeConfig(a, [peerOf(b, ['corp', 'lab'], INBOUND_ONLY), peerOf(c, ['corp'])], [corp, lab]);
    const summary = await a.daemon!.reload();
    expect(summary).toContain('peers added: c');
    expect(summary).toContain('peers updated: b');
    expect(summary).toContain('networks added: lab');
    await waitFor(() => routeSet(b.daemon!).includes(`lab ${hostRoute(a, 'lab', '10.77.0.0/24')} ${a.fingerprint}`), 'b to learn a’s lab route');
    await waitFor(() => a.daemon!.sessionWith(c.fingerprint) !== undefined && c.daemon!.routeList().length === 1, 'a and c to connect');
    const abSession = a.daemon!.sessionWith(b.fingerprint);

    // Reload a: remove peer c and network lab.
    writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)], [corp]);
    const second = await a.daemon!.reload();
    expect(second).toContain('peers removed: c');
    expect(second).toContain('networks removed: lab');
    await waitFor(() => c.daemon!.routeList().length === 0, 'c to drop a’s route after Goodbye', 1000);
    await waitFor(() => !routeSet(b.daemon!).some((r) => r.startsWith('lab ')), 'b to drop a’s lab route');
    expect(a.daemon!.sessionWith(b.fingerprint)).toBe(abSession);

    // An invalid config is refused; the daemon keeps the old one and keeps answering.
    writeFileSync(a.configPath, '[daemon]\nlisten = 42\n');
    await expect(a.daemon!.reload()).rejects.toThrow(/daemon\.listen/);
    const viaSocket = controlRequest(join(a.dir, 'vpn.sock'), { cmd: 'reload' });
    await expect(viaSocket).rejects.toThrow(/daemon\.listen/);
    const status = (await controlRequest(join(a.dir, 'vpn.sock'), { cmd: 'status' })) as Record<string, unknown>;
    expect(status).toMatchObject({ peers_connected: 1 });
    expect(a.daemon!.sessionWith(b.fingerprint)).toBe(abSession);
  });

  it('reload applies log_level live and keeps reporting a change that needs a restart', async () => {
    const [a] = await makeNodes('a');
    await startNode(a, writeNodeConfig(a, [], undefined, { logLevel: 'info' }));
    writeNodeConfig(a, [], undefined, { logLevel: 'debug' });
    expect(await a.daemon!.reload()).toBe('settings changed: daemon.log_level');
    expect(a.daemon!.currentConfig.daemon.logLevel).toBe('debug');
    // The listen address is only applied by a restart: every reload says so until then.
    writeNodeConfig(a, [], undefined, { logLevel: 'debug', listen: '127.0.0.1:1' });
    expect(await a.daemon!.reload()).toBe('needs restart to take effect: daemon.listen');
    expect(await a.daemon!.reload()).toBe('needs restart to take effect: daemon.listen');
    expect(a.lines.filter((l) => l.includes('daemon.listen changed; restart the daemon to apply'))).toHaveLength(2);
  });

  it('reload judges a peer’s announcements again when its allowed routes change, without a reconnect', async () => {
    const [a, b] = await makeNodes('a', 'b');
    const subnet = '192.168.70.0/24';
    // Only b dials a, which is up first: one session throughout (see INBOUND_ONLY).
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])], [newNetwork('corp', '10.42.0.0/24', { routes: [subnet] })]));
    await waitFor(() => a.lines.some((l) => l.includes(`rejected route ${subnet} in corp from b`)), 'a to refuse b’s subnet');
    const session = a.daemon!.sessionWith(b.fingerprint);
    writeNodeConfig(a, [peerOf(b, ['corp'], { ...INBOUND_ONLY, allowedRoutes: [subnet] })]);
    expect(await a.daemon!.reload()).toBe('peers updated: b');
    expect(routeSet(a.daemon!)).toContain(`corp ${subnet} ${b.fingerprint}`);
    expect(a.daemon!.sessionWith(b.fingerprint)).toBe(session);
    // And narrowing it again drops the route.
    writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)]);
    await a.daemon!.reload();
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
  });

  it('reload sends Withdraw and Announce for export changes without touching the session', async () => {
    const [a, b] = await makeNodes('a', 'b');
    // Only b dials a, which is up first: one session throughout (see INBOUND_ONLY).
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'], { allowedRoutes: ['192.168.60.0/24'] })]));
    await waitFor(() => routeSet(b.daemon!).length === 1, 'b to learn a');
    const session = b.daemon!.sessionWith(a.fingerprint);

    writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)], [newNetwork('corp', '10.42.0.0/24', { export: false })]);
    await a.daemon!.reload();
    await waitFor(() => routeSet(b.daemon!).length === 0, 'b to drop a’s withdrawn host route');

    writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY)], [newNetwork('corp', '10.42.0.0/24', { routes: ['192.168.60.0/24'] })]);
    await a.daemon!.reload();
    await waitFor(() => routeSet(b.daemon!).length === 2, 'b to learn a’s host route and subnet again');
    expect(routeSet(b.daemon!)).toEqual([`corp ${hostRoute(a)} ${a.fingerprint}`, `corp 192.168.60.0/24 ${a.fingerprint}`].sort());
    expect(b.daemon!.sessionWith(a.fingerprint)).toBe(session);
  });

  it('redials a peer that does not answer on the backoff schedule, not the idle timeout', async () => {
    const [a, ghost] = await makeNodes('a', 'ghost');
    // Nothing listens on ghost's port.
    await startNode(a, writeNodeConfig(a, [peerOf(ghost, ['corp'])]), { timing: { ...FAST_TIMING, handshakeTimeoutMs: 300 } });
    await new Promise((r) => setTimeout(r, 2500));
    const text = await metricsText(a);
    // Handshake timeout 300 ms, backoff 100..500 ms: several attempts in 2.5 s (the 5 s idle
    // timeout alone would allow one).
    expect(metricValue(text, 'vibepn_peer_connection_attempts_total', '')).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'vibepn_peer_connection_failures_total', 'reason="timeout"')).toBeGreaterThanOrEqual(2);
    const peers = (await controlRequest(join(a.dir, 'vpn.sock'), { cmd: 'peers' })) as Array<Record<string, unknown>>;
    expect(peers[0]).toMatchObject({ name: 'ghost', connected: false, last_error: expect.stringContaining('no answer within 0.3s') });
  });

  it('refuses an unknown fingerprint and a TOFU mismatch, and counts both in /metrics', async () => {
    const [a, stranger, eve, impostor] = await makeNodes('a', 'stranger', 'eve', 'impostor');
    // a knows "eve" by name only (TOFU), and has already learned a different key for her. Her
    // configured address answers nothing for now (the discard port).
    writeFileSync(join(a.dir, 'known_peers.json'), JSON.stringify({ eve: eve.fingerprint }), { mode: 0o600 });
    await startNode(a, writeNodeConfig(a, [peerOf(eve, ['corp'], { fingerprint: undefined, address: '127.0.0.1:9' })]));
    // The stranger is configured nowhere on a.
    await startNode(stranger, writeNodeConfig(stranger, [peerOf(a, ['corp'])]));
    // The impostor claims to be eve (certificate CN "eve" is irrelevant: the name comes from a's
    // config, and the learned key differs).
    const impostorAsEve = { ...impostor, name: 'eve' };
    await startNode(impostor, writeNodeConfig(impostorAsEve, [peerOf(a, ['corp'])]));
    await waitFor(() => a.lines.some((l) => l.includes('belongs to no configured peer')), 'a to refuse the stranger');
    // The impostor's certificate CN is "impostor", so a matches it to no peer either; dial it
    // from a instead, where the name eve is known and the fingerprint must match.
    writeNodeConfig(a, [peerOf(eve, ['corp'], { fingerprint: undefined, address: impostor.address })]);
    await a.daemon!.reload();
    await waitFor(() => a.lines.some((l) => l.includes('remembers') && l.includes(eve.fingerprint)), 'a to refuse the changed key');
    const text = await metricsText(a);
    expect(metricValue(text, 'vibepn_peer_handshakes_rejected_total', 'reason="unknown_fingerprint"')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'vibepn_peer_handshakes_rejected_total', 'reason="tofu_mismatch"')).toBeGreaterThanOrEqual(1);
    expect(a.daemon!.routeList()).toEqual([]);
    expect(stranger.daemon!.routeList()).toEqual([]);
  });

  it('trusts a TOFU peer on first use and records it', async () => {
    const [a, b] = await makeNodes('a', 'b');
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'], { fingerprint: undefined })]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'], { fingerprint: undefined })]));
    await waitFor(() => a.daemon!.routeList().length === 1 && b.daemon!.routeList().length === 1, 'a and b to connect by TOFU');
    expect(loadKnown(a)).toEqual({ b: b.fingerprint });
    expect(loadKnown(b)).toEqual({ a: a.fingerprint });
  });

  it('rejects announced prefixes outside policy and accepts allowed subnet routes', async () => {
    const [a, b, c] = await makeNodes('a', 'b', 'c');
    const subnet = '192.168.50.0/24';
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp']), peerOf(c, ['corp'], { allowedRoutes: [subnet] })]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])], [newNetwork('corp', '10.42.0.0/24', { routes: [subnet] })]));
    await startNode(c, writeNodeConfig(c, [peerOf(a, ['corp'])], [newNetwork('corp', '10.42.0.0/24', { routes: [subnet] })]));
    await waitFor(() => a.daemon!.routeList().length === 3, 'a to learn b, c and c’s subnet');
    expect(routeSet(a.daemon!)).toEqual(
      [`corp ${hostRoute(b)} ${b.fingerprint}`, `corp ${hostRoute(c)} ${c.fingerprint}`, `corp ${subnet} ${c.fingerprint}`].sort(),
    );
    const text = await metricsText(a);
    expect(metricValue(text, 'vibepn_routes_rejected_total', 'network="corp",reason="outside_policy"')).toBe(1);
    expect(metricValue(text, 'vibepn_routes', 'network="corp"')).toBe(3);
    expect(a.lines.some((l) => l.includes(`rejected route ${subnet} in corp from b`))).toBe(true);
  });

  it('refuses a peer that announces this node’s own address and says how to fix it', async () => {
    const [a, b] = await makeNodes('a', 'b');
    const aAddress = hostRoute(a).replace('/32', '');
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])], [newNetwork('corp', '10.42.0.0/24', { address: aAddress })]));
    await waitFor(() => a.lines.some((l) => l.includes('which is this node')), 'a to report the address conflict');
    expect(a.lines.find((l) => l.includes('which is this node'))).toContain('set a static networks.corp.address');
    expect(routeSet(a.daemon!)).toEqual([]);
    expect(metricValue(await metricsText(a), 'vibepn_routes_rejected_total', 'network="corp",reason="conflict"')).toBe(1);
  });

  it('closes a peer that breaks the protocol without affecting the others', async () => {
    const [a, b, evil] = await makeNodes('a', 'b', 'evil');
    // Only b dials a, which is up first: one a-b session throughout (see INBOUND_ONLY).
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'], INBOUND_ONLY), peerOf(evil, ['corp'], INBOUND_ONLY)]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])]));
    await waitFor(() => a.daemon!.routeList().length === 1 && a.daemon!.connectionCount() === 1, 'a and b to connect and settle on one connection');
    const abSession = a.daemon!.sessionWith(b.fingerprint);
    // evil is a configured peer but speaks bad protocol: a Hello, then a length field of 0.
    const endpoint = await QuicEndpoint.listen({
      listen: '127.0.0.1:0',
      certPem: readFileSync(join(evil.dir, 'node.crt'), 'utf8'),
      keyPem: readFileSync(join(evil.dir, 'node.key'), 'utf8'),
      logger: new Logger('evil', { sink: () => {} }),
    });
    try {
      const conn = endpoint.connect(a.address);
      let closedWith: QuicCloseInfo | null = null;
      conn.onClose = (info) => (closedWith = info);
      conn.onEstablished = () => {
        const stream = conn.openStream();
        stream.write(encodeControlMessage({ type: 'hello', nonce: 7n }));
        stream.write(new Uint8Array([0, 0]));
      };
      await waitFor(() => closedWith !== null, 'a to close the evil connection');
      expect(closedWith).toMatchObject({ local: false, isApp: true, errorCode: APP_PROTOCOL_VIOLATION });
    } finally {
      await endpoint.close();
    }
    expect(a.lines.some((l) => l.includes('protocol violation by evil'))).toBe(true);
    expect(a.daemon!.sessionWith(b.fingerprint)).toBe(abSession);
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
    const text = await metricsText(a);
    expect(metricValue(text, 'vibepn_peer_protocol_violations_total', '')).toBe(1);
  });
});

function loadKnown(node: TestNode): unknown {
  return JSON.parse(readFileSync(join(node.dir, 'known_peers.json'), 'utf8'));
}
