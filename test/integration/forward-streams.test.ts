// Raw streams as the original VibePN sends them, and broken ones, from a hand-driven QUIC peer to
// a real daemon (PROTOCOL.md section 6): one frame per stream is accepted, a malformed frame
// resets only its stream, a frame for an unknown network is dropped and counted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newNetwork } from '../../src/config/write.js';
import { resolveNetworkAddress } from '../../src/config/address.js';
import { encodeControlMessage } from '../../src/control/messages.js';
import { encodeFrame } from '../../src/forward/frame.js';
import { Logger } from '../../src/log/logger.js';
import { parseIp, formatIp } from '../../src/netgraph/addr.js';
import type { QuicConnection } from '../../src/quic/connection.js';
import { QuicEndpoint } from '../../src/quic/endpoint.js';
import { memoryTunFactory } from '../../src/tun/memory.js';
import { createNode, peerOf, startNode, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

const CORP = newNetwork('corp', '10.42.0.0/24');
let root: string;
let nodes: TestNode[] = [];
let endpoint: QuicEndpoint | null = null;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-streams-'));
  nodes = [];
});

afterEach(async () => {
  await endpoint?.close();
  endpoint = null;
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

function udpPacket(src: string, dst: string, marker: number): Uint8Array {
  const p = new Uint8Array(32);
  p[0] = 0x45;
  p[3] = 32;
  p[8] = 64;
  p[9] = 17;
  p.set(parseIp(src)!, 12);
  p.set(parseIp(dst)!, 16);
  p[28] = marker;
  return p;
}

describe('raw streams from a peer', () => {
  it('accepts one frame per stream, resets only a malformed stream, drops unknown networks', async () => {
    const [a, old] = await Promise.all([createNode(root, 'a'), createNode(root, 'old')]);
    nodes.push(a);
    const tuns = memoryTunFactory();
    await startNode(a, writeNodeConfig(a, [peerOf(old, ['corp'], { address: '' })]), { tunFactory: tuns.factory });
    const tun = tuns.created[0]!;
    const aAddress = formatIp(resolveNetworkAddress(CORP, a.fingerprint));
    const oldAddress = '10.42.0.99';

    // The "original" node: dials, sends Hello and its host route, then data the original way.
    endpoint = await QuicEndpoint.listen({
      listen: '127.0.0.1:0',
      certPem: readFileSync(join(old.dir, 'node.crt'), 'utf8'),
      keyPem: readFileSync(join(old.dir, 'node.key'), 'utf8'),
      logger: new Logger('old', { sink: () => {} }),
    });
    const conn: QuicConnection = endpoint.connect(a.address);
    let closed = false;
    conn.onClose = () => (closed = true);
    await new Promise<void>((resolve) => {
      conn.onEstablished = () => {
        const control = conn.openStream();
        control.write(encodeControlMessage({ type: 'hello', nonce: 42n }));
        control.write(encodeControlMessage({ type: 'announce', network: 'corp', routes: [{ prefix: `${oldAddress}/32`, metric: 1 }] }));
        resolve();
      };
    });
    await waitFor(() => a.daemon!.routeList().length === 1, 'a to learn the old node’s route');

    const sendStream = (bytes: Uint8Array) => {
      const stream = conn.openStream();
      stream.write(bytes);
      stream.end();
      return stream;
    };
    // One frame per stream, five streams, each sent once the previous one is through: QUIC keeps
    // no order between streams, and a lost datagram (resent after the later streams) would let
    // its frame reach the TUN last.
    for (let i = 1; i <= 5; i++) {
      sendStream(encodeFrame('corp', udpPacket(oldAddress, aAddress, i)));
      await waitFor(() => tun.written.length === i, `one-frame stream ${i} to arrive`);
    }
    expect(tun.written.map((p) => p[28])).toEqual([1, 2, 3, 4, 5]);

    // A malformed frame (network name length 0) resets that stream only.
    let resetCode: number | null = null;
    const bad = sendStream(new Uint8Array([0, 0, 4, 1, 2, 3, 4]));
    bad.onReset = (code) => (resetCode = code);
    await waitFor(() => resetCode !== null, 'the malformed stream to be reset');
    // A frame for a network a does not have is dropped and counted.
    sendStream(encodeFrame('lab', udpPacket(oldAddress, aAddress, 7)));
    // The connection still carries data.
    sendStream(encodeFrame('corp', udpPacket(oldAddress, aAddress, 6)));
    await waitFor(() => tun.written.length === 6, 'the stream after the reset to arrive');
    expect(tun.written[5]![28]).toBe(6);
    expect(closed).toBe(false);
    expect(a.daemon!.sessionWith(old.fingerprint)).toBeDefined();
    const metrics = await (await fetch(`http://127.0.0.1:${a.daemon!.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/vibepn_forward_drops_total\{network="",reason="malformed"\} 1/);
    expect(metrics).toMatch(/vibepn_forward_drops_total\{network="",reason="unknown_network"\} 1/);
  });
});
