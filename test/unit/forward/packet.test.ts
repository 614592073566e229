import { describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../../src/netgraph/addr.js';
import { destinationOffset, ipHeaderError, ipVersion, readDestination, readSource, sourceOffset } from '../../../src/forward/packet.js';

/** ICMP echo request 10.42.0.7 -> 10.42.0.9, 84 bytes, as `ping` sends it. */
function ipv4Echo(): Uint8Array {
  const packet = new Uint8Array(84);
  packet.set([0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 42, 0, 7, 10, 42, 0, 9]);
  packet.set([0x08, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01], 20);
  return packet;
}

/** ICMPv6 echo request fd00:42::7 -> fd00:42::9 with an 8-byte payload. */
function ipv6Echo(): Uint8Array {
  const packet = new Uint8Array(48);
  packet.set([0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x40]);
  packet.set(parseIp('fd00:42::7')!, 8);
  packet.set(parseIp('fd00:42::9')!, 24);
  packet.set([0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01], 40);
  return packet;
}

const out4 = new Uint8Array(4);
const out16 = new Uint8Array(16);

describe('IP header reading', () => {
  it('reads IPv4 source and destination into the reusable 4-byte buffer', () => {
    const packet = ipv4Echo();
    expect(ipVersion(packet)).toBe(4);
    expect(ipHeaderError(packet)).toBeNull();
    expect(destinationOffset(packet)).toBe(16);
    expect(sourceOffset(packet)).toBe(12);
    const dst = readDestination(packet, out4, out16);
    expect(dst).toBe(out4);
    expect(formatIp(dst!)).toBe('10.42.0.9');
    const src = readSource(packet, out4, out16);
    expect(src).toBe(out4);
    expect(formatIp(src!)).toBe('10.42.0.7');
  });

  it('reads IPv6 source and destination into the reusable 16-byte buffer', () => {
    const packet = ipv6Echo();
    expect(ipVersion(packet)).toBe(6);
    expect(ipHeaderError(packet)).toBeNull();
    expect(destinationOffset(packet)).toBe(24);
    expect(sourceOffset(packet)).toBe(8);
    expect(readDestination(packet, out4, out16)).toBe(out16);
    expect(formatIp(out16)).toBe('fd00:42::9');
    expect(readSource(packet, out4, out16)).toBe(out16);
    expect(formatIp(out16)).toBe('fd00:42::7');
  });

  it('accepts IPv4 with options and a header-only packet, and trailing bytes past total length', () => {
    const withOptions = new Uint8Array(28);
    withOptions.set([0x47, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 1, 1, 192, 168, 1, 2, 1, 1, 1, 0]);
    expect(formatIp(readDestination(withOptions, out4, out16)!)).toBe('192.168.1.2');
    const headerOnly = ipv4Echo().slice(0, 20);
    headerOnly[3] = 20;
    expect(ipHeaderError(headerOnly)).toBeNull();
    const padded = new Uint8Array(100);
    padded.set(ipv4Echo());
    expect(ipHeaderError(padded)).toBeNull();
  });

  const malformed: Array<[string, () => Uint8Array, RegExp]> = [
    ['empty', () => new Uint8Array(0), /empty packet/],
    ['version 5', () => Uint8Array.of(0x50, ...new Array<number>(40).fill(0)), /not an IP packet \(version 5\)/],
    ['garbage', () => Uint8Array.from([0xde, 0xad, 0xbe, 0xef]), /version 13/],
    ['IPv4 of 19 bytes', () => ipv4Echo().slice(0, 19), /IPv4 packet shorter than the 20-byte minimum header/],
    ['IPv4 IHL 4', () => Object.assign(ipv4Echo(), { 0: 0x44 }), /IHL\) below 5/],
    ['IPv4 IHL past the end', () => { const p = ipv4Echo().slice(0, 20); p[0] = 0x46; p[3] = 20; return p; }, /IHL\) runs past the end/],
    ['IPv4 total length past the end', () => ipv4Echo().slice(0, 83), /total length runs past the end/],
    ['IPv4 total length below header', () => Object.assign(ipv4Echo(), { 3: 19 }), /total length is smaller than its header/],
    ['IPv6 of 39 bytes', () => ipv6Echo().slice(0, 39), /IPv6 packet shorter than the 40-byte header/],
    ['IPv6 payload past the end', () => ipv6Echo().slice(0, 47), /IPv6 payload length runs past the end/],
  ];
  for (const [label, build, pattern] of malformed) {
    it(`refuses ${label}`, () => {
      const packet = build();
      expect(ipHeaderError(packet)).toMatch(pattern);
      expect(destinationOffset(packet)).toBe(-1);
      expect(sourceOffset(packet)).toBe(-1);
      out4.fill(0xaa);
      out16.fill(0xaa);
      expect(readDestination(packet, out4, out16)).toBeNull();
      expect(readSource(packet, out4, out16)).toBeNull();
      expect(out4.every((b) => b === 0xaa) && out16.every((b) => b === 0xaa)).toBe(true);
    });
  }

  it('never throws on random bytes and reads only from well-formed headers', () => {
    let seed = 12345;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    let read = 0;
    for (let i = 0; i < 3000; i++) {
      const packet = Uint8Array.from({ length: next() % 80 }, next);
      // Bias toward plausible headers so the accepting path is exercised too.
      if (packet.length >= 6 && i % 4 === 0) packet.set([0x45, 0, 0, Math.min(packet.length, 20 + (next() % 40))]);
      if (packet.length >= 6 && i % 4 === 1) packet.set([0x60, 0, 0, 0, 0, next() % 40]);
      const dst = readDestination(packet, out4, out16);
      if (dst !== null) {
        read++;
        const offset = destinationOffset(packet);
        if (!Buffer.from(packet.subarray(offset, offset + dst.length)).equals(dst)) throw new Error(`case ${i}: wrong bytes`);
      }
    }
    expect(read).toBeGreaterThan(50);
  });

  it('refuses address buffers of the wrong size', () => {
    expect(() => readDestination(ipv4Echo(), new Uint8Array(16), new Uint8Array(4))).toThrow(/must be 4 and 16 bytes, got 16 and 4/);
  });
});
