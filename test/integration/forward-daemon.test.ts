// The data plane between two in-process daemons over real QUIC, with in-memory TUN devices:
// every packet injected on one side arrives intact on the other, in order, with counters.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newNetwork } from '../../src/config/write.js';
import { resolveNetworkAddress } from '../../src/config/address.js';
import { parseIp, formatIp } from '../../src/netgraph/addr.js';
import { memoryTunFactory, type MemoryTun } from '../../src/tun/memory.js';
import { TcpSegmenter } from '../../src/forward/segment.js';
import { buildSuperSegment, patternBytes, timestampOption } from '../helpers/tcp-packets.js';
import { createNode, peerOf, startNode, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

let root: string;
let nodes: TestNode[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-fwd-'));
  nodes = [];
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

/** An IPv4 packet of `size` bytes from `src` to `dst` whose payload encodes `seq`. */
function ipv4(src: string, dst: string, size: number, seq: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(parseIp(src)!, 12);
  p.set(parseIp(dst)!, 16);
  for (let i = 20; i < size; i++) p[i] = (seq * 31 + i) & 0xff;
  p[20] = seq >> 24;
  p[21] = (seq >> 16) & 0xff;
  p[22] = (seq >> 8) & 0xff;
  p[23] = seq & 0xff;
  return p;
}

const CORP = newNetwork('corp', '10.42.0.0/24');

async function pair(): Promise<{ a: TestNode; b: TestNode; tunA: MemoryTun; tunB: MemoryTun }> {
  const [a, b] = await Promise.all([createNode(root, 'a'), createNode(root, 'b')]);
  nodes.push(a, b);
  const tunsA = memoryTunFactory();
  const tunsB = memoryTunFactory();
  // Only a dials, and b is up by then: one connection from the start. Were both to dial, a's dial
  // to b (not up yet) would be answered when quiche resends its Initial about a second later; if
  // that duplicate won the tie-break, the session would move to it in the middle of a test and
  // the packets sent on the old connection meanwhile would be lost.
  await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'], { address: '' })]), { tunFactory: tunsB.factory });
  await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]), { tunFactory: tunsA.factory });
  await waitFor(() => a.daemon!.routeList().length === 1 && b.daemon!.routeList().length === 1, 'a and b to exchange routes');
  return { a, b, tunA: tunsA.created[0]!, tunB: tunsB.created[0]! };
}

describe('forwarding between two daemons', () => {
  it('delivers every packet of many full-size batches intact and in order, written to the TUN in batches', async () => {
    const { a, b, tunA, tunB } = await pair();
    let writeCalls = 0;
    const writePackets = tunB.writePackets.bind(tunB);
    tunB.writePackets = (packets, count, status) => {
      writeCalls++;
      return writePackets(packets, count, status);
    };
    const src = formatIp(resolveNetworkAddress(CORP, a.fingerprint));
    const dst = formatIp(resolveNetworkAddress(CORP, b.fingerprint));
    const sent: Uint8Array[] = [];
    let seq = 0;
    for (let batch = 0; batch < 40; batch++) {
      const packets = Array.from({ length: 64 }, () => ipv4(src, dst, 40 + ((seq * 97) % 1241), seq++));
      sent.push(...packets);
      tunA.inject(...packets);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => tunB.written.length >= sent.length, `${sent.length} packets to arrive (got ${tunB.written.length})`, 15_000);
    expect(tunB.written.length).toBe(sent.length);
    // toEqual walks typed arrays element by element (~9 s for these 1.7 MB); compare bytes natively
    // and let toEqual describe only a packet that differs.
    for (let i = 0; i < sent.length; i++) {
      if (!Buffer.from(tunB.written[i]!).equals(sent[i]!)) expect(tunB.written[i], `packet ${i}`).toEqual(sent[i]);
    }
    const counters = a.daemon!.dataPlaneCounters('corp')!;
    expect(counters.packetsOut).toBe(sent.length);
    expect(b.daemon!.dataPlaneCounters('corp')!.packetsIn).toBe(sent.length);
    expect(Object.values(counters.drops).every((n) => n === 0)).toBe(true);
    // Many packets per call: one batch per chunk read from the stream, not one call per packet.
    expect(writeCalls).toBeLessThan(sent.length / 4);
  });

  it('counts and drops packets with no route, a spoofed source, or an unknown network', async () => {
    const { a, b, tunA, tunB } = await pair();
    const src = formatIp(resolveNetworkAddress(CORP, a.fingerprint));
    const dst = formatIp(resolveNetworkAddress(CORP, b.fingerprint));
    const nowhere = ['10.42.0.1', '10.42.0.2', '10.42.0.3'].find((ip) => ip !== src && ip !== dst)!;
    tunA.inject(ipv4(src, nowhere, 100, 1), ipv4(src, dst, 100, 2), new Uint8Array([0x45, 0, 0]));
    // b's own address as source: a packet a may not send.
    tunA.inject(ipv4(dst, dst, 100, 3));
    await waitFor(() => tunB.written.length === 1, 'the good packet to arrive');
    await waitFor(() => b.daemon!.dataPlaneCounters('corp')!.drops.spoofed === 1, 'the spoofed packet to be dropped');
    const out = a.daemon!.dataPlaneCounters('corp')!;
    expect(out.drops.no_route).toBe(1);
    expect(out.drops.malformed).toBe(1);
    expect(tunB.written[0]).toEqual(ipv4(src, dst, 100, 2));
  });
});

