// TCP super-segments carried whole (PROTOCOL.md#v-super-segments): what the TUN reader hands
// over, what the send path makes of it for a peer that takes them and for one that does not, and
// what the receive path writes to a TUN with and without offloads. Every packet that reaches a
// TUN as ordinary packets must be byte for byte what the kernel's own segmentation would give.

import { describe, expect, it } from 'vitest';
import { newNetwork } from '../../../src/config/write.js';
import { TcpCoalescer } from '../../../src/forward/coalesce.js';
import { DataPlane, type ForwardTarget } from '../../../src/forward/dataplane.js';
import { FrameEncoder } from '../../../src/forward/frame.js';
import { SegmentError, SuperSegmentLayout, TcpSegmenter } from '../../../src/forward/segment.js';
import { PeerSender } from '../../../src/forward/send.js';
import { TunWriter } from '../../../src/forward/tun-writer.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { newForwardCounters } from '../../../src/metrics/forward-counters.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { parseCidr, parseIp, type Prefix } from '../../../src/netgraph/addr.js';
import { RouteTable } from '../../../src/netgraph/table.js';
import { MemoryTun, memoryTunFactory } from '../../../src/tun/memory.js';
import { OffloadReader } from '../../../src/tun/offload-reader.js';
import { VNET_HEADER_LENGTH, decodeVnetHeader, encodeVnetHeader } from '../../../src/tun/vnet-header.js';
import { ipBytes } from '../../helpers/bytes.js';
import { FLAG, buildSuperSegment, naivePseudoSum, naiveTcpProblem, patternBytes, readU16, reasonOf, timestampOption } from '../../helpers/tcp-packets.js';
import { FakeConnection, decodeFrames } from '../../helpers/unit-fakes.js';

const GSO = 1448;

/** A super-segment of `segments` full segments and a short last one, as the kernel reads it (partial checksum). */
function superSegment(v6 = false, segments = 5, seed = 1): { packet: Uint8Array; header: ReturnType<typeof buildSuperSegment>['header'] } {
  return buildSuperSegment({ v6, payload: patternBytes(GSO * segments + 100, seed), options: timestampOption(7), flags: FLAG.ACK | FLAG.PSH }, GSO);
}

/** What the kernel's segmentation makes of it: the reference every path must reproduce. */
function reference(packet: Uint8Array, header: ReturnType<typeof superSegment>['header']): Uint8Array[] {
  const segmenter = new TcpSegmenter();
  const out = new Uint8Array(packet.length * 2 + 4096);
  const n = segmenter.split(packet, header, out);
  return Array.from({ length: n }, (_, i) => out.slice(segmenter.offsets[i]!, segmenter.offsets[i]! + segmenter.lengths[i]!));
}

describe('SuperSegmentLayout', () => {
  it('reads header lengths and the packets a super-segment stands for, IPv4 and IPv6', () => {
    const layout = new SuperSegmentLayout();
    for (const v6 of [false, true]) {
      const { packet } = superSegment(v6);
      layout.read(packet, GSO, 2048);
      expect([layout.v6, layout.ipLength, layout.tcpLength, layout.count]).toEqual([v6, v6 ? 40 : 20, 32, 6]);
    }
  });

  it('refuses a wrong family, too many or empty segments and a truncated packet with a stable reason', () => {
    const layout = new SuperSegmentLayout();
    const { packet } = superSegment();
    const reason = (f: () => unknown): string => reasonOf(f, SegmentError);
    expect(reason(() => layout.read(packet, GSO, 2048, 6))).toBe('gso-family-mismatch');
    expect(reason(() => layout.read(packet, 1, 2048))).toBe('too-many-segments');
    expect(reason(() => layout.read(packet, 0, 2048))).toBe('zero-gso-size');
    expect(reason(() => layout.read(packet.subarray(0, 30), GSO, 2048))).toBe('ip-header');
  });
});

