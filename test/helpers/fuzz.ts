// Shared by the *.fuzz.test.ts files: run counts, seeds, mutations and chunkings for fast-check.
//
// Budget: every decoder gets FUZZ_RUNS generated inputs in total, split over its properties by
// `share` (the shares of one decoder add up to at least 1). `npm test` uses the default, 10 000;
// `npm run fuzz` sets FUZZ_RUNS=1000000 and runs only the fuzz files.
//
// Seeds are fixed per property (a hash of its name), so a run is reproducible and `npm test`
// cannot flake; FUZZ_SEED=<int> explores other seeds. On failure fast-check prints the
// counterexample (shrunk), the seed and the path.

import fc from 'fast-check';

function envInt(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name}=${text} is not an integer`);
  return value;
}

/** Generated inputs per decoder, across all of its properties. */
export const FUZZ_RUNS = Math.max(1, envInt('FUZZ_RUNS') ?? 10_000);
const SEED_OFFSET = envInt('FUZZ_SEED') ?? 0;

/**
 * A single input slower than this is a failure: the decoders are linear in their input, so a
 * slow one means a hang or a super-linear path. Generous, for a loaded 2-core CI machine.
 */
export const SLOW_INPUT_MS = 2000;

/** FNV-1a of the property name: a stable seed per property. */
function seedOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return (hash ^ SEED_OFFSET) | 0;
}

/** How many runs a property with this share of its decoder's budget gets. */
export function runsFor(share: number): number {
  return Math.max(1, Math.ceil(FUZZ_RUNS * share));
}

/**
 * fc.assert with a fixed seed and `share` of the budget. The predicate also fails when one input
 * takes longer than SLOW_INPUT_MS.
 */
export function fuzz<Ts extends [unknown, ...unknown[]]>(
  name: string,
  share: number,
  ...args: [...arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> }, predicate: (...values: Ts) => void]
): void {
  const predicate = args[args.length - 1] as (...values: Ts) => void;
  const arbitraries = args.slice(0, -1) as { [K in keyof Ts]: fc.Arbitrary<Ts[K]> };
  const timed = (...values: Ts): void => {
    const started = performance.now();
    predicate(...values);
    const elapsed = performance.now() - started;
    if (elapsed > SLOW_INPUT_MS) throw new Error(`one input took ${Math.round(elapsed)} ms (limit ${SLOW_INPUT_MS} ms): a hang or a super-linear path`);
  };
  fc.assert(fc.property(...arbitraries, timed), { seed: seedOf(name), numRuns: runsFor(share) });
}

/** vitest's timeout for a fuzz test: generous, and off when FUZZ_RUNS is raised (`npm run fuzz` also passes --testTimeout=0). */
export const FUZZ_TIMEOUT_MS = FUZZ_RUNS > 10_000 ? 0 : 60_000;

// ---- mutations ----

export type Edit =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; values: number[] }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'duplicate'; at: number; count: number }
  | { kind: 'truncate'; at: number };

/** Byte values that tend to sit on boundaries: zero lengths, max lengths, type codes, UTF-8 lead bytes. */
const interestingByte = fc.oneof(
  fc.constantFrom(0x00, 0x01, 0x02, 0x09, 0x0a, 0x0d, 0x10, 0x20, 0x22, 0x7f, 0x80, 0xc0, 0xe0, 0xef, 0xf0, 0xfe, 0xff),
  fc.integer({ min: 0, max: 0xff }),
);

/** One edit at a position given as a raw number, reduced modulo the input length when applied (so it shrinks well). */
export const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: interestingByte }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), values: fc.array(interestingByte, { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** One to four edits. */
export const editsArb = fc.array(editArb, { minLength: 1, maxLength: 4 });

/** Applies edits to a sequence of units (bytes, or a string's code points). */
function applyEditsTo<T>(input: readonly T[], edits: readonly Edit[], unit: (value: number) => T, flip: (unit: T, bit: number) => T): T[] {
  const out = [...input];
  for (const edit of edits) {
    const at = edit.at % (out.length + 1);
    switch (edit.kind) {
      case 'set':
        if (at < out.length) out[at] = unit(edit.value);
        else out.push(unit(edit.value));
        break;
      case 'flip':
        if (at < out.length) out[at] = flip(out[at]!, edit.bit);
        break;
      case 'insert':
        out.splice(at, 0, ...edit.values.map(unit));
        break;
      case 'delete':
        out.splice(at, edit.count);
        break;
      case 'duplicate':
        out.splice(at, 0, ...out.slice(at, at + edit.count));
        break;
      case 'truncate':
        out.length = at;
        break;
    }
  }
  return out;
}

/** `bytes` with the edits applied (same rules as for text), as a fresh array; copies slices, so large inputs stay cheap. */
export function mutateBytes(bytes: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let out: Uint8Array = Uint8Array.from(bytes);
  const join = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
  for (const edit of edits) {
    const at = edit.at % (out.length + 1);
    switch (edit.kind) {
      case 'set':
        if (at < out.length) out[at] = edit.value;
        else out = join(out, Uint8Array.of(edit.value));
        break;
      case 'flip':
        if (at < out.length) out[at] = out[at]! ^ (1 << edit.bit);
        break;
      case 'insert':
        out = join(out.subarray(0, at), Uint8Array.from(edit.values), out.subarray(at));
        break;
      case 'delete':
        out = join(out.subarray(0, at), out.subarray(at + edit.count));
        break;
      case 'duplicate':
        out = join(out.subarray(0, at + edit.count), out.subarray(at));
        break;
      case 'truncate':
        out = out.slice(0, at);
        break;
    }
  }
  return out;
}

/** Characters that matter to the text formats fuzzed here (TOML, JSON, base64url, invites). */
const TEXT_UNITS = [
  '"', "'", '\\', '\n', '\r', '\t', ' ', '#', '[', ']', '{', '}', '=', '.', ',', ':', '/', '-', '_', '+',
  'a', 'Z', '0', '9', 'e', 'x', 'u', 'n', 't', 'f', '\u0000', '\u007f', 'é', '网', '😀', '\ufeff', '\u2028',
];

/** `text` with the edits applied to its code points; inserted characters come from a syntax-heavy alphabet. */
export function mutateText(text: string, edits: readonly Edit[]): string {
  const unit = (value: number): string => TEXT_UNITS[value % TEXT_UNITS.length]!;
  // A bit flip of a code point; surrogates (which would leave invalid UTF-16) become U+FFFD.
  const flip = (ch: string, bit: number): string => {
    const code = ch.codePointAt(0)! ^ (1 << bit);
    return code >= 0xd800 && code <= 0xdfff ? '\ufffd' : String.fromCodePoint(code);
  };
  return applyEditsTo(Array.from(text), edits, unit, flip).join('');
}

// ---- chunkings ----

/** Chunk sizes for splitting a stream: mostly small, sometimes empty, sometimes large. */
export const chunkSizesArb = fc.array(
  fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }) }),
  { maxLength: 40 },
);

/** Splits `bytes` into views of the given sizes, then the rest as one chunk (always at least one chunk). */
export function splitBySizes(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let pos = 0;
  for (const size of sizes) {
    if (pos >= bytes.length) break;
    chunks.push(bytes.subarray(pos, Math.min(bytes.length, pos + size)));
    pos += size;
  }
  if (pos < bytes.length || chunks.length === 0) chunks.push(bytes.subarray(Math.min(pos, bytes.length)));
  return chunks;
}

// ---- error text ----

/** Why an error text would break a log line, or null: it must be non-empty, single-line and at most `maxLength` characters. */
export function logLineProblem(error: string, maxLength: number): string | null {
  if (error.length === 0) return 'empty error';
  if (/[\r\n\u2028\u2029]/.test(error)) return `error is not single-line: ${JSON.stringify(error.slice(0, 200))}`;
  if (error.length > maxLength) return `error is ${error.length} characters (limit ${maxLength}): ${JSON.stringify(error.slice(0, 200))}…`;
  return null;
}

/** Throws when `error` breaks a log line (see logLineProblem). A plain throw: this runs for every input. */
export function checkLogLine(error: string, maxLength: number, context = ''): void {
  const problem = logLineProblem(error, maxLength);
  if (problem !== null) throw new Error(context ? `${context}: ${problem}` : problem);
}

/** Deterministic bytes for the multi-megabyte feeds (fast-check values that large would be slow to generate and shrink). */
export function randomBytes(rand: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const word = Math.floor(rand() * 2 ** 32);
    out[i] = word & 0xff;
    if (i + 1 < length) out[i + 1] = (word >>> 8) & 0xff;
    if (i + 2 < length) out[i + 2] = (word >>> 16) & 0xff;
    if (i + 3 < length) out[i + 3] = word >>> 24;
  }
  return out;
}
