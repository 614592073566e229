// Fuzzing the GSO segmenter with fast-check: it takes what the TUN hands over (a virtio_net_hdr
// and a super-segment) and writes up to thousands of packets into a caller's buffer. The
// properties: only VnetHeaderError / SegmentError come out; the input is never changed; every
// packet written lies inside the output buffer, after outOffset, without overlap, and nothing
// outside them is touched (a typed array drops writes past its end silently, so the packets
// themselves are checked too); each GSO packet has correct lengths and checksums by the naive
// reference, and together they carry exactly the super-segment's payload; a refusal writes nothing.
// Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, it } from 'vitest';
import { SegmentError, TcpSegmenter } from '../../../src/forward/segment.js';
import { VNET_HEADER_LENGTH, VnetHeaderError, decodeVnetHeader, encodeVnetHeader, type VnetHeader } from '../../../src/tun/vnet-header.js';
import { FUZZ_TIMEOUT_MS, checkLogLine, editsArb, fuzz, mutateBytes } from '../../helpers/fuzz.js';
import { FLAG, buildSuperSegment, ipHeaderLength, naiveSum, naiveTcpProblem, patternBytes, timestampOption } from '../../helpers/tcp-packets.js';

const MAX_ERROR_CHARS = 160;
const CANARY = 0xa5;

/** Splits one TUN read (vnet header + packet) into a canary-filled buffer and checks every property. */
function checkRead(read: Uint8Array, segmenter: TcpSegmenter, outSize: number, outOffset: number, gap: number): void {
  const copy = Uint8Array.from(read);
  const out = new Uint8Array(outSize).fill(CANARY);
  let header: VnetHeader;
  let count: number;
  const packet = read.subarray(Math.min(VNET_HEADER_LENGTH, read.length));
  try {
    header = decodeVnetHeader(read);
    count = segmenter.split(packet, header, out, outOffset, gap);
  } catch (error) {
    if (!(error instanceof VnetHeaderError || error instanceof SegmentError)) throw error;
    checkLogLine(error.message, MAX_ERROR_CHARS);
    if (!out.every((b) => b === CANARY)) throw new Error('a refused packet wrote into the output');
    if (!Buffer.from(read).equals(copy)) throw new Error('the input was changed');
    return;
  }
  if (!Buffer.from(read).equals(copy)) throw new Error('the input was changed');
  if (count < 1 || count > segmenter.maxSegments) throw new Error(`split returned ${count}`);
  const inside = new Uint8Array(outSize);
  let previousEnd = outOffset;
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const start = segmenter.offsets[i]!;
    const end = start + segmenter.lengths[i]!;
    if (start < previousEnd + gap || end > outSize || end <= start) throw new Error(`segment ${i} at ${start}..${end} escapes or overlaps`);
    inside.fill(1, start, end);
    previousEnd = end;
    const segment = out.subarray(start, end);
    if (header.gsoType === 'none') {
      if (segment.length !== packet.length) throw new Error('a non-GSO packet changed length');
      if (header.needsChecksum) {
        // Only the checksum field may differ, and it holds the complement of the sum from
        // csumStart with the partial sum in place (skb_checksum_help; 0 stored as 0xffff).
        const at = header.csumStart + header.csumOffset;
        for (let j = 0; j < packet.length; j++) if ((j < at || j > at + 1) && segment[j] !== packet[j]) throw new Error(`byte ${j} changed`);
        const want = ~naiveSum(packet.subarray(header.csumStart)) & 0xffff || 0xffff;
        if (segment[at]! * 256 + segment[at + 1]! !== want) throw new Error(`completed checksum ${segment[at]! * 256 + segment[at + 1]!}, want ${want}`);
      } else if (!Buffer.from(segment).equals(packet)) {
        throw new Error('a non-GSO packet was changed');
      }
      continue;
    }
    const problem = naiveTcpProblem(segment);
    if (problem !== null) throw new Error(`segment ${i}: ${problem}`);
    const ip = ipHeaderLength(segment);
    payloads.push(segment.subarray(ip + (segment[ip + 12]! >> 4) * 4));
  }
  for (let j = 0; j < outSize; j++) if (inside[j] === 0 && out[j] !== CANARY) throw new Error(`byte ${j} outside every segment was written`);
  if (header.gsoType !== 'none') {
    const ip = ipHeaderLength(packet);
    const original = packet.subarray(ip + (packet[ip + 12]! >> 4) * 4);
    if (!Buffer.concat(payloads).equals(original)) throw new Error('segment payloads are not the super-segment payload');
  }
}