describe('OffloadReader with gsoSizes', () => {
  function read(packets: Array<{ packet: Uint8Array; header: Parameters<typeof encodeVnetHeader>[0] }>, keep: boolean): { views: Uint8Array[]; sizes: number[] } {
    const buffer = new Uint8Array(1 << 20);
    const lengths = new Uint32Array(packets.length);
    let at = 0;
    packets.forEach(({ packet, header }, i) => {
      encodeVnetHeader(header, buffer, at);
      buffer.set(packet, at + VNET_HEADER_LENGTH);
      lengths[i] = VNET_HEADER_LENGTH + packet.length;
      at += lengths[i]!;
    });
    const views: Uint8Array[] = [];
    const gsoSizes = keep ? new Uint16Array(packets.length) : null;
    const n = new OffloadReader().expand(buffer, lengths, packets.length, views, gsoSizes);
    return { views: views.slice(0, n).map((v) => v.slice()), sizes: gsoSizes ? [...gsoSizes.subarray(0, n)] : [] };
  }

  it('keeps a super-segment whole, untouched, with its segment size; splits it without gsoSizes', () => {
    const big = superSegment();
    const single = buildSuperSegment({ payload: patternBytes(500, 3) }, GSO);
    const kept = read([big, single], true);
    expect(kept.sizes).toEqual([GSO, 0]);
    expect(kept.views[0]).toEqual(big.packet);
    // One segment's worth is not a super-segment: finished as an ordinary packet.
    expect(naiveTcpProblem(kept.views[1]!)).toBeNull();
    const split = read([big], false);
    expect(split.views).toEqual(reference(big.packet, big.header));
  });
});

interface Target extends ForwardTarget {
  sender: PeerSender | null;
}

function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

