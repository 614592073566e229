// Fuzzing the IP header parser (ipHeaderError, readDestination, readSource) with fast-check: it
// reads every packet a peer sends and every packet from the TUN. It is not a streaming decoder,
// so there is no buffer to bound; the properties are no throw, agreement with a reference model
// of the kernel's length checks, and addresses read from the right bytes.
// Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { destinationOffset, ipHeaderError, ipVersion, readDestination, readSource, sourceOffset } from '../../../src/forward/packet.js';
import { FUZZ_TIMEOUT_MS, checkLogLine, editsArb, fuzz, mutateBytes } from '../../helpers/fuzz.js';

const MAX_ERROR_CHARS = 100;

/** The rules of packet.ts, written out independently: true when addresses may be read. */
function referenceAccepts(p: Uint8Array): boolean {
  if (p.length === 0) return false;
  const version = p[0]! >> 4;
  if (version === 4) {
    const ihl = (p[0]! & 0x0f) * 4;
    const total = p.length >= 4 ? p[2]! * 256 + p[3]! : -1;
    return p.length >= 20 && ihl >= 20 && ihl <= p.length && total >= ihl && total <= p.length;
  }
  if (version === 6) return p.length >= 40 && 40 + (p[4]! * 256 + p[5]!) <= p.length;
  return false;
}

/** Checks every reader on one packet against each other and the reference model. */
function checkPacket(packet: Uint8Array): void {
  const copy = Uint8Array.from(packet);
  const error = ipHeaderError(packet);
  const accepts = referenceAccepts(packet);
  if ((error === null) !== accepts) throw new Error(`ipHeaderError says ${JSON.stringify(error)}, the reference model ${accepts ? 'accepts' : 'refuses'}`);
  if (error !== null) checkLogLine(error, MAX_ERROR_CHARS);

  const out4 = new Uint8Array(4).fill(0xee);
  const out16 = new Uint8Array(16).fill(0xee);
  const destination = readDestination(packet, out4, out16);
  const dOffset = destinationOffset(packet);
  const source = readSource(packet, out4.slice(), out16.slice());
  const sOffset = sourceOffset(packet);
  if (error !== null) {
    if (destination !== null || source !== null || dOffset !== -1 || sOffset !== -1) throw new Error('a malformed packet gave an address');
    if (!out4.every((b) => b === 0xee) || !out16.every((b) => b === 0xee)) throw new Error('a malformed packet wrote into the address buffers');
  } else {
    const v4 = ipVersion(packet) === 4;
    const size = v4 ? 4 : 16;
    const [wantDestination, wantSource] = v4 ? [16, 12] : [24, 8];
    if (dOffset !== wantDestination || sOffset !== wantSource) throw new Error(`offsets ${dOffset}/${sOffset}`);
    if (destination !== (v4 ? out4 : out16)) throw new Error('destination not returned in the buffer of its family');
    if (!Buffer.from(destination).equals(packet.subarray(wantDestination, wantDestination + size))) throw new Error('wrong destination bytes');
    if (source === null || !Buffer.from(source).equals(packet.subarray(wantSource, wantSource + size))) throw new Error('wrong source bytes');
  }
  if (!Buffer.from(packet).equals(copy)) throw new Error('the parser changed the packet');
}

/** Valid IPv4 packets: any IHL 5..15, total length between the header and the buffer, trailing bytes allowed. */
const ipv4Packet = fc
  .tuple(fc.integer({ min: 5, max: 15 }), fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 16 }), fc.uint8Array({ minLength: 140, maxLength: 140 }))
  .map(([ihl, payload, trailing, fill]) => {
    const total = ihl * 4 + payload;
    const packet = new Uint8Array(total + trailing);
    packet.set(fill.subarray(0, Math.min(fill.length, packet.length)));
    packet[0] = 0x40 | ihl;
    packet[2] = total >> 8;
    packet[3] = total & 0xff;
    return packet;
  });

/** Valid IPv6 packets: payload length within the buffer. */
const ipv6Packet = fc
  .tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 16 }), fc.uint8Array({ minLength: 160, maxLength: 160 }))
  .map(([payload, trailing, fill]) => {
    const packet = new Uint8Array(40 + payload + trailing);
    packet.set(fill.subarray(0, Math.min(fill.length, packet.length)));
    packet[0] = 0x60 | (packet[0]! & 0x0f);
    packet[4] = payload >> 8;
    packet[5] = payload & 0xff;
    return packet;
  });

const validPacket = fc.oneof(ipv4Packet, ipv6Packet);

/** Arbitrary bytes, usually with a 4 or 6 version nibble so the length checks are reached. */
const arbitraryPacket = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc
    .tuple(fc.constantFrom(0x40, 0x60, 0x40, 0x60, 0x00, 0xf0), fc.nat(15), fc.uint8Array({ maxLength: 80 }))
    .map(([version, low, rest]) => Uint8Array.of(version | low, ...rest)),
);

describe('IP header parser fuzz (fast-check)', () => {
  it(
    'arbitrary bytes: never a throw, agrees with the reference model, short single-line errors',
    () => fuzz('ip header: arbitrary', 0.35, arbitraryPacket, (packet) => checkPacket(packet)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'valid IPv4 and IPv6 packets are accepted and their addresses read from the right bytes',
    () =>
      fuzz('ip header: valid', 0.25, validPacket, (packet) => {
        if (ipHeaderError(packet) !== null) throw new Error(`refused a valid packet: ${ipHeaderError(packet)}`);
        checkPacket(packet);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid packets: a typed refusal or a correct read, as the reference model says',
    () => fuzz('ip header: mutation', 0.4, validPacket, editsArb, (packet, edits) => checkPacket(mutateBytes(packet, edits))),
    FUZZ_TIMEOUT_MS,
  );

  it('refuses wrongly sized address buffers with a typed error, not a silent write', () => {
    const packet = new Uint8Array(20);
    packet[0] = 0x45;
    packet[3] = 20;
    expect(() => readDestination(packet, new Uint8Array(3), new Uint8Array(16))).toThrow(/address buffers must be 4 and 16 bytes/);
  });
});
