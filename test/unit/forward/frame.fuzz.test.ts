// Fuzzing the raw-stream frame decoder (FrameDecoder) with fast-check: it reads every data-plane
// byte a peer sends. Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameEncoder, MAX_FRAME_LENGTH, MAX_PACKET_LENGTH, encodeFrame } from '../../../src/forward/frame.js';
import { concat, prng } from '../../helpers/bytes.js';
import { FUZZ_TIMEOUT_MS, checkLogLine, chunkSizesArb, editsArb, fuzz, mutateBytes, randomBytes, splitBySizes } from '../../helpers/fuzz.js';

interface Frame {
  network: string;
  packet: Uint8Array;
  /** 0: an ordinary frame. */
  gsoSize: number;
}

/** The decoder's errors are fixed texts with numbers; they go into log lines. */
const MAX_ERROR_CHARS = 200;
/** FrameDecoder's first allocation for a split frame (frame.ts INITIAL_PENDING_CAPACITY). */
const INITIAL_PENDING_CAPACITY = 2048;

const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

/** The reuse buffer's size: what a peer makes this decoder hold, whatever bufferedBytes says. Private, read for this check only. */
function retainedCapacity(decoder: FrameDecoder): number {
  return (decoder as unknown as { pending: Uint8Array }).pending.length;
}

const networkName = fc
  .oneof(
    { weight: 6, arbitrary: fc.constantFrom('corp', 'home', 'n', 'netzwerk-é', '\ufeffx') },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }) },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(255), '网'.repeat(85)) },
  )
  .filter((name) => utf8Length(name) >= 1 && utf8Length(name) <= 255);

function patterned(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Packets are mostly small; some span many chunks, up to the 65535-byte maximum. */
const packetArb = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.nat(255)).map(([n, seed]) => patterned(n, seed)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 60_000, max: MAX_PACKET_LENGTH }), fc.nat(255)).map(([n, seed]) => patterned(n, seed)) },
);

// One frame in five carries a super-segment (PROTOCOL.md#v-super-segments): the same frame behind a 4-byte prefix.
const gsoArb = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xffff }) });
const frameArb: fc.Arbitrary<Frame> = fc.record({ network: networkName, packet: packetArb, gsoSize: gsoArb });
const framesArb = fc.array(frameArb, { minLength: 1, maxLength: 5 });

const sameFrame = (a: Frame, b: Frame): boolean => a.network === b.network && a.gsoSize === b.gsoSize && Buffer.from(a.packet).equals(b.packet);

const encodeFrames = (frames: Frame[]): Uint8Array => concat(frames.map((f) => new FrameEncoder(f.network).encode(f.packet, f.gsoSize)));

/** Random bytes, and headers whose fields are plausible but often wrong (zero lengths, bad UTF-8, lengths past the data). */
const streamBytes = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc
    .tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 8 }), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 120 }))
    .map(([nameLength, name, packetLength, rest]) =>
      concat([Uint8Array.of(nameLength), name, Uint8Array.of(packetLength >> 8, packetLength & 0xff), rest]),
    ),
  // Extension prefixes: kind 1 (super-segment) and others, gso sizes 0 and not.
  fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 120 }))
    .map(([kind, gso, rest]) => concat([Uint8Array.of(0, kind, gso >> 8, gso & 0xff), rest])),
);

interface StreamResult {
  frames: Frame[];
  error: string | null;
}

/** Feeds chunks, then end(); checks the buffer bound after every push and that errors are final. */
function decodeStream(chunks: Uint8Array[]): StreamResult {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let error: string | null = null;
  for (const chunk of chunks) {
    // The packet is a view valid only during the callback: keep a copy.
    error = decoder.push(chunk, (network, packet, gsoSize) => frames.push({ network, packet: packet.slice(), gsoSize }));
    if (decoder.bufferedBytes > MAX_FRAME_LENGTH) throw new Error(`decoder holds ${decoder.bufferedBytes} bytes`);
    if (retainedCapacity(decoder) > MAX_FRAME_LENGTH) throw new Error(`decoder allocated ${retainedCapacity(decoder)} bytes`);
    if (error !== null) break;
  }
  if (error === null) error = decoder.end();
  if (error !== null) {
    const count = frames.length;
    if (decoder.push(encodeFrame('corp', Uint8Array.of(1)), (network, packet, gsoSize) => frames.push({ network, packet, gsoSize })) !== error || frames.length !== count) {
      throw new Error('a failed decoder did not stay failed');
    }
    checkLogLine(error, MAX_ERROR_CHARS);
  }
  return { frames, error };
}

/** Decoder contract on any stream and chunking: agrees with one-shot decoding and delivers a prefix of the stream. */
function checkStream(stream: Uint8Array, sizes: number[]): void {
  const whole = decodeStream([stream]);
  const chunked = decodeStream(splitBySizes(stream, sizes));
  const wholeBytes = encodeFrames(whole.frames);
  if (chunked.error !== whole.error || !Buffer.from(encodeFrames(chunked.frames)).equals(wholeBytes)) {
    throw new Error(`chunked decoding differs from one-shot decoding (${chunked.error} vs ${whole.error})`);
  }
  if (!Buffer.from(stream.subarray(0, wholeBytes.length)).equals(wholeBytes)) {
    throw new Error('delivered frames do not re-encode to the start of the stream');
  }
  if (whole.error === null && wholeBytes.length !== stream.length) throw new Error('a clean decode left bytes over');
}

