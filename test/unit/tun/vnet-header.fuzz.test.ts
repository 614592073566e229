// Fuzzing the virtio_net_hdr codec with fast-check: it reads the 10 bytes the kernel puts in
// front of every TUN read, and its fields decide where the segmenter reads and writes. The
// properties: only VnetHeaderError comes out, with a short single-line message; acceptance
// agrees with a reference model written out here; whatever decodes re-encodes to the same bytes;
// encode never writes outside its 10 bytes.
// Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, it } from 'vitest';
import { VNET_HEADER_LENGTH, VnetHeaderError, decodeVnetHeader, encodeVnetHeader, type GsoType, type VnetHeader } from '../../../src/tun/vnet-header.js';
import { FUZZ_TIMEOUT_MS, checkLogLine, editsArb, fuzz, mutateBytes } from '../../helpers/fuzz.js';

const MAX_ERROR_CHARS = 120;

/** The acceptance rules, written out independently: true when the kernel-facing checks pass. */
function referenceAccepts(b: Uint8Array, packetLength: number, littleEndian: boolean): boolean {
  if (b.length < 10) return false;
  const u16 = (at: number): number => (littleEndian ? b[at]! + b[at + 1]! * 256 : b[at]! * 256 + b[at + 1]!);
  const flags = b[0]!;
  const type = b[1]! & 0x7f;
  const ecn = b[1]! >= 0x80;
  if (flags > 3 || flags === 3) return false;
  if (![0, 1, 4, 5].includes(type)) return false;
  if (ecn && type !== 1 && type !== 4) return false;
  if (type !== 0 && u16(4) === 0) return false;
  if (u16(2) > packetLength) return false;
  if (flags === 1 && u16(6) + u16(8) + 2 > packetLength) return false;
  return true;
}

function checkDecode(bytes: Uint8Array, packetLength: number, littleEndian: boolean): void {
  const copy = Uint8Array.from(bytes);
  let header: VnetHeader | null = null;
  try {
    header = decodeVnetHeader(bytes, 0, packetLength, littleEndian);
  } catch (error) {
    if (!(error instanceof VnetHeaderError)) throw error;
    checkLogLine(error.message, MAX_ERROR_CHARS);
  }
  const accepts = referenceAccepts(bytes, packetLength, littleEndian);
  if ((header !== null) !== accepts) throw new Error(`decode ${header ? 'accepts' : 'refuses'}, the reference model ${accepts ? 'accepts' : 'refuses'}`);
  if (!Buffer.from(bytes).equals(copy)) throw new Error('decode changed its input');
  if (header === null) return;
  const out = new Uint8Array(VNET_HEADER_LENGTH + 4).fill(0xee);
  encodeVnetHeader(header, out, 2, littleEndian);
  if (!Buffer.from(out.subarray(2, 12)).equals(bytes.subarray(0, 10))) throw new Error('decoded header does not re-encode to the same bytes');
  if (out[0] !== 0xee || out[1] !== 0xee || out[12] !== 0xee || out[13] !== 0xee) throw new Error('encode wrote outside its 10 bytes');
}

/** Headers the kernel would plausibly write, for mutation. */
const validHeader = fc
  .record({
    flags: fc.constantFrom(0, 1, 2),
    type: fc.constantFrom(0, 1, 4, 5),
    ecn: fc.boolean(),
    hdrLen: fc.integer({ min: 0, max: 120 }),
    gsoSize: fc.integer({ min: 1, max: 65535 }),
    csumStart: fc.constantFrom(20, 40, 60),
    csumOffset: fc.constantFrom(6, 16),
  })
  .map((h) => {
    const b = new Uint8Array(10);
    b[0] = h.flags;
    b[1] = h.type | (h.ecn && (h.type === 1 || h.type === 4) ? 0x80 : 0);
    const le = (at: number, v: number): void => {
      b[at] = v & 0xff;
      b[at + 1] = v >> 8;
    };
    le(2, h.hdrLen);
    le(4, h.type === 0 ? 0 : h.gsoSize);
    le(6, h.csumStart);
    le(8, h.csumOffset);
    return b;
  });

const packetLengthArb = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 70_000 }));

const typedHeader: fc.Arbitrary<VnetHeader> = fc.record({
  needsChecksum: fc.boolean(),
  dataValid: fc.boolean(),
  gsoType: fc.constantFrom<GsoType>('none', 'tcpv4', 'tcpv6', 'udp_l4'),
  ecn: fc.boolean(),
  hdrLen: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: -2, max: 0x10001 })),
  gsoSize: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: -2, max: 0x10001 })),
  csumStart: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.double({ noNaN: false })),
  csumOffset: fc.integer({ min: 0, max: 0xffff }),
});

describe('virtio_net_hdr codec fuzz (fast-check)', () => {
  it(
    'arbitrary bytes and packet lengths: only typed errors, agreeing with the reference model',
    () =>
      fuzz('vnet header: arbitrary', 0.35, fc.uint8Array({ minLength: 0, maxLength: 12 }), packetLengthArb, fc.boolean(), (bytes, length, le) =>
        checkDecode(bytes, length, le),
      ),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated kernel headers: a typed refusal or a header that re-encodes exactly',
    () =>
      fuzz('vnet header: mutation', 0.45, validHeader, editsArb, packetLengthArb, (bytes, edits, length) => checkDecode(mutateBytes(bytes, edits), length, true)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'typed headers: encode refuses (typed) or round-trips through decode, writing only its 10 bytes',
    () =>
      fuzz('vnet header: encode', 0.2, typedHeader, fc.boolean(), (header, le) => {
        const out = new Uint8Array(VNET_HEADER_LENGTH + 2).fill(0xee);
        try {
          encodeVnetHeader(header, out, 1, le);
        } catch (error) {
          if (!(error instanceof VnetHeaderError)) throw error;
          checkLogLine(error.message, MAX_ERROR_CHARS);
          if (!out.every((b) => b === 0xee)) throw new Error('a refused encode wrote bytes');
          return;
        }
        if (out[0] !== 0xee || out[11] !== 0xee) throw new Error('encode wrote outside its 10 bytes');
        const back = decodeVnetHeader(out, 1, 0x30000, le);
        if (JSON.stringify(back) !== JSON.stringify(header)) throw new Error(`round trip gave ${JSON.stringify(back)}`);
      }),
    FUZZ_TIMEOUT_MS,
  );
});
