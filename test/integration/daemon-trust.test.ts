// Who gets in and what they may claim, with real daemons and hostile hand-driven QUIC peers on
// loopback (issue 8's security faults). Distinct loopback addresses (127.0.0.2, .3, …) stand for
// distinct hosts, since trust on first use is tied to a peer's configured address.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newNetwork } from '../../src/config/write.js';
import { controlRequest } from '../../src/control/client.js';
import { encodeControlMessage } from '../../src/control/messages.js';
import { generateIdentity, type GeneratedIdentity } from '../../src/crypto/identity.js';
import { ownHostRoute } from '../../src/daemon/announce.js';
import { Logger } from '../../src/log/logger.js';
import type { PeerRow } from '../../src/control/api.js';
import type { QuicCloseInfo } from '../../src/quic/connection.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import { createNode, metricsText, metricValue, peerOf, routeSet, startNode, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

let root: string;
let nodes: TestNode[] = [];
let endpoints: QuicEndpoint[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-trust-'));
  nodes = [];
  endpoints = [];
});

afterEach(async () => {
  await Promise.all(endpoints.map((e) => e.close()));
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

/** A node whose host is `ip` (a loopback address). */
async function nodeAt(name: string, ip = '127.0.0.1'): Promise<TestNode> {
  const node = await createNode(root, name);
  node.address = `${ip}:${node.port}`;
  nodes.push(node);
  return node;
}

const hostRoute = (node: TestNode): string => ownHostRoute(newNetwork('corp', '10.42.0.0/24'), node.fingerprint);

/** A hand-driven QUIC peer presenting `identity`, bound to `ip`. */
async function rawPeer(identity: GeneratedIdentity, ip: string): Promise<QuicEndpoint> {
  const endpoint = await QuicEndpoint.listen({
    listen: `${ip}:0`,
    certPem: identity.certPem,
    keyPem: identity.keyPem,
    logger: new Logger('raw', { sink: () => {} }),
  });
  endpoints.push(endpoint);
  return endpoint;
}

function knownPeers(node: TestNode): Record<string, string> {
  const path = join(node.dir, 'known_peers.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>) : {};
}

async function peersOf(node: TestNode): Promise<PeerRow[]> {
  return (await controlRequest(join(node.dir, 'vpn.sock'), { cmd: 'peers' })) as PeerRow[];
}

describe('trust on first use', () => {
  it('refuses a stranger whose certificate names an unpinned peer, and then learns the real one by dialing it', async () => {
    const a = await nodeAt('a');
    const b = await nodeAt('b', '127.0.0.2');
    // a knows b by name and address only (TOFU); b is not up yet.
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'], { fingerprint: undefined })]));
    // The attack: a self-signed certificate with CN "b", from another host.
    const impostor = await rawPeer(await generateIdentity('b'), '127.0.0.3');
    const conn = impostor.connect(a.address);
    let closed: QuicCloseInfo | null = null;
    conn.onClose = (info) => (closed = info);
    conn.onEstablished = () => conn.openStream().write(encodeControlMessage({ type: 'hello', nonce: 1n }));
    await waitFor(() => closed !== null, 'a to close the impostor');
    expect(closed).toMatchObject({ local: false, isApp: true, reason: 'unknown_fingerprint' });
    expect(a.lines.some((l) => l.includes("claims the name 'b'") && l.includes('not pinned'))).toBe(true);
    expect(knownPeers(a)).toEqual({});
    expect(routeSet(a.daemon!)).toEqual([]);
    expect(metricValue(await metricsText(a), 'vibepn_peer_handshakes_rejected_total', 'reason="unknown_fingerprint"')).toBe(1);
    expect((await peersOf(a))[0]).toMatchObject({ name: 'b', connected: false, trust: 'unlearned' });

    // The real b comes up at its configured address: a's next dial learns it.
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])]));
    await waitFor(() => routeSet(a.daemon!).length === 1, 'a to learn b by dialing it');
    expect(knownPeers(a)).toEqual({ b: b.fingerprint });
    expect((await peersOf(a))[0]).toMatchObject({ name: 'b', connected: true, trust: 'learned', fingerprint: b.fingerprint });
  });

  it("learns an unpinned peer from an inbound connection that comes from its configured address's IP", async () => {
    const a = await nodeAt('a');
    const b = await nodeAt('b', '127.0.0.2');
    // a's config gives b's host but a port nobody listens on: only b's own dial can connect them.
    await startNode(a, writeNodeConfig(a, [peerOf({ ...b, address: '127.0.0.2:9' }, ['corp'], { fingerprint: undefined })]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])]));
    await waitFor(() => routeSet(a.daemon!).length === 1 && routeSet(b.daemon!).length === 1, 'a and b to connect through b’s dial');
    expect(a.daemon!.sessionWith(b.fingerprint)?.direction).toBe('inbound');
    expect(knownPeers(a)).toEqual({ b: b.fingerprint });
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`]);
  });
});

describe('refused dials', () => {
  it('count as failed attempts, show the reason, and are retried until the right peer answers', async () => {
    const a = await nodeAt('a');
    const b = await nodeAt('b');
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]));
    // Someone else answers at b's address first.
    const impostorId = await generateIdentity('b');
    const impostor = await QuicEndpoint.listen({ listen: b.address, certPem: impostorId.certPem, keyPem: impostorId.keyPem, logger: new Logger('raw', { sink: () => {} }) });
    await waitFor(() => a.lines.filter((l) => l.includes('refused dialed b')).length >= 3, 'a to retry the refused dial');
    const text = await metricsText(a);
    expect(metricValue(text, 'vibepn_peer_connection_attempts_total', '')).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'vibepn_peer_connection_failures_total', 'reason="rejected"')).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'vibepn_peer_handshakes_rejected_total', 'reason="pin_mismatch"')).toBeGreaterThanOrEqual(3);
    const [row] = await peersOf(a);
    expect(row).toMatchObject({ name: 'b', connected: false, trust: 'pinned' });
    expect(row!.last_error).toMatch(/^refused: peer b presented certificate fingerprint .* but the config pins/);

    await impostor.close();
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])]));
    await waitFor(() => routeSet(a.daemon!).length === 1, 'a to reach the real b');
  });
});

describe('a node listed as its own peer', () => {
  // A joiner whose inviter has not added it yet must read that the inviter refused *its*
  // certificate, and the command that fixes it, not "untrusted certificate (unknown_fingerprint)".
  it('a dial refused for want of a peer entry says who refused whom, and the add-peer to run there', async () => {
    const a = await nodeAt('a');
    const b = await nodeAt('b');
    await startNode(b, writeNodeConfig(b, []));
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]));
    let row: PeerRow | undefined;
    await waitFor(() => true, 'start');
    for (let i = 0; i < 100 && !row?.last_error; i++) {
      row = (await peersOf(a)).find((r) => r.name === 'b');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(row?.last_error).toBe(`b refused our certificate: b has no peer entry for this node (on b: vpnctl add-peer --name a --fingerprint ${a.fingerprint} --networks corp)`);
  });

  it('is refused at start and on reload, naming the entry to remove', async () => {
    const a = await nodeAt('a');
    const b = await nodeAt('b');
    await expect(startNode(a, writeNodeConfig(a, [peerOf(a, ['corp'])]))).rejects.toThrow(/peers\[0\].*this node's own/);
    a.daemon = undefined;
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]));
    writeNodeConfig(a, [peerOf(b, ['corp']), peerOf(a, ['corp'])]);
    await expect(a.daemon!.reload()).rejects.toThrow(/peers\[1\].*this node's own/);
    expect(a.lines.some((l) => l.includes('reload refused, keeping the running config'))).toBe(true);
  });
});

describe('route ownership', () => {
  it("refuses a member announcing another member's address, even with metric 0, and keeps routing to the owner", async () => {
    const [a, b] = [await nodeAt('a'), await nodeAt('b')];
    const mallory = await nodeAt('mallory');
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp']), peerOf(mallory, ['corp'], { address: '' })]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])]));
    await waitFor(() => routeSet(a.daemon!).length === 1, 'a to learn b');
    // mallory holds a pinned identity and speaks the protocol by hand.
    const identity = { certPem: readFileSync(join(mallory.dir, 'node.crt'), 'utf8'), keyPem: readFileSync(join(mallory.dir, 'node.key'), 'utf8') };
    const endpoint = await rawPeer(identity as GeneratedIdentity, '127.0.0.1');
    const conn = endpoint.connect(a.address);
    conn.onEstablished = () => {
      const control = conn.openStream();
      control.write(encodeControlMessage({ type: 'hello', nonce: 5n }));
      control.write(encodeControlMessage({ type: 'announce', network: 'corp', routes: [{ prefix: hostRoute(b), metric: 0 }, { prefix: hostRoute(mallory), metric: 1 }] }));
    };
    await waitFor(() => routeSet(a.daemon!).length === 2, 'a to accept mallory’s own address');
    expect(routeSet(a.daemon!)).toEqual([`corp ${hostRoute(b)} ${b.fingerprint}`, `corp ${hostRoute(mallory)} ${mallory.fingerprint}`].sort());
    expect(a.lines.some((l) => l.includes(`rejected route ${hostRoute(b)} in corp from mallory`) && l.includes('is the address of b'))).toBe(true);
    expect(metricValue(await metricsText(a), 'vibepn_routes_rejected_total', 'network="corp",reason="conflict"')).toBe(1);
  });

  it('gives a static address to the first peer that announces it, and refuses it to the next', async () => {
    const [a, b, c] = [await nodeAt('a'), await nodeAt('b'), await nodeAt('c')];
    const staticNet = newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.200' });
    await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp']), peerOf(c, ['corp'])]));
    await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'])], [staticNet]));
    await waitFor(() => routeSet(a.daemon!).length === 1, 'a to learn b’s static address');
    expect(routeSet(a.daemon!)).toEqual([`corp 10.42.0.200/32 ${b.fingerprint}`]);
    await startNode(c, writeNodeConfig(c, [peerOf(a, ['corp'])], [staticNet]));
    await waitFor(() => a.lines.some((l) => l.includes('rejected route 10.42.0.200/32 in corp from c')), 'a to refuse c’s claim');
    expect(a.lines.find((l) => l.includes('rejected route 10.42.0.200/32 in corp from c'))).toContain('is the address of b');
    expect(routeSet(a.daemon!)).toEqual([`corp 10.42.0.200/32 ${b.fingerprint}`]);
  });
});
