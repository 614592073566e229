// A peer marked `original = true`, driven by hand the way the original VibePN (Go) behaves, as
// read from its source and observed with the real binary (docs/RELIABILITY.md): it answers our
// dial with Hello and its whole network prefix; it also dials us itself (and never reads streams
// on that connection); it opens one stream per packet; its reload announcements and Goodbye come
// each on a new stream. vibepn must keep the session on the connection it dialed, send data only
// there, take the /24 as the original's own address, and read the side streams as control.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveOriginalAutoAddress, resolveNetworkAddress } from '../../src/config/address.js';
import { newNetwork } from '../../src/config/write.js';
import { ControlDecoder } from '../../src/control/decoder.js';
import { encodeControlMessage, type ControlMessage } from '../../src/control/messages.js';
import { encodeFrame, FrameDecoder } from '../../src/forward/frame.js';
import { Logger } from '../../src/log/logger.js';
import { formatIp, formatPrefix, hostPrefix } from '../../src/netgraph/addr.js';
import type { QuicConnection } from '../../src/quic/connection.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import { memoryTunFactory, type MemoryTun } from '../../src/tun/memory.js';
import { createNode, metricsText, metricValue, peerOf, routeSet, startNode, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';
import { ipv4Packet } from '../helpers/unit-fakes.js';

const CORP = newNetwork('corp', '10.42.0.0/24');
let root: string;
let nodes: TestNode[] = [];
let endpoint: QuicEndpoint | null = null;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-original-'));
  nodes = [];
});

