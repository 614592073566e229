// Fuzzing the control socket's request handling with fast-check: the line splitter
// (RequestLineSplitter, which bounds what a client can make the daemon hold) and the request
// parser (parseRequestLine). Every byte a local client sends goes through both.
// Budget and seeds: test/helpers/fuzz.ts; each gets FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_REQUEST_BYTES, RequestLineSplitter, parseRequestLine } from '../../../src/control/socket.js';
import { concat, prng } from '../../helpers/bytes.js';
import { FUZZ_TIMEOUT_MS, chunkSizesArb, editsArb, fuzz, mutateBytes, randomBytes, splitBySizes } from '../../helpers/fuzz.js';

/** The error goes back to the client as {"status":"error","error":…}; however long the line, the error stays short. */
const MAX_ERROR_CHARS = 200;

/**
 * What parseRequestLine promises for any line (the splitter never passes one holding '\n'): a
 * request object with a string cmd, or a short error whose response is one line. The error
 * itself may carry a '\r' or U+2028 from the line, since V8's JSON.parse message quotes the
 * start of its input; that is harmless, as it travels JSON-escaped and is not logged.
 */
function checkRequestLine(line: Buffer): void {
  const result = parseRequestLine(line);
  if (result.ok) {
    const { request } = result;
    if (typeof request !== 'object' || request === null || Array.isArray(request) || typeof request.cmd !== 'string') {
      throw new Error(`accepted something that is not a request: ${JSON.stringify(request)}`);
    }
    return;
  }
  const { error } = result;
  const context = `line ${JSON.stringify(line.toString('utf8').slice(0, 80))}`;
  if (typeof error !== 'string' || error.length === 0 || error.length > MAX_ERROR_CHARS) {
    throw new Error(`${context}: error of ${String(error?.length)} characters: ${JSON.stringify(String(error).slice(0, 200))}`);
  }
  if (error.includes('\n')) throw new Error(`${context}: error holds a newline`);
  const response = JSON.stringify({ status: 'error', error });
  if (/[\r\n]/.test(response)) throw new Error(`${context}: error response is not one line`);
}

const withoutNewlines = (bytes: Uint8Array): Buffer => Buffer.from(bytes.map((b) => (b === 0x0a ? 0x0d : b)));

const jsonText = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).map((o) => JSON.stringify(o)),
  fc
    .tuple(fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.jsonValue({ maxDepth: 1 })), fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }))
    .map(([cmd, rest]) => JSON.stringify({ ...rest, cmd })),
);

/** Arbitrary bytes, JSON of every shape, and JSON with junk around it. */
const lineArb = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map(withoutNewlines),
  fc.string({ unit: 'binary', maxLength: 60 }).map((text) => withoutNewlines(Buffer.from(text, 'utf8'))),
  jsonText.map((text) => Buffer.from(text, 'utf8')),
  fc
    .tuple(fc.constantFrom('', ' ', '\t', '\r', '\ufeff', '\u00a0', '\u2028'), jsonText, fc.constantFrom('', ' ', '\r', '\r\r', 'x', '}', '\u0000'))
    .map(([before, text, after]) => withoutNewlines(Buffer.from(before + text + after, 'utf8'))),
);

/** Valid requests: a string cmd and extra fields of any JSON type. */
const requestArb = fc
  .tuple(
    fc.oneof(fc.constantFrom('status', 'peers', 'routes', 'reload', 'goodbye'), fc.string({ unit: 'binary', maxLength: 16 })),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  )
  .map(([cmd, rest]) => ({ ...rest, cmd }));

