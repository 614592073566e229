import { describe, expect, it } from 'vitest';
import { SegmentError, TcpSegmenter, completeChecksum, type SegmentErrorReason } from '../../../src/forward/segment.js';
import { noneVnetHeader, type VnetHeader } from '../../../src/tun/vnet-header.js';
import {
  FLAG,
  buildSuperSegment,
  buildTcp,
  ipHeaderLength,
  naivePseudoSum,
  naiveSum,
  naiveTcpProblem,
  patternBytes,
  readU16,
  readU32,
  reasonOf as reasonOfError,
  timestampOption,
  type TcpSpec,
} from '../../helpers/tcp-packets.js';

function split(segmenter: TcpSegmenter, packet: Uint8Array, header: VnetHeader, outSize = 200_000, outOffset = 0, gap = 0): Uint8Array[] {
  const out = new Uint8Array(outSize);
  const count = segmenter.split(packet, header, out, outOffset, gap);
  return Array.from({ length: count }, (_, i) => out.slice(segmenter.offsets[i]!, segmenter.offsets[i]! + segmenter.lengths[i]!));
}

const reasonOf = (f: () => unknown): SegmentErrorReason | 'no error' => reasonOfError(f, SegmentError);

function payloadOf(p: Uint8Array): Uint8Array {
  const ip = ipHeaderLength(p);
  return p.subarray(ip + (p[ip + 12]! >> 4) * 4);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

describe('TCP segmentation (userspace GSO)', () => {
  const segmenter = new TcpSegmenter();

  it('splits an IPv4 super-segment: lengths, IDs, sequence numbers, flags and checksums per segment', () => {
    const payload = patternBytes(3500, 1);
    const spec: TcpSpec = { seq: 0xfffffc00, id: 0xfffe, flags: FLAG.ACK | FLAG.PSH | FLAG.FIN | FLAG.CWR, payload };
    const { packet, header } = buildSuperSegment(spec, 1000);
    const original = packet.slice();
    const segments = split(segmenter, packet, header);
    expect(segments.map((s) => s.length)).toEqual([1040, 1040, 1040, 540]);
    expect(segments.map((s) => readU16(s, 4))).toEqual([0xfffe, 0xffff, 0x0000, 0x0001]);
    expect(segments.map((s) => readU32(s, 24))).toEqual([0xfffffc00, 0xffffffe8, 999 - 24 + 1, 1999 - 24 + 1]);
    expect(segments.map((s) => s[33])).toEqual([FLAG.ACK | FLAG.CWR, FLAG.ACK, FLAG.ACK, FLAG.ACK | FLAG.PSH | FLAG.FIN]);
    for (const s of segments) expect(naiveTcpProblem(s)).toBeNull();
    expect(concat(segments.map(payloadOf))).toEqual(payload);
    expect(packet).toEqual(original);
  });

  it('splits an IPv6 super-segment with timestamps, copying options and flow label', () => {
    const payload = patternBytes(2 * 1388 + 1, 2);
    const { packet, header } = buildSuperSegment({ v6: true, options: timestampOption(123456, 654321), flowLabel: 0xabcde, payload, flags: FLAG.ACK | FLAG.PSH }, 1388);
    const segments = split(segmenter, packet, header);
    expect(segments.map((s) => s.length)).toEqual([40 + 32 + 1388, 40 + 32 + 1388, 40 + 32 + 1]);
    for (const s of segments) {
      expect(naiveTcpProblem(s)).toBeNull();
      expect(s.subarray(0, 4)).toEqual(packet.subarray(0, 4));
      expect(s.subarray(60, 72)).toEqual(timestampOption(123456, 654321));
    }
    expect(segments.map((s) => s[53])).toEqual([FLAG.ACK, FLAG.ACK, FLAG.ACK | FLAG.PSH]);
    expect(concat(segments.map(payloadOf))).toEqual(payload);
  });

  it('copies IPv4 options into every segment', () => {
    const ipOptions = Uint8Array.of(0x94, 0x04, 0x00, 0x00); // router alert
    const { packet, header } = buildSuperSegment({ ipOptions, payload: patternBytes(2000, 3) }, 1200);
    const segments = split(segmenter, packet, header);
    expect(segments).toHaveLength(2);
    for (const s of segments) {
      expect(s[0]).toBe(0x46);
      expect(s.subarray(20, 24)).toEqual(ipOptions);
      expect(naiveTcpProblem(s)).toBeNull();
    }
  });

  it('passes a super-segment that fits one packet, or carries no payload, as one packet', () => {
    for (const length of [0, 1, 1000]) {
      const { packet, header } = buildSuperSegment({ payload: patternBytes(length, 4), flags: FLAG.ACK | FLAG.FIN }, 1000);
      const segments = split(segmenter, packet, header);
      expect(segments).toHaveLength(1);
      expect(segments[0]![33]).toBe(FLAG.ACK | FLAG.FIN);
      expect(naiveTcpProblem(segments[0]!)).toBeNull();
    }
  });

  it('ignores whatever the GSO checksum field holds and works without NEEDS_CSUM', () => {
    const { packet, header } = buildSuperSegment({ payload: patternBytes(5000, 5) }, 1448);
    const expected = split(segmenter, packet, header);
    packet[36] = 0x12;
    packet[37] = 0x34;
    expect(split(segmenter, packet, { ...header, needsChecksum: false, csumStart: 0, csumOffset: 0 })).toEqual(expected);
  });

  it('does not trust hdr_len: headers come from the IP and TCP headers', () => {
    const { packet, header } = buildSuperSegment({ options: timestampOption(1), payload: patternBytes(3000, 6) }, 1000);
    expect(split(segmenter, packet, { ...header, hdrLen: 1032 + 20 })).toEqual(split(segmenter, packet, header));
  });

  it('writes at outOffset with a gap before each packet, touching nothing else', () => {
    const { packet, header } = buildSuperSegment({ payload: patternBytes(2500, 7) }, 1000);
    const out = new Uint8Array(4000).fill(0xee);
    const count = segmenter.split(packet, header, out, 5, 3);
    expect(count).toBe(3);
    expect(Array.from(segmenter.offsets.subarray(0, 3))).toEqual([8, 8 + 1040 + 3, 8 + 2 * (1040 + 3)]);
    const written = new Set<number>();
    for (let i = 0; i < count; i++) for (let j = 0; j < segmenter.lengths[i]!; j++) written.add(segmenter.offsets[i]! + j);
    for (let j = 0; j < out.length; j++) if (!written.has(j)) expect(out[j]).toBe(0xee);
  });

  it('handles tiny gso sizes up to its segment limit, and refuses more', () => {
    const { packet, header } = buildSuperSegment({ payload: patternBytes(300, 8) }, 1);
    const segments = split(new TcpSegmenter(300), packet, header);
    expect(segments).toHaveLength(300);
    for (const s of segments) expect(naiveTcpProblem(s)).toBeNull();
    expect(reasonOf(() => split(new TcpSegmenter(299), packet, header))).toBe('too-many-segments');
  });

  it('splits a 64 KiB super-segment', () => {
    const payload = patternBytes(65535 - 52, 9);
    const { packet, header } = buildSuperSegment({ options: timestampOption(9), payload }, 1448);
    const segments = split(segmenter, packet, header);
    expect(segments).toHaveLength(Math.ceil(payload.length / 1448));
    for (const s of segments) expect(naiveTcpProblem(s)).toBeNull();
    expect(concat(segments.map(payloadOf))).toEqual(payload);
  });

  it('refuses a packet it cannot segment, writing nothing', () => {
    const good = buildSuperSegment({ payload: patternBytes(3000, 10) }, 1000);
    const good6 = buildSuperSegment({ v6: true, payload: patternBytes(3000, 10) }, 1000);
    const edit = (p: Uint8Array, at: number, value: number): Uint8Array => {
      const copy = p.slice();
      copy[at] = value;
      return copy;
    };
    const cases: [Uint8Array, VnetHeader, SegmentErrorReason | 'no error'][] = [
      [edit(good.packet, 0, 0x55), good.header, 'not-ip'],
      [good.packet, { ...good.header, gsoType: 'tcpv6' }, 'gso-family-mismatch'],
      [good6.packet, good.header, 'gso-family-mismatch'],
      [good.packet, { ...good.header, gsoType: 'udp_l4' }, 'unsupported-gso-type'],
      [edit(good.packet, 0, 0x44), good.header, 'ip-header'],
      [good.packet.subarray(0, 10), good.header, 'ip-header'],
      [good.packet.subarray(0, 2000), good.header, 'ip-header'],
      [Uint8Array.from([...good.packet, 0]), good.header, 'length-mismatch'],
      [Uint8Array.from([...good6.packet, 0]), good6.header, 'length-mismatch'],
      [edit(good.packet, 6, 0x20), good.header, 'fragment'],
      [edit(good.packet, 7, 0x01), good.header, 'fragment'],
      [edit(good.packet, 9, 17), good.header, 'not-tcp'],
      [edit(good6.packet, 6, 17), good6.header, 'not-tcp'],
      [edit(good6.packet, 6, 0), good6.header, 'ipv6-extension-header'],
      [edit(good6.packet, 6, 44), good6.header, 'ipv6-extension-header'],
      [edit(good.packet, 32, 0x40), good.header, 'tcp-header'],
      [edit(good.packet, 32, 0xf0), { ...good.header }, 'no error'],
      [good.packet, { ...good.header, csumStart: 24 }, 'checksum-start-mismatch'],
      [good.packet, { ...good.header, csumOffset: 6 }, 'checksum-start-mismatch'],
      [good.packet, { ...good.header, gsoSize: 0 }, 'zero-gso-size'],
    ];
    for (const [packet, header, reason] of cases) {
      const out = new Uint8Array(10_000).fill(0xee);
      expect(reasonOf(() => segmenter.split(packet, header, out)), `${reason}`).toBe(reason);
      if (reason !== 'no error') expect(out.every((b) => b === 0xee)).toBe(true);
    }
    const tiny = buildTcp({ payload: patternBytes(10, 1) }).subarray(0, 39);
    tiny[2] = 0;
    tiny[3] = 39;
    expect(reasonOf(() => segmenter.split(tiny, good.header, new Uint8Array(100)))).toBe('tcp-header');
    const out = new Uint8Array(3119).fill(0xee);
    expect(reasonOf(() => segmenter.split(good.packet, good.header, out))).toBe('output-too-small');
    expect(out.every((b) => b === 0xee)).toBe(true);
    expect(reasonOf(() => segmenter.split(good.packet, good.header, new Uint8Array(3120)))).toBe('no error');
    expect(reasonOf(() => segmenter.split(good.packet, good.header, new Uint8Array(3120), 1))).toBe('output-too-small');
  });
});

describe('checksum completion of non-GSO packets (NEEDS_CSUM)', () => {
  const partialHeader = (csumStart: number, csumOffset: number): VnetHeader => ({ ...noneVnetHeader(), needsChecksum: true, csumStart, csumOffset });

  /** A UDP/IPv4 packet whose checksum field holds the pseudo-header sum, as the kernel sends it. */
  function partialUdp(payload: Uint8Array): Uint8Array {
    const p = new Uint8Array(28 + payload.length);
    p.set([0x45, 0, (p.length >> 8) & 0xff, p.length & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 42, 0, 7, 10, 42, 0, 9]);
    p.set([0x30, 0x39, 0x00, 0x35, ((8 + payload.length) >> 8) & 0xff, (8 + payload.length) & 0xff], 20);
    p.set(payload, 28);
    const pseudo = naivePseudoSum(p, 17, 8 + payload.length);
    p[26] = pseudo >> 8;
    p[27] = pseudo & 0xff;
    return p;
  }

  it('completes a TCP checksum in place and in split(), leaving other packets alone', () => {
    for (const v6 of [false, true]) {
      const partial = buildTcp({ v6, payload: patternBytes(777, 11), options: timestampOption(3) }, true);
      const header = partialHeader(v6 ? 40 : 20, 16);
      const expected = buildTcp({ v6, payload: patternBytes(777, 11), options: timestampOption(3) });
      expect(split(new TcpSegmenter(1), partial, header, 2000, 0, 10)).toEqual([expected]);
      const inPlace = partial.slice();
      completeChecksum(inPlace, header);
      expect(inPlace).toEqual(expected);
      const untouched = partial.slice();
      completeChecksum(untouched, noneVnetHeader());
      expect(untouched).toEqual(partial);
    }
  });

  it('completes a UDP checksum, storing a computed 0 as 0xffff', () => {
    const p = partialUdp(patternBytes(100, 12));
    completeChecksum(p, partialHeader(20, 6));
    expect(naiveSum(p.subarray(20), naivePseudoSum(p, 17, p.length - 20))).toBe(0xffff);
    // Make the data sum to exactly 0xffff with the partial sum, so the complement is 0.
    const zero = partialUdp(Uint8Array.of(0, 0, 0, 0));
    const sum = naiveSum(zero.subarray(20));
    const fill = 0xffff - sum;
    zero[28] = fill >> 8;
    zero[29] = fill & 0xff;
    completeChecksum(zero, partialHeader(20, 6));
    expect(readU16(zero, 26)).toBe(0xffff);
    expect(naiveSum(zero.subarray(20), naivePseudoSum(zero, 17, zero.length - 20))).toBe(0xffff);
  });

  it('completes within a range of a larger buffer, and refuses a checksum past the packet', () => {
    const partial = buildTcp({ payload: patternBytes(50, 13) }, true);
    const buffer = new Uint8Array(partial.length + 20).fill(0xee);
    buffer.set(partial, 10);
    completeChecksum(buffer, partialHeader(20, 16), 10, partial.length);
    expect(buffer.subarray(10, 10 + partial.length)).toEqual(buildTcp({ payload: patternBytes(50, 13) }));
    expect(buffer[9]).toBe(0xee);
    expect(buffer[10 + partial.length]).toBe(0xee);
    expect(reasonOf(() => completeChecksum(partial, partialHeader(partial.length - 1, 0)))).toBe('checksum-out-of-range');
    expect(reasonOf(() => completeChecksum(partial, partialHeader(20, 16), 5, partial.length))).toBe('checksum-out-of-range');
    expect(reasonOf(() => new TcpSegmenter().split(partial, partialHeader(80, 16), new Uint8Array(200)))).toBe('checksum-out-of-range');
    expect(reasonOf(() => new TcpSegmenter().split(partial, partialHeader(20, 16), new Uint8Array(partial.length - 1)))).toBe('output-too-small');
  });
});