afterEach(async () => {
  await endpoint?.close();
  endpoint = null;
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

interface FakeOriginal {
  /** Control messages vibepn sent on the connection it dialed, in order. */
  control: ControlMessage[];
  /** Packets vibepn sent (raw frames on any stream of the connection vibepn dialed). */
  packets: Uint8Array[];
  /** Streams vibepn opened on the connection the original dialed (the original would lose them). */
  streamsOnItsDial: number;
  accepted: QuicConnection | null;
  dialed: QuicConnection | null;
}

/** Listens like the original: answers Hello + its network prefix, reads data frames per stream. */
async function fakeOriginal(node: TestNode): Promise<FakeOriginal> {
  const fake: FakeOriginal = { control: [], packets: [], streamsOnItsDial: 0, accepted: null, dialed: null };
  endpoint = await QuicEndpoint.listen({
    listen: node.address,
    certPem: readFileSync(join(node.dir, 'node.crt'), 'utf8'),
    keyPem: readFileSync(join(node.dir, 'node.key'), 'utf8'),
    logger: new Logger('original', { sink: () => {} }),
  });
  endpoint.onConnection = (conn) => {
    fake.accepted = conn;
    let first = true;
    conn.onStream = (stream) => {
      if (first) {
        first = false;
        const decoder = new ControlDecoder();
        stream.onData = (chunk) => void decoder.push(chunk, (msg) => fake.control.push(msg));
        stream.write(encodeControlMessage({ type: 'hello', nonce: 12345n }));
        stream.write(encodeControlMessage({ type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.0/24', metric: 1 }] }));
        return;
      }
      const decoder = new FrameDecoder();
      stream.onData = (chunk) => void decoder.push(chunk, (_network, packet) => fake.packets.push(packet.slice()));
      stream.onEnd = () => stream.end();
    };
  };
  return fake;
}

/** The original's own dial (it dials every configured peer): Hello, and it never reads our streams. */
function originalDials(fake: FakeOriginal, target: TestNode): QuicConnection {
  const conn = endpoint!.connect(target.address);
  fake.dialed = conn;
  conn.onEstablished = () => {
    const control = conn.openStream();
    control.write(encodeControlMessage({ type: 'hello', nonce: 1n }));
    control.write(encodeControlMessage({ type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.0/24', metric: 1 }] }));
  };
  conn.onStream = () => fake.streamsOnItsDial++;
  return conn;
}

/** One control message on a new stream of `conn`, as the original sends reload announcements and Goodbye. */
function onNewStream(conn: QuicConnection, msg: ControlMessage): void {
  const stream = conn.openStream();
  stream.write(encodeControlMessage(msg));
  stream.end();
}

async function vibepnWithOriginal(allowedRoutes: string[] = []): Promise<{ a: TestNode; orig: TestNode; tun: MemoryTun; fake: FakeOriginal }> {
  const [a, orig] = await Promise.all([createNode(root, 'a'), createNode(root, 'orig')]);
  nodes.push(a);
  const fake = await fakeOriginal(orig);
  const tuns = memoryTunFactory();
  await startNode(a, writeNodeConfig(a, [peerOf(orig, ['corp'], { original: true, allowedRoutes })]), { tunFactory: tuns.factory });
  return { a, orig, tun: tuns.created[0]!, fake };
}

const originalAddress = (orig: TestNode): string => formatIp(deriveOriginalAutoAddress('corp', CORP.prefix, orig.fingerprint)!);

describe('a peer marked original = true', () => {
  it('is dialed by us, hears the highest Hello nonce and a Keepalive at once, and its /24 stands for its own address', async () => {
    const { a, orig, fake } = await vibepnWithOriginal();
    await waitFor(() => routeSet(a.daemon!).length === 1, 'a to take the original’s announcement');
    const address = originalAddress(orig);
    expect(routeSet(a.daemon!)).toEqual([`corp ${address}/32 ${orig.fingerprint}`]);
    await waitFor(() => fake.control.some((m) => m.type === 'keepalive'), 'the Keepalive after Hello');
    const types = fake.control.map((m) => m.type);
    // Hello, our announcement, then a Keepalive right away (the original's liveness watcher counts only K).
    expect(types.slice(0, 3)).toEqual(['hello', 'announce', 'keepalive']);
    expect(fake.control[0]).toEqual({ type: 'hello', nonce: (1n << 64n) - 1n });
  });

  it('keeps the connection it dialed passive: data goes only on ours, even after its Hello there', async () => {
    const { a, orig, tun, fake } = await vibepnWithOriginal();
    await waitFor(() => routeSet(a.daemon!).length === 1 && fake.accepted !== null, 'a to connect to the original');
    const ours = formatIp(resolveNetworkAddress(CORP, a.fingerprint));
    const theirs = originalAddress(orig);
    originalDials(fake, a);
    await waitFor(() => a.daemon!.connectionCount() === 2, 'the original’s own connection to get its session');
    // Its connection is neither a duplicate to close nor where traffic goes.
    expect(a.daemon!.sessionWith(orig.fingerprint)?.direction).toBe('outbound');
    for (let i = 0; i < 20; i++) tun.inject(ipv4Packet(ours, theirs, 40, i));
    await waitFor(() => fake.packets.length === 20, 'all 20 packets to arrive on our connection');
    expect(fake.streamsOnItsDial).toBe(0);
    expect(a.lines.some((l) => l.includes('duplicate connection'))).toBe(false);
    // Packets from the original, one stream per packet, from its own address: delivered.
    for (let i = 0; i < 5; i++) {
      const stream = fake.accepted!.openStream();
      stream.write(encodeFrame('corp', ipv4Packet(theirs, ours, 40, 100 + i)));
      stream.end();
    }
    await waitFor(() => tun.written.length === 5, 'its 5 packets to reach the TUN');
  });

  it('reads its reload announcements and its Goodbye on separate streams as control messages', async () => {
    const { a, orig, fake } = await vibepnWithOriginal(['192.168.77.0/24']);
    await waitFor(() => routeSet(a.daemon!).length === 1 && fake.accepted !== null, 'a to connect to the original');
    onNewStream(fake.accepted!, { type: 'announce', network: 'corp', routes: [{ prefix: '192.168.77.0/24', metric: 1 }] });
    await waitFor(() => routeSet(a.daemon!).includes(`corp 192.168.77.0/24 ${orig.fingerprint}`), 'the side-stream Announce to apply');
    onNewStream(fake.accepted!, { type: 'withdraw', network: 'corp', prefix: '192.168.77.0/24' });
    await waitFor(() => routeSet(a.daemon!).length === 1, 'the side-stream Withdraw to apply');
    expect(metricValue(await metricsText(a), 'vibepn_forward_drops_total', 'network="",reason="malformed"')).toBe(0);
    onNewStream(fake.accepted!, { type: 'goodbye' });
    await waitFor(() => routeSet(a.daemon!).length === 0, 'its Goodbye to remove its routes');
    expect(a.lines.some((l) => l.includes('orig (') && l.includes('said goodbye'))).toBe(true);
  });

  it('keeps its whole prefix as such when allowed_routes grants it', async () => {
    const { a, orig } = await vibepnWithOriginal(['10.42.0.0/24']);
    await waitFor(() => routeSet(a.daemon!).length === 1, 'a to take the original’s announcement');
    expect(routeSet(a.daemon!)).toEqual([`corp 10.42.0.0/24 ${orig.fingerprint}`]);
    expect(formatPrefix(hostPrefix(deriveOriginalAutoAddress('corp', CORP.prefix, orig.fingerprint)!))).toMatch(/^10\.42\.0\.\d+\/32$/);
  });

  it('must have an address: the config refuses an inbound-only original', async () => {
    const [a, orig] = await Promise.all([createNode(root, 'a'), createNode(root, 'orig')]);
    expect(() => writeNodeConfig(a, [peerOf(orig, ['corp'], { original: true, address: '' })])).toThrow(/peers\[0\]\.original: an original VibePN node must be dialed by this node/);
  });
});
