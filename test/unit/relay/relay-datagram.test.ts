// The relay tag in front of every relayed QUIC packet: exact bytes, refusals, and a fuzz of the
// decoder, which reads DATAGRAM frames straight off any peer's session.
// Budget and seeds for the fuzz: test/helpers/fuzz.ts.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RELAY_FROM, RELAY_HEADER_BYTES, RELAY_TO, decodeRelayDatagram, encodeRelayDatagram } from '../../../src/relay/relay-datagram.js';
import { FUZZ_TIMEOUT_MS, editsArb, fuzz, mutateBytes } from '../../helpers/fuzz.js';

// Bytes 0x00..0x1f: a shifted or truncated fingerprint shows.
const FP_BYTES = Array.from({ length: 32 }, (_, i) => i);
const FP = Buffer.from(FP_BYTES).toString('hex');
const PACKET = [0xc3, 0x00, 0x00, 0x00, 0x01, 0x42];

describe('relay datagram layout', () => {
  it('is kind, 32-byte fingerprint, then the packet untouched', () => {
    expect(RELAY_TO).toBe(0x01);
    expect(RELAY_FROM).toBe(0x02);
    expect(RELAY_HEADER_BYTES).toBe(33);
    expect(Array.from(encodeRelayDatagram(RELAY_TO, FP, Uint8Array.from(PACKET)))).toEqual([0x01, ...FP_BYTES, ...PACKET]);
    expect(Array.from(encodeRelayDatagram(RELAY_FROM, FP, Uint8Array.from(PACKET)))).toEqual([0x02, ...FP_BYTES, ...PACKET]);
  });

  it('takes the fingerprint as hex or as raw bytes with the same result', () => {
    const packet = Uint8Array.from(PACKET);
    expect(encodeRelayDatagram(RELAY_FROM, Uint8Array.from(FP_BYTES), packet)).toEqual(encodeRelayDatagram(RELAY_FROM, FP, packet));
  });

  it('copies the packet, so the caller may reuse its buffer', () => {
    const packet = Uint8Array.from(PACKET);
    const datagram = encodeRelayDatagram(RELAY_TO, FP, packet);
    packet.fill(0);
    expect(Array.from(datagram.subarray(RELAY_HEADER_BYTES))).toEqual(PACKET);
  });

  it('refuses a fingerprint that is not 64 lowercase hex digits (a caller bug)', () => {
    expect(() => encodeRelayDatagram(RELAY_TO, 'A'.repeat(64), Uint8Array.of(1))).toThrow(/not a SHA-256 fingerprint/);
    expect(() => encodeRelayDatagram(RELAY_TO, 'a'.repeat(63), Uint8Array.of(1))).toThrow(/not a SHA-256 fingerprint/);
  });
});

describe('decodeRelayDatagram', () => {
  it('decodes both kinds, the packet as a view into the datagram (no copy on the hot path)', () => {
    for (const kind of [RELAY_TO, RELAY_FROM] as const) {
      const data = Uint8Array.from([kind, ...FP_BYTES, ...PACKET]);
      const decoded = decodeRelayDatagram(data);
      expect(decoded).toEqual({ kind, fingerprint: FP, packet: Uint8Array.from(PACKET) });
      expect(decoded!.packet.buffer).toBe(data.buffer);
      expect(decoded!.packet.byteOffset).toBe(RELAY_HEADER_BYTES);
    }
  });

  it('reads a datagram that is itself a view at an offset into a larger buffer', () => {
    const framed = Uint8Array.from([0xee, 0xee, RELAY_FROM, ...FP_BYTES, ...PACKET, 0xee]);
    const decoded = decodeRelayDatagram(framed.subarray(2, framed.length - 1));
    expect(decoded).toEqual({ kind: RELAY_FROM, fingerprint: FP, packet: Uint8Array.from(PACKET) });
  });

  it('accepts a one-byte packet, the shortest there is', () => {
    expect(decodeRelayDatagram(Uint8Array.from([RELAY_TO, ...FP_BYTES, 7]))?.packet).toEqual(Uint8Array.of(7));
  });

  const refused: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['a kind byte alone', Uint8Array.of(RELAY_TO)],
    ['a fingerprint cut short', Uint8Array.from([RELAY_TO, ...FP_BYTES.slice(0, 31)])],
    ['a header with no packet', Uint8Array.from([RELAY_FROM, ...FP_BYTES])],
    ['kind 0x00', Uint8Array.from([0x00, ...FP_BYTES, ...PACKET])],
    ['kind 0x03', Uint8Array.from([0x03, ...FP_BYTES, ...PACKET])],
    ['kind 0xff', Uint8Array.from([0xff, ...FP_BYTES, ...PACKET])],
    // A bare QUIC long-header packet sent without the tag must not be read as one.
    ['a QUIC packet without the tag', Uint8Array.from([0xc3, ...FP_BYTES, ...PACKET])],
  ];
  for (const [label, data] of refused) {
    it(`refuses ${label}`, () => expect(decodeRelayDatagram(data)).toBeNull());
  }
});

describe('decodeRelayDatagram fuzz', () => {
  /** Any bytes, valid datagrams, and valid datagrams with a few edits (kind flips, truncations). */
  const datagramArb = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    fc
      .tuple(fc.constantFrom(RELAY_TO, RELAY_FROM), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 60 }))
      .map(([kind, fp, packet]) => Uint8Array.from([kind, ...fp, ...packet])),
    fc
      .tuple(fc.constantFrom(RELAY_TO, RELAY_FROM), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 60 }), editsArb)
      .map(([kind, fp, packet, edits]) => mutateBytes(Uint8Array.from([kind, ...fp, ...packet]), edits)),
  );

  it(
    'never throws, accepts exactly the well-formed datagrams, and what it accepts re-encodes to the same bytes',
    () => {
      fuzz('relay datagram decode', 1, datagramArb, (data) => {
        const copy = Uint8Array.from(data);
        const decoded = decodeRelayDatagram(data);
        const wellFormed = data.length > RELAY_HEADER_BYTES && (data[0] === RELAY_TO || data[0] === RELAY_FROM);
        if ((decoded !== null) !== wellFormed) throw new Error(`${Buffer.from(data).toString('hex')}: decoded ${decoded !== null}, expected ${wellFormed}`);
        if (!Buffer.from(data).equals(copy)) throw new Error('decode changed its input');
        if (decoded === null) return;
        const again = encodeRelayDatagram(decoded.kind, decoded.fingerprint, decoded.packet);
        if (!Buffer.from(again).equals(data)) throw new Error(`${Buffer.from(data).toString('hex')} re-encodes to ${Buffer.from(again).toString('hex')}`);
      });
    },
    FUZZ_TIMEOUT_MS,
  );
});
