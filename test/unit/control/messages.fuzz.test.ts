// Fuzzing the control-message codec (decodeControlPayload) and the streaming control decoder
// (ControlDecoder) with fast-check: both read bytes straight off a peer's control stream.
// Budget and seeds: test/helpers/fuzz.ts. Each decoder gets FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ControlDecoder } from '../../../src/control/decoder.js';
import {
  MAX_CONTROL_MESSAGE,
  MAX_CONTROL_PAYLOAD,
  decodeControlPayload,
  encodeAnnouncements,
  encodeControlMessage,
  encodeControlPayload,
  type ControlMessage,
} from '../../../src/control/messages.js';
import { concat, prng } from '../../helpers/bytes.js';
import {
  FUZZ_TIMEOUT_MS,
  checkLogLine,
  chunkSizesArb,
  editsArb,
  fuzz,
  logLineProblem,
  mutateBytes,
  randomBytes,
  splitBySizes,
} from '../../helpers/fuzz.js';

const KNOWN_CODES = [0x41, 0x43, 0x44, 0x45, 0x47, 0x48, 0x4a, 0x4b, 0x4e, 0x51, 0x52, 0x57];
/** Longest decoder error: the longest fixed text plus a 255-byte name quoted in it. */
const MAX_ERROR_CHARS = 512;

const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

/** Characters that break log lines or sit on UTF-8 boundaries, mixed into generated wire text. */
const edgeChar = fc.constantFrom('\n', '\r', '\t', '\u0000', '\u001b', '\u007f', '\u0085', '\u2028', '\ufeff', '\uffff', '\u{10ffff}', "'", '"');

/** Wire text: 1..255 bytes of UTF-8 (the 'binary' unit never makes lone surrogates), edge cases included. */
const wireText = fc
  .oneof(
    { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }) },
    { weight: 2, arbitrary: fc.string({ unit: fc.oneof(edgeChar, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 255 }) },
    { weight: 1, arbitrary: fc.constantFrom('\ufeff', '\ufeffcorp', '\u0000', 'x'.repeat(255), '😀'.repeat(63), '10.42.0.7/32', 'fd00::7/128') },
  )
  .filter((text) => utf8Length(text) >= 1 && utf8Length(text) <= 255);

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

const fingerprintArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('hex'));

const unknownCode = fc.integer({ min: 0, max: 0xff }).filter((code) => !KNOWN_CODES.includes(code));

const messageArb: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), nonce: u64 }),
  fc.record({ type: fc.constant('keepalive' as const), time: u64 }),
  fc.constant({ type: 'goodbye' as const }),
  fc.record({ type: fc.constant('withdraw' as const), network: wireText, prefix: wireText }),
  fc.record({
    type: fc.constant('capabilities' as const),
    tokens: fc.array(fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 }), { maxLength: 6 }),
  }),
  fc.record({ type: fc.constant('introduce' as const), fingerprint: fingerprintArb }),
  fc.record({
    type: fc.constant('redeem' as const),
    network: wireText,
    secret: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    address: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })),
  }),
  fc.record({ type: fc.constant('digest' as const), network: wireText, entries: fc.array(fc.record({ fingerprint: fingerprintArb, version: u64 }), { maxLength: 6 }) }),
  fc.record({ type: fc.constant('fetch' as const), network: wireText, fingerprints: fc.array(fingerprintArb, { minLength: 1, maxLength: 6 }) }),
  fc.record({ type: fc.constant('record' as const), record: fc.uint8Array({ minLength: 1, maxLength: 600 }) }),
  fc.record({
    type: fc.constant('endpoint' as const),
    fingerprint: fingerprintArb,
    address: fc.option(fc.record({ host: fc.oneof(fc.ipV4(), fc.ipV6()), port: fc.integer({ min: 1, max: 0xffff }) }), { nil: null }),
  }),
  fc
    .record({
      type: fc.constant('announce' as const),
      network: wireText,
      routes: fc.array(fc.record({ prefix: wireText, metric: fc.integer({ min: 0, max: 0xffff }) }), { minLength: 1, maxLength: 8 }),
    })
    .filter((msg) => encodedLength(msg) <= MAX_CONTROL_PAYLOAD),
  fc.record({
    type: fc.constant('unknown' as const),
    code: unknownCode,
    body: fc.oneof({ weight: 9, arbitrary: fc.uint8Array({ maxLength: 32 }) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: MAX_CONTROL_PAYLOAD - 1 }) }),
  }),
);