describe('parseRequestLine fuzz (fast-check)', () => {
  it(
    'arbitrary lines: never a throw; a request object with a string cmd, or a short error that answers on one line',
    () => fuzz('request line: arbitrary', 0.35, lineArb, (line) => checkRequestLine(line)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: any request serialised as JSON, with or without a trailing \\r and spaces, parses back to the same object',
    () =>
      fuzz('request line: round trip', 0.3, requestArb, fc.constantFrom('', '\r', ' ', ' \t\r'), (request, suffix) => {
        const text = JSON.stringify(request);
        const result = parseRequestLine(Buffer.from(text + suffix, 'utf8'));
        if (!result.ok) throw new Error(`refused ${text}: ${result.error}`);
        // Compared as JSON: keys such as "__proto__" make deep equality of the objects unreliable.
        expect(JSON.stringify(result.request)).toBe(text);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid request lines: a request or a short error that answers on one line, never a throw',
    () =>
      fuzz('request line: mutation', 0.35, requestArb, editsArb, (request, edits) => {
        checkRequestLine(withoutNewlines(mutateBytes(Buffer.from(JSON.stringify(request), 'utf8'), edits)));
      }),
    FUZZ_TIMEOUT_MS,
  );

  it('a 64 KiB line of deeply nested JSON is answered, not a stack overflow', () => {
    const depth = (MAX_REQUEST_BYTES - 20) / 2;
    const nested = `{"cmd":"status","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    expect(parseRequestLine(Buffer.from(nested)).ok).toBe(true);
    const unclosed = parseRequestLine(Buffer.from('['.repeat(MAX_REQUEST_BYTES)));
    expect(unclosed).toEqual({ ok: false, error: 'malformed JSON request: Unexpected end of JSON input' });
  });
});

/** One-shot reference for the splitter: the lines before the first too-long one, and whether it refused. */
function referenceSplit(stream: Uint8Array, limit: number): { lines: Buffer[]; refused: boolean } {
  const parts = Buffer.from(stream).toString('latin1').split('\n');
  const rest = parts.pop()!;
  const lines: Buffer[] = [];
  for (const part of parts) {
    if (part.length > limit) return { lines, refused: true };
    lines.push(Buffer.from(part, 'latin1'));
  }
  return { lines, refused: rest.length > limit };
}

/** Feeds the chunks to a splitter, checking its buffer after each push, and compares with the reference. */
function checkSplit(stream: Uint8Array, sizes: number[], limit: number): { lines: Buffer[]; refused: boolean } {
  const splitter = new RequestLineSplitter(limit);
  const lines: Buffer[] = [];
  let refused = false;
  for (const chunk of splitBySizes(stream, sizes)) {
    if (!splitter.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), lines)) {
      refused = true;
      break;
    }
    if (splitter.bufferedBytes > limit) throw new Error(`splitter holds ${splitter.bufferedBytes} bytes (limit ${limit})`);
  }
  const reference = referenceSplit(stream, limit);
  if (refused !== reference.refused) throw new Error(`splitter ${refused ? 'refused' : 'accepted'}, the reference did not`);
  if (lines.length !== reference.lines.length || lines.some((line, i) => !line.equals(reference.lines[i]!))) {
    throw new Error('the splitter gave other lines than a one-shot split');
  }
  return reference;
}

describe('RequestLineSplitter fuzz (fast-check)', () => {
  const limitArb = fc.integer({ min: 1, max: 40 });
  /** Bytes with many newlines, so lines of every length around the limit occur. */
  const streamArb = fc.array(fc.oneof(fc.constant(0x0a), fc.integer({ min: 0, max: 255 })), { maxLength: 200 }).map((bytes) => Uint8Array.from(bytes));
  const linesArb = fc.array(fc.uint8Array({ maxLength: 40 }).map((bytes) => bytes.map((b) => (b === 0x0a ? 0x20 : b))), { maxLength: 10 });

  it(
    'arbitrary streams in arbitrary chunks: the same lines as a one-shot split, at most the limit buffered',
    () => fuzz('request splitter: arbitrary', 0.4, streamArb, chunkSizesArb, limitArb, (stream, sizes, limit) => void checkSplit(stream, sizes, limit)),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: lines within the limit, joined by newlines and split at random boundaries, come out identical',
    () =>
      fuzz('request splitter: round trip', 0.3, linesArb, chunkSizesArb, (lines, sizes) => {
        const stream = concat(lines.flatMap((line) => [line, Uint8Array.of(0x0a)]));
        const result = checkSplit(stream, sizes, 40);
        expect(result.refused).toBe(false);
        expect(result.lines.map((line) => line.toString('hex'))).toEqual(lines.map((line) => Buffer.from(line).toString('hex')));
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated streams of valid lines: agree with the one-shot split',
    () =>
      fuzz('request splitter: mutation', 0.3, linesArb, editsArb, chunkSizesArb, limitArb, (lines, edits, sizes, limit) => {
        checkSplit(mutateBytes(concat(lines.flatMap((line) => [line, Uint8Array.of(0x0a)])), edits), sizes, limit);
      }),
    FUZZ_TIMEOUT_MS,
  );

  it('at the real limit: a 64 KiB line passes, one byte more is refused before it is buffered', () => {
    const splitter = new RequestLineSplitter();
    const lines: Buffer[] = [];
    expect(splitter.push(Buffer.alloc(MAX_REQUEST_BYTES, 0x61), lines)).toBe(true);
    expect(splitter.bufferedBytes).toBe(MAX_REQUEST_BYTES);
    expect(splitter.push(Buffer.from('\n'), lines)).toBe(true);
    expect(lines.map((line) => line.length)).toEqual([MAX_REQUEST_BYTES]);
    expect(splitter.bufferedBytes).toBe(0);
    expect(splitter.push(Buffer.alloc(MAX_REQUEST_BYTES, 0x61), lines)).toBe(true);
    expect(splitter.push(Buffer.from('a'), lines)).toBe(false);
    expect(splitter.bufferedBytes).toBe(MAX_REQUEST_BYTES);
  });

  it('10 MB in small chunks, with and without newlines, never holds more than 64 KiB', () => {
    const rand = prng(0x50c7);
    const TOTAL = 10 * 1024 * 1024;
    const random = randomBytes(rand, TOTAL);
    const noNewlines = random.map((b) => (b === 0x0a ? 0x0b : b));
    for (const [label, stream] of [['random', random], ['no newlines', noNewlines]] as const) {
      let splitter = new RequestLineSplitter();
      let refusals = 0;
      let maxBuffered = 0;
      let lines: Buffer[] = [];
      for (let pos = 0; pos < stream.length; ) {
        const chunkSize = 1 + Math.floor(rand() * (rand() < 0.9 ? 64 : 4096));
        const chunk = Buffer.from(stream.buffer, stream.byteOffset + pos, Math.min(chunkSize, stream.length - pos));
        pos += chunkSize;
        const accepted = splitter.push(chunk, lines);
        // The connection answers (and drops) lines as they come; keep none here.
        lines = [];
        maxBuffered = Math.max(maxBuffered, splitter.bufferedBytes);
        if (splitter.bufferedBytes > MAX_REQUEST_BYTES) throw new Error(`${label}: splitter holds ${splitter.bufferedBytes} bytes`);
        if (!accepted) {
          refusals++;
          splitter = new RequestLineSplitter();
        }
      }
      if (label === 'random') expect(refusals).toBe(0);
      else expect(refusals).toBeGreaterThanOrEqual(Math.floor(TOTAL / (MAX_REQUEST_BYTES + 4096)));
      expect(maxBuffered).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    }
  }, 60_000);
});
