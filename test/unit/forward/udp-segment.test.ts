// UDP super-datagrams (USO reads) cut into the datagrams an application's UDP_SEGMENT send stands
// for, checked field by field against a naive reference, and what is refused.
import { describe, expect, it } from 'vitest';
import { SegmentError } from '../../../src/forward/segment.js';
import { UdpSegmenter } from '../../../src/forward/udp-segment.js';
import { OffloadReader } from '../../../src/tun/offload-reader.js';
import { VNET_HEADER_LENGTH, encodeVnetHeader, type VnetHeader } from '../../../src/tun/vnet-header.js';
import { naiveSum, patternBytes, readU16, reasonOf } from '../../helpers/tcp-packets.js';

const GSO = 1200;

/** A UDP super-datagram as the kernel hands it over under USO: the pseudo-header sum in the UDP checksum. */
function superDatagram(v6: boolean, payloadLength: number, id = 0x1234): { packet: Uint8Array; header: VnetHeader } {
  const ip = v6 ? 40 : 20;
  const p = new Uint8Array(ip + 8 + payloadLength);
  const view = new DataView(p.buffer);
  if (v6) {
    view.setUint32(0, 0x60012345);
    view.setUint16(4, p.length - 40);
    p[6] = 17;
    p[7] = 64;
    p.set([0xfd, 0, 0, 0x42, ...new Array(11).fill(0), 7], 8);
    p.set([0xfd, 0, 0, 0x42, ...new Array(11).fill(0), 9], 24);
  } else {
    p[0] = 0x45;
    view.setUint16(2, p.length);
    view.setUint16(4, id);
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p.set([10, 42, 0, 7], 12);
    p.set([10, 42, 0, 9], 16);
  }
  view.setUint16(ip, 4433);
  view.setUint16(ip + 2, 443);
  view.setUint16(ip + 4, p.length - ip);
  p.set(patternBytes(payloadLength, 7), ip + 8);
  const header: VnetHeader = { needsChecksum: true, dataValid: false, gsoType: 'udp_l4', ecn: false, hdrLen: ip + 8, gsoSize: GSO, csumStart: ip, csumOffset: 6 };
  return { packet: p, header };
}

/** Is `d` a well-formed UDP datagram: lengths, IPv4 header checksum, UDP checksum over the pseudo-header. */
function problem(d: Uint8Array): string | null {
  const v6 = d[0]! >> 4 === 6;
  const ip = v6 ? 40 : 20;
  if (v6 ? readU16(d, 4) + 40 !== d.length : readU16(d, 2) !== d.length) return 'IP length';
  if (!v6 && naiveSum(d.subarray(0, 20)) !== 0xffff) return 'IPv4 header checksum';
  if (readU16(d, ip + 4) !== d.length - ip) return 'UDP length';
  const addresses = v6 ? d.subarray(8, 40) : d.subarray(12, 20);
  const pseudo = naiveSum(addresses) + 17 + (d.length - ip);
  if (naiveSum(d.subarray(ip), pseudo) !== 0xffff) return 'UDP checksum';
  return null;
}

describe('UdpSegmenter', () => {
  for (const v6 of [false, true]) {
    it(`cuts an IPv${v6 ? 6 : 4} super-datagram into its datagrams, the last one shorter`, () => {
      const { packet, header } = superDatagram(v6, GSO * 4 + 333);
      const segmenter = new UdpSegmenter();
      const out = new Uint8Array(packet.length * 2);
      const n = segmenter.split(packet, header, out);
      expect(n).toBe(5);
      const ip = v6 ? 40 : 20;
      const datagrams = Array.from({ length: n }, (_, i) => out.subarray(segmenter.offsets[i]!, segmenter.offsets[i]! + segmenter.lengths[i]!));
      expect(datagrams.map((d) => d.length - ip - 8)).toEqual([GSO, GSO, GSO, GSO, 333]);
      for (const d of datagrams) expect(problem(d)).toBeNull();
      if (!v6) expect(datagrams.map((d) => readU16(d, 4))).toEqual([0x1234, 0x1235, 0x1236, 0x1237, 0x1238]);
      const payload = Buffer.concat(datagrams.map((d) => d.subarray(ip + 8)));
      expect(payload.equals(Buffer.from(packet.subarray(ip + 8)))).toBe(true);
      // Ports and everything but lengths and checksums are copied.
      for (const d of datagrams) expect([readU16(d, ip), readU16(d, ip + 2)]).toEqual([4433, 443]);
    });
  }

  it('wraps the IPv4 ID and leaves a datagram that fits as one', () => {
    const segmenter = new UdpSegmenter();
    const wrapped = superDatagram(false, GSO * 2, 0xffff);
    const out = new Uint8Array(8192);
    expect(segmenter.split(wrapped.packet, wrapped.header, out)).toBe(2);
    expect(readU16(out, segmenter.offsets[1]! + 4)).toBe(0);
    const small = superDatagram(false, 100);
    expect(segmenter.split(small.packet, small.header, out)).toBe(1);
    expect(problem(out.subarray(0, segmenter.lengths[0]!))).toBeNull();
  });

  it('refuses what it cannot cut, with a stable reason and nothing written', () => {
    const segmenter = new UdpSegmenter();
    const out = new Uint8Array(16384);
    const reason = (packet: Uint8Array, header: VnetHeader): string => reasonOf(() => segmenter.split(packet, header, out), SegmentError);
    const { packet, header } = superDatagram(false, GSO * 3);
    const tcp = packet.slice();
    tcp[9] = 6;
    expect(reason(tcp, header)).toBe('not-udp');
    const fragment = packet.slice();
    fragment[6] = 0x20;
    expect(reason(fragment, header)).toBe('fragment');
    expect(reason(packet, { ...header, csumOffset: 16 })).toBe('checksum-start-mismatch');
    expect(reason(packet, { ...header, gsoSize: 0 })).toBe('zero-gso-size');
    expect(reason(packet, { ...header, gsoSize: 1 })).toBe('too-many-segments');
    expect(reason(packet.subarray(0, 24), header)).toBe('ip-header');
    expect(reasonOf(() => segmenter.split(packet, header, new Uint8Array(100)), SegmentError)).toBe('output-too-small');
  });
});

describe('OffloadReader with a UDP_L4 read', () => {
  it('always cuts it up, also when it keeps TCP super-segments whole', () => {
    const { packet, header } = superDatagram(false, GSO * 3 + 10);
    const buffer = new Uint8Array(VNET_HEADER_LENGTH + packet.length);
    encodeVnetHeader(header, buffer, 0);
    buffer.set(packet, VNET_HEADER_LENGTH);
    const views: Uint8Array[] = [];
    const gsoSizes = new Uint16Array(16);
    const n = new OffloadReader().expand(buffer, Uint32Array.of(buffer.length), 1, views, gsoSizes);
    expect(n).toBe(4);
    expect([...gsoSizes.subarray(0, n)]).toEqual([0, 0, 0, 0]);
    for (const d of views.slice(0, n)) expect(problem(d)).toBeNull();
  });
});
