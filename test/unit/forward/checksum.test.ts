import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PROTOCOL_TCP,
  PROTOCOL_UDP,
  foldChecksum,
  internetChecksum,
  ipv4HeaderChecksum,
  pseudoHeaderSum,
  sumBytes,
  transportChecksumValid,
} from '../../../src/forward/checksum.js';
import { FLAG, buildTcp, naivePseudoSum, naiveSum, patternBytes, timestampOption } from '../../helpers/tcp-packets.js';

describe('Internet checksum (RFC 1071)', () => {
  it('sums the RFC 1071 section 3 example to 0xddf2', () => {
    const bytes = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(sumBytes(bytes, 0, bytes.length)).toBe(0xddf2);
    expect(internetChecksum(bytes, 0, bytes.length)).toBe(0x220d);
  });

  it('computes a textbook IPv4 header checksum (0xb861)', () => {
    const header = Uint8Array.from([0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]);
    expect(ipv4HeaderChecksum(header, 0, 20)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(sumBytes(header, 0, 20)).toBe(0xffff);
  });

  it('pads an odd last byte with zero and treats the range start as even', () => {
    const bytes = Uint8Array.of(0x99, 0x12, 0x34, 0x56);
    expect(sumBytes(bytes, 1, 4)).toBe(0x1234 + 0x5600);
    expect(sumBytes(bytes, 3, 4)).toBe(0x5600);
    expect(sumBytes(bytes, 2, 2, 0x1234)).toBe(0x1234);
  });

  it('folds with end-around carry and keeps 0xffff apart from 0', () => {
    expect(foldChecksum(0)).toBe(0);
    expect(foldChecksum(0xffff)).toBe(0xffff);
    expect(foldChecksum(0x10000)).toBe(1);
    expect(foldChecksum(0x1fffe)).toBe(0xffff);
    // 2^16 is 1 modulo 0xffff, so 2^40 folds to 2^8.
    expect(foldChecksum(2 ** 40 + 5)).toBe(256 + 5);
  });

  it('does not lose precision on 64 KiB of 0xff bytes plus a large initial sum', () => {
    const bytes = new Uint8Array(65535).fill(0xff);
    expect(sumBytes(bytes, 0, bytes.length, 0xffff)).toBe(naiveSum(bytes, 0xffff));
  });

  it('agrees with the naive sum on random ranges, alignments and initial sums', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffff }), (bytes, a, b, initial) => {
        const start = a % (bytes.length + 1);
        const end = start + (b % (bytes.length - start + 1));
        expect(sumBytes(bytes, start, end, initial)).toBe(naiveSum(bytes.subarray(start, end), initial));
      }),
      { seed: 1071, numRuns: 2000 },
    );
  });

  it('agrees with the naive sum on a long random buffer', () => {
    const bytes = patternBytes(65001, 7);
    expect(sumBytes(bytes, 3, bytes.length)).toBe(naiveSum(bytes.subarray(3)));
  });
});

describe('pseudo-header sums', () => {
  it('matches the naive IPv4 and IPv6 pseudo-headers for TCP and UDP', () => {
    for (const v6 of [false, true]) {
      const packet = buildTcp({ v6, payload: patternBytes(33, 3) });
      for (const protocol of [PROTOCOL_TCP, PROTOCOL_UDP]) {
        for (const length of [0, 20, 1480, 65535]) {
          expect(pseudoHeaderSum(packet, 0, v6, protocol, length)).toBe(naivePseudoSum(packet, protocol, length));
        }
      }
    }
  });

  it('adds both halves of an IPv6 length above 64 KiB (the pseudo-header length is 32 bits)', () => {
    const packet = buildTcp({ v6: true });
    expect(pseudoHeaderSum(packet, 0, true, PROTOCOL_TCP, 0x12345)).toBe(naivePseudoSum(packet, PROTOCOL_TCP, 0x12345));
  });

  it('reads the addresses relative to ipStart', () => {
    const packet = buildTcp({ v6: false });
    const shifted = new Uint8Array(packet.length + 7);
    shifted.set(packet, 7);
    expect(pseudoHeaderSum(shifted, 7, false, PROTOCOL_TCP, 40)).toBe(naivePseudoSum(packet, PROTOCOL_TCP, 40));
  });

  it('validates a TCP checksum and notices any single bit flip', () => {
    for (const v6 of [false, true]) {
      const packet = buildTcp({ v6, flags: FLAG.ACK | FLAG.PSH, options: timestampOption(5), payload: patternBytes(101, 9) });
      const ip = v6 ? 40 : 20;
      expect(transportChecksumValid(packet, 0, v6, PROTOCOL_TCP, ip, packet.length)).toBe(true);
      for (const at of [ip, ip + 17, ip + 32, packet.length - 1]) {
        packet[at]! ^= 0x04;
        expect(transportChecksumValid(packet, 0, v6, PROTOCOL_TCP, ip, packet.length)).toBe(false);
        packet[at]! ^= 0x04;
      }
    }
  });
});