function encodedLength(msg: { network: string; routes: { prefix: string }[] }): number {
  return 2 + utf8Length(msg.network) + msg.routes.reduce((n, r) => n + 3 + utf8Length(r.prefix), 0);
}

/**
 * Payload fields as the decoder reads them: a u8-length-prefixed text (its length byte right, or
 * off by a little), a u16, or raw bytes. Sequences of these reach the checks deep in a body.
 */
const fieldBytes = fc.oneof(
  fc.tuple(wireText, fc.constantFrom(0, 0, 0, 0, -1, 1, -256)).map(([text, skew]) => {
    const bytes = Buffer.from(text, 'utf8');
    return concat([Uint8Array.of((bytes.length + skew) & 0xff), bytes]);
  }),
  fc.integer({ min: 0, max: 0xffff }).map((n) => Uint8Array.of(n >> 8, n & 0xff)),
  fc.uint8Array({ minLength: 1, maxLength: 12 }),
);

/** Arbitrary payload bytes whose first byte is usually a known type code, so the bodies get exercised. */
const payloadBytes = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...KNOWN_CODES), fc.uint8Array({ maxLength: 300 })).map(([code, body]) => concat([Uint8Array.of(code), body])),
  },
  {
    weight: 3,
    arbitrary: fc
    .tuple(fc.constantFrom(...KNOWN_CODES), fc.array(fieldBytes, { maxLength: 4 }))
    .map(([code, fields]) => concat([Uint8Array.of(code), ...fields]))
    .filter((payload) => payload.length <= MAX_CONTROL_PAYLOAD),
  },
);

/** Checks an error from either decoder: a bounded, single-line string (it goes into a log line and a close reason). */
function checkError(error: string, input: Uint8Array): void {
  if (typeof error !== 'string') throw new Error(`error is ${typeof error}, not a string`);
  checkLogLine(error, MAX_ERROR_CHARS, `input ${Buffer.from(input).toString('hex').slice(0, 80)}`);
}

/** The payload decoder's contract on any input: a result, never a throw; accepted means canonical. */
function checkPayload(payload: Uint8Array): void {
  const result = decodeControlPayload(payload);
  if (result.ok) {
    // Strict decoding: what is accepted re-encodes to exactly the same bytes.
    if (!Buffer.from(encodeControlPayload(result.msg)).equals(payload)) {
      throw new Error(`accepted payload ${Buffer.from(payload).toString('hex')} does not re-encode to itself`);
    }
  } else {
    checkError(result.error, payload);
  }
}

interface StreamResult {
  messages: ControlMessage[];
  error: string | null;
  maxBuffered: number;
}

/** Feeds chunks, then end(); checks bufferedBytes after every push and that errors are final. */
function decodeStream(chunks: Uint8Array[]): StreamResult {
  const decoder = new ControlDecoder();
  const messages: ControlMessage[] = [];
  let error: string | null = null;
  let maxBuffered = 0;
  for (const chunk of chunks) {
    error = decoder.push(chunk, (m) => messages.push(m));
    maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
    if (decoder.bufferedBytes > MAX_CONTROL_MESSAGE) throw new Error(`decoder holds ${decoder.bufferedBytes} bytes`);
    if (error !== null) break;
  }
  if (error === null) error = decoder.end();
  if (error !== null) {
    // Final: the same error again, nothing delivered.
    const count = messages.length;
    if (decoder.push(Uint8Array.of(0, 1, 0x47), (m) => messages.push(m)) !== error || messages.length !== count) {
      throw new Error('a failed decoder did not stay failed');
    }
  }
  return { messages, error, maxBuffered };
}

/** Stream-decoder contract on any byte stream and chunking: agrees with one-shot decoding, delivers a prefix of the stream. */
function checkStream(stream: Uint8Array, sizes: number[]): StreamResult {
  const whole = decodeStream([stream]);
  const chunked = decodeStream(splitBySizes(stream, sizes));
  const wholeBytes = concat(whole.messages.map(encodeControlMessage));
  const chunkedBytes = concat(chunked.messages.map(encodeControlMessage));
  // The encoding is canonical, so equal bytes mean equal messages.
  if (chunked.error !== whole.error || !Buffer.from(chunkedBytes).equals(wholeBytes)) {
    throw new Error(`chunked decoding differs from one-shot decoding (${chunked.error} vs ${whole.error})`);
  }
  if (!Buffer.from(stream.subarray(0, wholeBytes.length)).equals(wholeBytes)) {
    throw new Error('delivered messages do not re-encode to the start of the stream');
  }
  if (whole.error === null && wholeBytes.length !== stream.length) throw new Error('a clean decode left bytes over');
  if (whole.error !== null) checkError(whole.error, stream);
  return chunked;
}