// PROTOCOL.md#v-super-segments: a TCP super-segment read from A's TUN goes to B as one frame only
// when B said in its C message that it takes them; whatever B's TUN can do, the kernel on B gets
// either the super-segment whole (offloads) or exactly the packets it stands for.
describe('TCP super-segments between two daemons', () => {
  const GSO = 1448;

  async function superPair(b: { offload: boolean; kernelOffloads: boolean }) {
    const [nodeA, nodeB] = await Promise.all([createNode(root, 'a'), createNode(root, 'b')]);
    nodes.push(nodeA, nodeB);
    const tunsA = memoryTunFactory();
    const tunsB = memoryTunFactory({ offload: b.kernelOffloads });
    await startNode(nodeB, writeNodeConfig(nodeB, [peerOf(nodeA, ['corp'], { address: '' })], undefined, { offload: b.offload }), { tunFactory: tunsB.factory });
    await startNode(nodeA, writeNodeConfig(nodeA, [peerOf(nodeB, ['corp'])]), { tunFactory: tunsA.factory });
    await waitFor(() => nodeA.daemon!.routeList().length === 1 && nodeB.daemon!.routeList().length === 1, 'a and b to exchange routes');
    const src = [...resolveNetworkAddress(CORP, nodeA.fingerprint)];
    const dst = [...resolveNetworkAddress(CORP, nodeB.fingerprint)];
    const { packet, header } = buildSuperSegment({ src, dst, payload: patternBytes(GSO * 20 + 7, 5), options: timestampOption(1) }, GSO);
    const segmenter = new TcpSegmenter();
    const out = new Uint8Array(packet.length * 2);
    const n = segmenter.split(packet, header, out);
    const expected = Array.from({ length: n }, (_, i) => out.slice(segmenter.offsets[i]!, segmenter.offsets[i]! + segmenter.lengths[i]!));
    tunsA.created[0]!.injectBatch([packet], [GSO]);
    const tunB = tunsB.created[0]!;
    return { a: nodeA, b: nodeB, tunB, packet, expected };
  }

  it('goes whole to a peer that takes them and whose TUN has offloads', async () => {
    const { a, b, tunB, packet, expected } = await superPair({ offload: true, kernelOffloads: true });
    await waitFor(() => tunB.written.length === 1, 'the super-segment to arrive');
    expect(tunB.writtenGsoSizes).toEqual([GSO]);
    // Its checksums were made valid for the kernel: only those differ from what A read.
    expect(tunB.written[0]!.subarray(40)).toEqual(packet.subarray(40));
    expect(a.daemon!.dataPlaneCounters('corp')!).toMatchObject({ superSegmentsOut: 1, packetsOut: expected.length });
    expect(b.daemon!.dataPlaneCounters('corp')!).toMatchObject({ superSegmentsIn: 1, packetsIn: expected.length });
  });

  it('goes whole to a peer that takes them but whose kernel has no offloads, which cuts it up', async () => {
    const { b, tunB, expected } = await superPair({ offload: true, kernelOffloads: false });
    await waitFor(() => tunB.written.length === expected.length, `${expected.length} packets to arrive`);
    expect(tunB.written).toEqual(expected);
    expect(b.daemon!.dataPlaneCounters('corp')!.superSegmentsIn).toBe(1);
  });

  it('is cut into ordinary packets for a peer that never offered (offload = false: no tcp-gso in its C)', async () => {
    const { a, b, tunB, expected } = await superPair({ offload: false, kernelOffloads: true });
    await waitFor(() => tunB.written.length === expected.length, `${expected.length} packets to arrive`);
    expect(tunB.written).toEqual(expected);
    expect(tunB.offload).toBe(false);
    expect(a.daemon!.dataPlaneCounters('corp')!.superSegmentsOut).toBe(0);
    expect(b.daemon!.dataPlaneCounters('corp')!.superSegmentsIn).toBe(0);
    expect(b.lines.some((l) => l.includes('accepts: tcp-gso'))).toBe(true);
    expect(a.lines.some((l) => l.includes('accepts:') && l.includes('tcp-gso'))).toBe(false);
  });
});