describe('FrameDecoder fuzz (fast-check)', () => {
  it(
    'arbitrary byte streams in arbitrary chunks: never a throw, same result as one chunk, bounded buffer',
    () => fuzz('frame stream: arbitrary', 0.25, streamBytes, chunkSizesArb, (stream, sizes) => checkStream(stream, sizes)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: valid frames split at random chunk boundaries come out identical, in order',
    () =>
      fuzz('frame stream: round trip', 0.25, framesArb, chunkSizesArb, (frames, sizes) => {
        const result = decodeStream(splitBySizes(encodeFrames(frames), sizes));
        expect(result.error).toBeNull();
        // Plain comparisons: expect().toEqual walks a 64 KiB packet element by element.
        const same = result.frames.length === frames.length && frames.every((f, i) => sameFrame(f, result.frames[i]!));
        if (!same) throw new Error('the decoded frames differ from the encoded ones');
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid streams in random chunks: typed error or valid frames, agreeing with one-shot decoding',
    () =>
      fuzz('frame stream: mutation', 0.35, framesArb, editsArb, chunkSizesArb, (frames, edits, sizes) => {
        checkStream(mutateBytes(encodeFrames(frames), edits), sizes);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'a length field is not trusted before its bytes arrive: a header claiming up to 65535 bytes with fewer behind it holds only what arrived',
    () =>
      fuzz(
        'frame stream: claimed length',
        0.15,
        networkName,
        fc.integer({ min: 1, max: MAX_PACKET_LENGTH }),
        fc.integer({ min: 0, max: 5000 }),
        chunkSizesArb,
        (network, claimed, sent, sizes) => {
          const name = Buffer.from(network, 'utf8');
          const body = patterned(Math.min(sent, claimed - 1), claimed);
          const stream = concat([Uint8Array.of(name.length), name, Uint8Array.of(claimed >> 8, claimed & 0xff), body]);
          const decoder = new FrameDecoder();
          for (const chunk of splitBySizes(stream, sizes)) {
            if (decoder.push(chunk, () => undefined) !== null) throw new Error('an incomplete frame was refused');
          }
          expect(decoder.bufferedBytes).toBe(stream.length);
          // The buffer grows with what arrived (doubling), never to the claimed size up front.
          expect(retainedCapacity(decoder)).toBeLessThanOrEqual(Math.max(INITIAL_PENDING_CAPACITY, 2 * stream.length));
          expect(decoder.end()).toMatch(/^truncated frame: raw stream ended after \d+ bytes of a frame that needs at least \d+$/);
        },
      ),
    FUZZ_TIMEOUT_MS,
  );

  it('a header claiming 65535 bytes followed by 10 bytes holds 17 bytes in a 2 KiB buffer', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(concat([Uint8Array.of(4), Buffer.from('corp'), Uint8Array.of(0xff, 0xff), new Uint8Array(10)]), () => undefined)).toBeNull();
    expect(decoder.bufferedBytes).toBe(17);
    expect(retainedCapacity(decoder)).toBe(INITIAL_PENDING_CAPACITY);
    // The largest possible frame, split: held whole, and no more.
    const largest = new FrameEncoder('x'.repeat(255)).encode(patterned(MAX_PACKET_LENGTH, 1), 1448);
    expect(largest.length).toBe(MAX_FRAME_LENGTH);
    const big = new FrameDecoder();
    expect(big.push(largest.subarray(0, MAX_FRAME_LENGTH - 1), () => undefined)).toBeNull();
    expect(big.bufferedBytes).toBe(MAX_FRAME_LENGTH - 1);
    expect(retainedCapacity(big)).toBeLessThanOrEqual(MAX_FRAME_LENGTH);
    let delivered = 0;
    expect(big.push(largest.subarray(MAX_FRAME_LENGTH - 1), () => delivered++)).toBeNull();
    expect(delivered).toBe(1);
    expect(big.bufferedBytes).toBe(0);
  });

  it('10 MB in small chunks, valid and random, never holds more than one maximum frame', () => {
    const rand = prng(0xf7a3e);
    const TOTAL = 10 * 1024 * 1024;
    const names = ['corp', 'home', 'x'.repeat(255)];
    // Valid traffic with many large packets, so a split frame is buffered most of the time.
    const parts: Uint8Array[] = [];
    let size = 0;
    while (size < TOTAL) {
      const length = rand() < 0.3 ? MAX_PACKET_LENGTH - Math.floor(rand() * 100) : 1 + Math.floor(rand() * 1500);
      const frame = encodeFrame(names[Math.floor(rand() * names.length)]!, randomBytes(rand, length));
      parts.push(frame);
      size += frame.length;
    }
    const valid = concat(parts);
    // Random bytes: each time the decoder fails, a new one takes the rest, as a new raw stream would.
    const random = randomBytes(rand, TOTAL);
    for (const [label, stream] of [['valid', valid], ['random', random]] as const) {
      let decoder = new FrameDecoder();
      let delivered = 0;
      let failures = 0;
      let maxBuffered = 0;
      for (let pos = 0; pos < stream.length; ) {
        const chunkSize = 1 + Math.floor(rand() * (rand() < 0.9 ? 64 : 1500));
        const error = decoder.push(stream.subarray(pos, pos + chunkSize), () => delivered++);
        pos += chunkSize;
        maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
        if (decoder.bufferedBytes > MAX_FRAME_LENGTH || retainedCapacity(decoder) > MAX_FRAME_LENGTH) {
          throw new Error(`${label}: decoder holds ${decoder.bufferedBytes} bytes in ${retainedCapacity(decoder)} at ${pos}`);
        }
        if (error !== null) {
          checkLogLine(error, MAX_ERROR_CHARS);
          failures++;
          decoder = new FrameDecoder();
        }
      }
      if (label === 'valid') {
        expect(failures).toBe(0);
        expect(delivered).toBe(parts.length);
        expect(maxBuffered).toBeGreaterThan(MAX_PACKET_LENGTH - 100);
      } else {
        expect(failures).toBeGreaterThan(100);
      }
    }
  }, 60_000);
});