describe('DataPlane sending a super-segment', () => {
  function setup(takesSuperSegments: boolean) {
    const registry = memoryTunFactory();
    const metrics = new Metrics({ processMetrics: false });
    const plane = new DataPlane<Target>({ metrics, logger: memoryLogger('forward').logger, tunFactory: registry.factory, offload: true });
    const table = new RouteTable<Target>(() => 'b'.repeat(64));
    plane.addNetwork(newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.7' }), parseIp('10.42.0.7')!, table);
    const conn = new FakeConnection();
    const capabilities = { superSegments: takesSuperSegments };
    const peer: Target = { label: 'bob', sender: new PeerSender(conn.asQuic(), capabilities) };
    table.add(prefix('10.42.0.9/32'), peer, 1);
    return { tun: registry.devices.get('vpn-corp')!, conn, counters: plane.counters('corp')!, capabilities };
  }

  it('sends one frame to a peer that takes super-segments, counting the packets it stands for', () => {
    const { tun, conn, counters } = setup(true);
    const { packet, header } = superSegment();
    tun.injectBatch([packet], [GSO]);
    expect(decodeFrames(conn.opened[0]!.written())).toEqual([{ network: 'corp', packet, gsoSize: GSO }]);
    const segments = reference(packet, header);
    expect(counters.packetsOut).toBe(segments.length);
    expect(counters.bytesOut).toBe(segments.reduce((n, s) => n + s.length, 0));
    expect(counters.superSegmentsOut).toBe(1);
  });

  it('cuts it into the packets the kernel would have sent for a peer that does not', () => {
    const { tun, conn, counters } = setup(false);
    for (const v6 of [false, true]) {
      const { packet, header } = superSegment(v6);
      if (v6) packet.set(ipBytes('fd00::7'), 8);
      tun.injectBatch([packet], [GSO]);
      if (!v6) expect(decodeFrames(conn.opened[0]!.written()).map((f) => f.packet)).toEqual(reference(packet, header));
    }
    expect(counters.superSegmentsOut).toBe(0);
    expect(counters.packetsOut).toBe(6);
  });

  it('follows the peer’s latest word: a C that arrives after traffic started switches it on', () => {
    const { tun, conn, capabilities } = setup(false);
    const { packet } = superSegment();
    tun.injectBatch([packet], [GSO]);
    capabilities.superSegments = true;
    tun.injectBatch([packet], [GSO]);
    expect(decodeFrames(conn.opened[0]!.written()).map((f) => f.gsoSize ?? 0)).toEqual([0, 0, 0, 0, 0, 0, GSO]);
  });
});

describe('TunWriter with a super-segment from a peer', () => {
  const options = { name: 'vpn-corp', address: ipBytes('10.42.0.9'), prefixLength: 24, mtu: 8000 };

  it('writes it whole to a TUN with offloads, with its segment size', () => {
    const tun = new MemoryTun({ ...options, offload: true });
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    const { packet, header } = superSegment();
    writer.queue(Uint8Array.of(0x45, 0, 0, 20, ...new Uint8Array(16)));
    writer.queue(packet, GSO);
    writer.flush();
    expect(tun.writtenGsoSizes).toEqual([0, GSO]);
    expect(tun.written[1]).toEqual(packet);
    expect(counters.packetsIn).toBe(1 + reference(packet, header).length);
    expect(counters.superSegmentsIn).toBe(1);
  });

  it('writes the packets it stands for, checksums complete, to a TUN without offloads', () => {
    const tun = new MemoryTun(options);
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    for (const v6 of [false, true]) {
      const { packet, header } = superSegment(v6);
      writer.queue(packet, GSO);
      writer.flush();
      const expected = reference(packet, header);
      expect(tun.written.slice(-expected.length)).toEqual(expected);
      for (const segment of expected) expect(naiveTcpProblem(segment)).toBeNull();
    }
    expect(tun.writtenGsoSizes.every((g) => g === 0)).toBe(true);
  });

  it('counts one that is not a TCP super-segment, or stands for one packet, as malformed', () => {
    const tun = new MemoryTun({ ...options, offload: true });
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    const { packet } = superSegment();
    writer.queue(packet.subarray(0, 40), GSO);
    writer.queue(packet, packet.length);
    const udp = packet.slice();
    udp[9] = 17;
    writer.queue(udp, GSO);
    writer.flush();
    expect(tun.written).toEqual([]);
    expect(counters.drops.malformed).toBe(3);
  });
});

describe('TcpCoalescer.addSuperSegment', () => {
  it('passes it through under a GSO header, with the checksums the kernel relies on rewritten in place', () => {
    const { packet, header } = superSegment();
    const received = packet.slice();
    // On the wire its checksums mean nothing: make them wrong to see that they are rewritten.
    received[10] = received[10]! ^ 0xff;
    received[36] = received[36]! ^ 0xff;
    const coalescer = new TcpCoalescer();
    expect(coalescer.addSuperSegment(received, GSO)).toBe(true);
    expect(coalescer.finish()).toBe(1);
    expect(coalescer.outputBuffer(0)).toBe(received);
    const written = decodeVnetHeader(coalescer.headers, 0, received.length);
    expect(written).toMatchObject({ gsoType: 'tcpv4', gsoSize: GSO, needsChecksum: true, csumStart: 20, csumOffset: 16, hdrLen: 52 });
    expect(readU16(received, 20 + 16)).toBe(naivePseudoSum(received, 6, received.length - 20));
    // Segmenting what would be written gives exactly the kernel's packets.
    expect(reference(received, written)).toEqual(reference(packet, header));
  });

  it('ends its flow’s open run, so a later packet of the flow cannot move in front of it', () => {
    const segments = reference(superSegment().packet, superSegment().header);
    const { packet } = buildSuperSegment({ seq: 1000 + 2 * GSO, payload: patternBytes(GSO * 3, 9) }, GSO);
    const coalescer = new TcpCoalescer();
    coalescer.add(segments[0]!);
    coalescer.add(segments[1]!);
    coalescer.addSuperSegment(packet, GSO);
    coalescer.add(segments[2]!);
    expect(coalescer.finish()).toBe(3);
    expect([coalescer.segmentCount(0), coalescer.outputBuffer(1) === packet, coalescer.segmentCount(2)]).toEqual([2, true, 1]);
  });
});

describe('FrameEncoder and the sender', () => {
  it('PeerSender.addSuperSegment writes the extension frame on the peer’s stream', () => {
    const conn = new FakeConnection();
    const sender = new PeerSender(conn.asQuic(), { superSegments: true });
    const { packet } = superSegment();
    expect(sender.addSuperSegment(new FrameEncoder('corp'), packet, GSO)).toBe(true);
    sender.flush();
    expect(decodeFrames(conn.opened[0]!.written())).toEqual([{ network: 'corp', packet, gsoSize: GSO }]);
  });
});
