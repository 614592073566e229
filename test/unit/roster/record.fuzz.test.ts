// Fuzzing the membership-record decoder and verifier: records arrive from other nodes, so every
// byte is hostile. Budget and seeds: test/helpers/fuzz.ts; the shares below add up to 1.

import fc from 'fast-check';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, nodeNameProblem } from '../../../src/crypto/identity.js';
import { parseIp } from '../../../src/netgraph/addr.js';
import { decodeRecord, encodeRecord, encodeRecordBody, type RecordFields } from '../../../src/roster/record.js';
import { signRecord, verifyRecord } from '../../../src/roster/signature.js';
import { FUZZ_TIMEOUT_MS, checkLogLine, editsArb, fuzz, mutateBytes } from '../../helpers/fuzz.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MAX_ERROR_CHARS = 600;

let certDer: Uint8Array;
let key: KeyObject;
let admins: Set<string>;
let seeds: Uint8Array[];

const fieldsArb: fc.Arbitrary<RecordFields> = fc
  .record({
    kind: fc.constantFrom('member' as const, 'revoked' as const),
    version: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    network: fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/),
    name: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => nodeNameProblem(s) === null),
    fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
    address: fc.oneof(fc.ipV4(), fc.ipV6()),
    routes: fc.uniqueArray(fc.integer({ min: 0, max: 255 }).map((i) => `10.${i}.0.0/16`), { maxLength: 5 }),
    endpoints: fc.uniqueArray(
      fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
      { maxLength: 3, selector: (e) => e },
    ),
    issuedAt: fc.integer({ min: 0, max: 2 ** 42 }),
    expiry: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
  })
  .map(({ expiry, ...f }) => (expiry === undefined ? f : { ...f, expiresAt: f.issuedAt + expiry }));

beforeAll(async () => {
  const id = await generateIdentity('admin', { now: new Date('2026-01-01T00:00:00Z') });
  certDer = new Uint8Array(new X509Certificate(id.certPem).raw);
  key = createPrivateKey(id.keyPem);
  admins = new Set([id.fingerprint]);
  seeds = fc.sample(fieldsArb, { numRuns: 8, seed: 12 }).map((f) => signRecord({ ...f, expiresAt: undefined }, certDer, key));
});

/** A decodable input must re-encode to itself: one byte string per record. */
function checkDecode(bytes: Uint8Array): void {
  const result = decodeRecord(bytes);
  if (!result.ok) {
    checkLogLine(result.error, MAX_ERROR_CHARS);
    return;
  }
  const { signerCertDer, signerFingerprint: _fp, signature, ...fields } = result.record;
  const again = encodeRecord(encodeRecordBody(fields, signerCertDer), signature);
  if (!Buffer.from(again).equals(Buffer.from(bytes))) throw new Error('decoded record does not re-encode to the same bytes');
}

describe('membership record fuzz', () => {
  it(
    'random bytes never throw',
    () => {
      fuzz('roster record random', 0.3, fc.uint8Array({ maxLength: 800 }), (bytes) => {
        checkDecode(bytes);
      });
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated records never throw, re-encode when they decode, and never verify',
    () => {
      // Mutations that still decode reach the signature check: there must be some, or this tests nothing.
      let decodable = 0;
      fuzz('roster record mutated', 0.4, fc.nat(), editsArb, (pick, edits) => {
        const original = seeds[pick % seeds.length]!;
        const bytes = mutateBytes(original, edits);
        checkDecode(bytes);
        if (decodeRecord(bytes).ok) decodable++;
        const verdict = verifyRecord(bytes, admins, NOW);
        if (verdict.ok && !Buffer.from(bytes).equals(Buffer.from(original))) throw new Error('a changed record verified');
        if (!verdict.ok) checkLogLine(verdict.error, MAX_ERROR_CHARS);
      });
      expect(decodable).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'generated fields round-trip through encode and decode',
    () => {
      fuzz('roster record fields', 0.3, fieldsArb, fc.uint8Array({ minLength: 1, maxLength: 72 }), (fields, signature) => {
        const bytes = encodeRecord(encodeRecordBody(fields, certDer), signature);
        const result = decodeRecord(bytes);
        if (!result.ok) throw new Error(result.error);
        const { signerCertDer: _c, signerFingerprint: _f, signature: _s, ...back } = result.record;
        // Addresses come back in canonical text; everything else exactly as given.
        expect(parseIp(back.address)).toEqual(parseIp(fields.address));
        expect({ ...back, address: '' }).toEqual({ ...fields, address: '' });
        checkDecode(bytes);
      });
    },
    FUZZ_TIMEOUT_MS,
  );
});