/** TUN reads the kernel would plausibly produce: a TSO super-segment or a NEEDS_CSUM packet. */
const validRead = fc
  .record({
    v6: fc.boolean(),
    payload: fc.integer({ min: 0, max: 3000 }),
    gsoSize: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 500, max: 1500 })),
    timestamps: fc.boolean(),
    ipOptions: fc.constantFrom(0, 4, 8),
    flags: fc.constantFrom(FLAG.ACK, FLAG.ACK | FLAG.PSH, FLAG.ACK | FLAG.FIN | FLAG.CWR, FLAG.ACK | FLAG.PSH | FLAG.ECE),
    gso: fc.boolean(),
    seed: fc.integer(),
  })
  .map((r) => {
    const { packet, header } = buildSuperSegment(
      {
        v6: r.v6,
        payload: patternBytes(r.payload, r.seed),
        options: r.timestamps ? timestampOption(r.seed) : undefined,
        ipOptions: new Uint8Array(r.ipOptions).fill(1),
        flags: r.flags,
        seq: r.seed >>> 0,
      },
      r.gsoSize,
    );
    const used: VnetHeader = r.gso ? header : { ...header, gsoType: 'none', ecn: false, gsoSize: 0 };
    const read = new Uint8Array(VNET_HEADER_LENGTH + packet.length);
    encodeVnetHeader(used, read, 0);
    read.set(packet, VNET_HEADER_LENGTH);
    return read;
  });

const segmenter = new TcpSegmenter(256);

describe('GSO segmenter fuzz (fast-check)', () => {
  it(
    'arbitrary reads: only typed errors, nothing written outside the segments',
    () =>
      fuzz(
        'segment: arbitrary',
        0.2,
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.tuple(fc.constantFrom(0, 1), fc.constantFrom(1, 4, 0x81), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.constantFrom(0x45, 0x46, 0x60), fc.uint8Array({ maxLength: 150 })).map(
            ([flags, type, fields, version, rest]) => Uint8Array.of(flags, type, ...fields, version, ...rest),
          ),
        ),
        (read) => checkRead(read, segmenter, 4000, 0, 0),
      ),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated super-segments and headers: a typed refusal, or valid packets carrying the payload',
    () =>
      fuzz('segment: mutation', 0.4, validRead, editsArb, fc.nat(16), fc.nat(8), (read, edits, outOffset, gap) =>
        checkRead(mutateBytes(read, edits), segmenter, 3 * read.length + 256 * (gap + 120) + outOffset, outOffset, gap),
      ),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'in-place byte edits (lengths mostly intact, so deeper paths are reached): the same properties',
    () =>
      fuzz('segment: in-place edits', 0.25, validRead, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }), (read, sets) => {
        const edited = Uint8Array.from(read);
        for (const [at, value] of sets) edited[at % 80] = value;
        checkRead(edited, segmenter, 3 * read.length + 256 * 120, 0, 0);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'valid reads into output buffers of any size: split, or refuse with output-too-small and write nothing',
    () => fuzz('segment: output size', 0.15, validRead, fc.nat(9000), (read, outSize) => checkRead(read, segmenter, outSize, 0, 0)),
    FUZZ_TIMEOUT_MS,
  );
});