describe('decodeControlPayload fuzz (fast-check)', () => {
  it(
    'arbitrary payloads: a result, never a throw; accepted payloads are canonical; errors bounded and single-line',
    () => fuzz('control payload: arbitrary', 0.3, payloadBytes, (payload) => checkPayload(payload)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: every valid message decodes to itself',
    () =>
      fuzz('control payload: round trip', 0.3, messageArb, (msg) => {
        const result = decodeControlPayload(encodeControlPayload(msg));
        expect(result).toEqual({ ok: true, msg });
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid payloads (flip, set, insert, delete, duplicate, truncate): typed result or valid decode',
    () =>
      fuzz('control payload: mutation', 0.4, messageArb, editsArb, (msg, edits) => {
        checkPayload(mutateBytes(encodeControlPayload(msg), edits));
      }),
    FUZZ_TIMEOUT_MS,
  );

  it('rejects payloads over the limit without reading them', () => {
    const result = decodeControlPayload(new Uint8Array(MAX_CONTROL_PAYLOAD + 1).fill(0x5a));
    expect(result).toEqual({ ok: false, error: `control message payload is ${MAX_CONTROL_PAYLOAD + 1} bytes (limit ${MAX_CONTROL_PAYLOAD})` });
  });

  // The error for an Announce without routes names the peer's network, and the session logs it
  // as `protocol violation by …: <reason>`: a newline there was a forged log line (payload 41 01 0a).
  it('keeps an Announce error quoting a network name with a newline on one line', () => {
    const result = decodeControlPayload(Uint8Array.of(0x41, 0x01, 0x0a));
    expect(result.ok).toBe(false);
    expect(logLineProblem((result as { error: string }).error, MAX_ERROR_CHARS)).toBeNull();
  });
});

describe('encodeAnnouncements fuzz (fast-check)', () => {
  it(
    'splits any route list into valid messages that decode back to the same routes in order',
    () =>
      fuzz(
        'control payload: announcements split',
        0.02,
        wireText,
        fc.array(fc.record({ prefix: wireText, metric: fc.integer({ min: 0, max: 0xffff }) }), { maxLength: 80 }),
        (network, routes) => {
          const decoded = encodeAnnouncements(network, routes).map((bytes) => {
            if (bytes.length > MAX_CONTROL_MESSAGE) throw new Error(`message of ${bytes.length} bytes`);
            const result = decodeControlPayload(bytes.subarray(2));
            if (!result.ok || result.msg.type !== 'announce' || result.msg.network !== network) throw new Error('bad announce');
            return result.msg.routes;
          });
          expect(decoded.flat()).toEqual(routes);
        },
      ),
    FUZZ_TIMEOUT_MS,
  );
});

describe('ControlDecoder fuzz (fast-check)', () => {
  const messagesArb = fc.array(messageArb, { minLength: 1, maxLength: 6 });
  /** Random bytes, often led by a plausible length field so the decoder gets past the first message. */
  const streamBytes = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc
      .tuple(fc.integer({ min: 0, max: 80 }), fc.constantFrom(...KNOWN_CODES, 0x5a), fc.uint8Array({ maxLength: 120 }))
      .map(([length, code, rest]) => concat([Uint8Array.of(length >> 8, length & 0xff, code), rest])),
  );

  it(
    'arbitrary byte streams in arbitrary chunks: never a throw, same result as one chunk, bounded buffer',
    () => fuzz('control stream: arbitrary', 0.25, streamBytes, chunkSizesArb, (stream, sizes) => void checkStream(stream, sizes)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: valid messages split at random chunk boundaries come out identical, in order',
    () =>
      fuzz('control stream: round trip', 0.25, messagesArb, chunkSizesArb, (messages, sizes) => {
        const result = decodeStream(splitBySizes(concat(messages.map(encodeControlMessage)), sizes));
        expect(result.error).toBeNull();
        expect(result.messages).toEqual(messages);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid streams in random chunks: typed error or valid messages, agreeing with one-shot decoding',
    () =>
      fuzz('control stream: mutation', 0.4, messagesArb, editsArb, chunkSizesArb, (messages, edits, sizes) => {
        checkStream(mutateBytes(concat(messages.map(encodeControlMessage)), edits), sizes);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'a length field is not trusted before its bytes arrive: any claimed length with a few bytes holds only what arrived',
    () =>
      fuzz(
        'control stream: claimed length',
        0.1,
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 64 }),
        chunkSizesArb,
        (claimed, body, sizes) => {
          const stream = concat([Uint8Array.of(claimed >> 8, claimed & 0xff), body]);
          const decoder = new ControlDecoder();
          let error: string | null = null;
          for (const chunk of splitBySizes(stream, sizes)) {
            error = decoder.push(chunk, () => undefined);
            if (error !== null) break;
          }
          if (claimed === 0 || claimed > MAX_CONTROL_PAYLOAD) {
            // Refused from the length field alone, before any body byte is held.
            expect(error).toBe(`control message length ${claimed} is outside 1..${MAX_CONTROL_PAYLOAD}`);
            expect(decoder.bufferedBytes).toBeLessThanOrEqual(2);
          } else if (body.length < claimed) {
            expect(error).toBeNull();
            expect(decoder.bufferedBytes).toBe(stream.length);
            expect(decoder.end()).toMatch(/^control stream ended inside a message/);
          }
        },
      ),
    FUZZ_TIMEOUT_MS,
  );

  it('a length prefix claiming 65535 followed by 10 bytes is refused, holding nothing', () => {
    const decoder = new ControlDecoder();
    expect(decoder.push(concat([Uint8Array.of(0xff, 0xff), new Uint8Array(10)]), () => undefined)).toMatch(/length 65535 is outside/);
    expect(decoder.bufferedBytes).toBe(0);
    const largest = new ControlDecoder();
    expect(largest.push(concat([Uint8Array.of(0x10, 0x00, 0x5a), new Uint8Array(9)]), () => undefined)).toBeNull();
    expect(largest.bufferedBytes).toBe(12);
  });

  it('10 MB in small chunks, valid and random, never holds more than one maximum message', () => {
    const rand = prng(0x10bb);
    const TOTAL = 10 * 1024 * 1024;
    // Valid traffic of mostly large messages, so a split message is buffered nearly all the time.
    const parts: Uint8Array[] = [];
    let size = 0;
    while (size < TOTAL) {
      const bodyLength = rand() < 0.7 ? MAX_CONTROL_PAYLOAD - 1 - Math.floor(rand() * 64) : Math.floor(rand() * 200);
      const msg = encodeControlMessage({ type: 'unknown', code: 0x5a, body: randomBytes(rand, bodyLength) });
      parts.push(msg);
      size += msg.length;
    }
    const valid = concat(parts);
    // Random bytes: each time the decoder fails, a new one takes the rest, as a new connection would.
    const random = randomBytes(rand, TOTAL);
    for (const [label, stream] of [['valid', valid], ['random', random]] as const) {
      let decoder = new ControlDecoder();
      let delivered = 0;
      let failures = 0;
      let maxBuffered = 0;
      for (let pos = 0; pos < stream.length; ) {
        const chunkSize = 1 + Math.floor(rand() * 64);
        const error = decoder.push(stream.subarray(pos, pos + chunkSize), () => delivered++);
        pos += chunkSize;
        maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
        if (decoder.bufferedBytes > MAX_CONTROL_MESSAGE) throw new Error(`${label}: decoder holds ${decoder.bufferedBytes} bytes at ${pos}`);
        if (error !== null) {
          checkError(error, stream.subarray(Math.max(0, pos - 16), pos));
          failures++;
          decoder = new ControlDecoder();
        }
      }
      if (label === 'valid') {
        expect(failures).toBe(0);
        expect(delivered).toBe(parts.length);
        expect(maxBuffered).toBeGreaterThan(MAX_CONTROL_PAYLOAD);
      } else {
        expect(failures).toBeGreaterThan(1000);
      }
      expect(maxBuffered).toBeLessThanOrEqual(MAX_CONTROL_MESSAGE);
    }
  }, 60_000);
});
