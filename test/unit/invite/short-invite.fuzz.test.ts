// Fuzzing decodeShortInvite with fast-check: a short invite is pasted from chat or mail, so every
// character is untrusted. Its contract: it never throws; a refusal is one bounded line; what it
// accepts re-encodes to exactly the text given (strict, canonical decoding). Mutated text mostly
// stops at the checksum, so one property recomputes the checksum to reach the layout checks
// behind it. Budget and seeds: test/helpers/fuzz.ts.

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_SHORT_INVITE_CHARS,
  SHORT_INVITE_PREFIX,
  decodeShortInvite,
  encodeShortInvite,
  type ShortInviteFields,
} from '../../../src/invite/short-invite.js';
import { maskBytes, type Prefix } from '../../../src/netgraph/addr.js';
import { FUZZ_TIMEOUT_MS, checkLogLine, editsArb, fuzz, mutateBytes, mutateText } from '../../helpers/fuzz.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);
const MAX_ERROR_CHARS = 400;

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const hostArb = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => `${labels.join('.')}.example`).filter((h) => h.length <= 63),
);
const prefixArb: fc.Arbitrary<Prefix> = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 })).map(([b, length]) => ({ family: 4 as const, bytes: maskBytes(b, length), length })),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 })).map(([b, length]) => ({ family: 6 as const, bytes: maskBytes(b, length), length })),
);
const fieldsArb: fc.Arbitrary<ShortInviteFields> = fc.record({
  endpoint: fc.record({ host: hostArb, port: fc.integer({ min: 1, max: 65535 }) }),
  fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
  network: fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/),
  // Up to the 63 the layout allows, so some draws pass the 200-character bound and must be refused.
  name: fc.stringMatching(/^[A-Za-z0-9_.-]{1,63}$/),
  prefix: prefixArb,
  expiresAt: fc.integer({ min: NOW_S + 1, max: 0xffff_ffff }),
  secret: fc.uint8Array({ minLength: 16, maxLength: 16 }),
});

/** A few fixed valid invites to mutate. */
const samples = fc.sample(fieldsArb, { numRuns: 16, seed: 12 }).map((f) => encodeShortInvite(f));

/** The decoder's contract on any text. */
function check(text: string): void {
  let result: ReturnType<typeof decodeShortInvite>;
  try {
    result = decodeShortInvite(text, NOW);
  } catch (err) {
    throw new Error(`decodeShortInvite threw ${String(err)} on ${JSON.stringify(text)}`);
  }
  if (result.ok) {
    const again = encodeShortInvite(result.invite);
    if (again !== text.trim()) throw new Error(`accepted ${JSON.stringify(text)} re-encodes to ${again}`);
  } else {
    if (result.code !== 'invite.invalid' && result.code !== 'invite.expired') throw new Error(`unknown code ${String(result.code)}`);
    checkLogLine(result.message, MAX_ERROR_CHARS, `input ${JSON.stringify(text.slice(0, 80))}`);
  }
}

/** `payload` with its checksum made right, as text: the layout checks see it. */
function checksummed(payload: Uint8Array): string {
  const body = Buffer.from(payload);
  if (body.length >= 4) createHash('sha256').update(body.subarray(4)).digest().copy(body, 0, 0, 4);
  return SHORT_INVITE_PREFIX + body.toString('base64url');
}

describe('decodeShortInvite fuzz', () => {
  it(
    'round-trips every valid invite that fits, and refuses to encode one that does not',
    () => {
      fuzz('short-invite round trip', 0.2, fieldsArb, (fields) => {
        let text: string;
        try {
          text = encodeShortInvite(fields);
        } catch (err) {
          if (!(err instanceof Error) || !/over the 200/.test(err.message)) throw err;
          return;
        }
        expect(text.length).toBeLessThanOrEqual(MAX_SHORT_INVITE_CHARS);
        const r = decodeShortInvite(text, NOW);
        if (!r.ok) throw new Error(r.message);
        expect(encodeShortInvite(r.invite)).toBe(text);
      });
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'never throws on arbitrary text',
    () => {
      fuzz('short-invite arbitrary text', 0.2, fc.oneof(fc.string({ maxLength: 260 }), fc.string({ maxLength: 200 }).map((s) => SHORT_INVITE_PREFIX + s)), check);
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'never throws on, and never reads other contents from, mutated invites',
    () => {
      fuzz('short-invite mutated text', 0.3, fc.constantFrom(...samples), editsArb, (text, edits) => check(mutateText(text, edits)));
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'never throws on mutated payloads under a valid checksum (the layout checks)',
    () => {
      const payloads = samples.map((s) => new Uint8Array(Buffer.from(s.slice(SHORT_INVITE_PREFIX.length), 'base64url')));
      fuzz(
        'short-invite mutated payload',
        0.3,
        fc.oneof(
          fc.tuple(fc.constantFrom(...payloads), editsArb).map(([p, edits]) => mutateBytes(p, edits)),
          fc.uint8Array({ maxLength: 150 }),
        ),
        (payload) => check(checksummed(payload)),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
