// The membership control bodies (J, D, Q, R): each one round-trips through the body codec and
// the whole-message codec, and every malformed body is refused with a message rather than
// misread, since D/Q/R come from any roster peer and J from a stranger.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ControlDecoder } from '../../../src/control/decoder.js';
import { decodeControlPayload, encodeControlMessage, type ControlMessage } from '../../../src/control/messages.js';
import {
  MAX_DIGEST_ENTRIES,
  MAX_FETCH_ENTRIES,
  MAX_RECORD_MESSAGE_BYTES,
  SECRET_BYTES,
  decodeDigestBody,
  decodeFetchBody,
  decodeRecordMessageBody,
  decodeRedeemBody,
  digestBodies,
  encodeDigestBody,
  encodeFetchBody,
  encodeRecordMessageBody,
  encodeRedeemBody,
  fetchBodies,
  type DigestBody,
} from '../../../src/control/roster-messages.js';
import { concatBytes } from '../../helpers/unit-fakes.js';

const SECRET = Uint8Array.from({ length: SECRET_BYTES }, (_, i) => i + 1);
const V4 = Uint8Array.of(10, 42, 0, 7);
const V6 = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i));
const fp = (i: number): string => i.toString(16).padStart(2, '0').repeat(32);

/** Every control message in `bytes`, or the decoder's error. */
function decodeAll(bytes: Uint8Array): { messages: ControlMessage[]; error: string | null } {
  const messages: ControlMessage[] = [];
  const error = new ControlDecoder().push(bytes, (m) => messages.push(m));
  return { messages, error };
}

/** A body: u8 n | network | rest. */
function withName(network: string | Uint8Array, ...rest: Uint8Array[]): Uint8Array {
  const name = typeof network === 'string' ? new TextEncoder().encode(network) : network;
  return concatBytes([Uint8Array.of(name.length), name, ...rest]);
}

describe('round trips', () => {
  const samples: ControlMessage[] = [
    { type: 'redeem', network: 'corp', secret: SECRET, address: V4 },
    { type: 'redeem', network: 'lab', secret: SECRET, address: V6 },
    { type: 'digest', network: 'corp', entries: [] },
    { type: 'digest', network: 'corp', entries: [{ fingerprint: fp(1), version: 1n }, { fingerprint: fp(2), version: (1n << 64n) - 1n }] },
    { type: 'fetch', network: 'corp', fingerprints: [fp(3)] },
    { type: 'fetch', network: 'корп', fingerprints: [fp(3), fp(4), fp(3)] },
    { type: 'record', record: Uint8Array.of(0x56, 0x50, 0x4e, 0x52, 9) },
  ];

  it.each(samples.map((m) => [m.type, m] as const))('%s survives encode → decode, alone and in a stream', (_type, msg) => {
    const wire = encodeControlMessage(msg);
    expect(decodeControlPayload(wire.subarray(2))).toEqual({ ok: true, msg });
    const { messages, error } = decodeAll(concatBytes([wire, wire]));
    expect(error).toBeNull();
    expect(messages).toEqual([msg, msg]);
  });

  it('digest and fetch at their maximum entries with the longest network name still fit one message', () => {
    const network = 'n'.repeat(255);
    const entries = Array.from({ length: MAX_DIGEST_ENTRIES }, (_, i) => ({ fingerprint: fp(i), version: BigInt(i) }));
    const digest: ControlMessage = { type: 'digest', network, entries };
    expect(decodeControlPayload(encodeControlMessage(digest).subarray(2))).toEqual({ ok: true, msg: digest });
    const fetch: ControlMessage = { type: 'fetch', network, fingerprints: Array.from({ length: MAX_FETCH_ENTRIES }, (_, i) => fp(i)) };
    expect(decodeControlPayload(encodeControlMessage(fetch).subarray(2))).toEqual({ ok: true, msg: fetch });
  });

  it('the largest record body fits; one byte more is refused by the encoder', () => {
    const record = new Uint8Array(MAX_RECORD_MESSAGE_BYTES).fill(7);
    expect(decodeControlPayload(encodeControlMessage({ type: 'record', record }).subarray(2))).toEqual({ ok: true, msg: { type: 'record', record } });
    expect(() => encodeRecordMessageBody(new Uint8Array(MAX_RECORD_MESSAGE_BYTES + 1))).toThrow(/1\.\.4095 bytes/);
    expect(() => encodeRecordMessageBody(new Uint8Array(0))).toThrow(/1\.\.4095 bytes/);
  });

  it('a decoded record and redeem body are copies: reusing the receive buffer does not change them', () => {
    const body = Uint8Array.of(1, 2, 3);
    const decoded = decodeRecordMessageBody(body);
    const redeemBytes = encodeRedeemBody({ network: 'corp', secret: SECRET, address: V4 });
    const redeem = decodeRedeemBody(redeemBytes);
    body.fill(0);
    redeemBytes.fill(0);
    expect(decoded).toEqual({ record: Uint8Array.of(1, 2, 3) });
    expect(redeem).toEqual({ network: 'corp', secret: SECRET, address: V4 });
  });

  it('any digest round-trips (generated)', () => {
    const entry = fc.record({ fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')), version: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) });
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\uD800-\uDFFF]/.test(s)), fc.array(entry, { maxLength: MAX_DIGEST_ENTRIES }), (network, entries) => {
        const body: DigestBody = { network, entries };
        expect(decodeDigestBody(encodeDigestBody(body))).toEqual(body);
      }),
      { numRuns: 200, seed: 12 },
    );
  });
});

describe('strictness: malformed bodies are refused with a message', () => {
  const refusals: Array<[string, () => unknown, RegExp]> = [
    ['redeem: empty body', () => decodeRedeemBody(new Uint8Array(0)), /Redeem body is empty/],
    ['redeem: name length 0', () => decodeRedeemBody(Uint8Array.of(0, ...SECRET, 4, ...V4)), /length 0/],
    ['redeem: name longer than the body', () => decodeRedeemBody(Uint8Array.of(9, 0x63)), /claims 9 bytes, 1 remain/],
    ['redeem: ends inside the secret', () => decodeRedeemBody(withName('corp', SECRET.subarray(0, 10))), /ends inside its secret/],
    ['redeem: family 5', () => decodeRedeemBody(withName('corp', SECRET, Uint8Array.of(5), V4)), /family 5 must be 4 or 6/],
    ['redeem: family 4 with 16 bytes', () => decodeRedeemBody(withName('corp', SECRET, Uint8Array.of(4), V6)), /IPv4 address make/],
    ['redeem: family 6 with 4 bytes', () => decodeRedeemBody(withName('corp', SECRET, Uint8Array.of(6), V4)), /IPv6 address make/],
    ['redeem: a trailing byte', () => decodeRedeemBody(withName('corp', SECRET, Uint8Array.of(4), V4, Uint8Array.of(0))), /bytes; a/],
    ['redeem: network not UTF-8', () => decodeRedeemBody(withName(Uint8Array.of(0xff, 0xfe), SECRET, Uint8Array.of(4), V4)), /not valid UTF-8/],
    ['digest: entries not a multiple of 40', () => decodeDigestBody(withName('corp', new Uint8Array(41))), /41 bytes, not a multiple of 40/],
    ['digest: a partial entry', () => decodeDigestBody(withName('corp', new Uint8Array(39))), /39 bytes, not a multiple of 40/],
    ['digest: over the maximum', () => decodeDigestBody(withName('c', new Uint8Array((MAX_DIGEST_ENTRIES + 1) * 40))), new RegExp(`${MAX_DIGEST_ENTRIES + 1} entries, more than ${MAX_DIGEST_ENTRIES}`)],
    ['digest: network not UTF-8', () => decodeDigestBody(withName(Uint8Array.of(0xc3), new Uint8Array(40))), /not valid UTF-8/],
    ['digest: empty body', () => decodeDigestBody(new Uint8Array(0)), /Digest body is empty/],
    ['fetch: no fingerprints', () => decodeFetchBody(withName('corp')), /0 bytes, not a positive multiple of 32/],
    ['fetch: not a multiple of 32', () => decodeFetchBody(withName('corp', new Uint8Array(33))), /33 bytes, not a positive multiple of 32/],
    ['fetch: over the maximum', () => decodeFetchBody(withName('c', new Uint8Array((MAX_FETCH_ENTRIES + 1) * 32))), new RegExp(`${MAX_FETCH_ENTRIES + 1} records, more than ${MAX_FETCH_ENTRIES}`)],
    ['fetch: network not UTF-8', () => decodeFetchBody(withName(Uint8Array.of(0xed, 0xa0, 0x80), new Uint8Array(32))), /not valid UTF-8/],
    ['record: empty', () => decodeRecordMessageBody(new Uint8Array(0)), /Record body is empty/],
  ];

  it.each(refusals)('%s', (_what, decode, message) => {
    const result = decode();
    expect(typeof result).toBe('string');
    expect(result).toMatch(message);
  });

  it('the whole-message decoder fails on each, so the session closes instead of skipping', () => {
    const payloads = [
      Uint8Array.of(0x4a, ...withName('corp', SECRET, Uint8Array.of(5), V4)),
      Uint8Array.of(0x44, ...withName('corp', new Uint8Array(41))),
      Uint8Array.of(0x51, ...withName('corp')),
      Uint8Array.of(0x52),
    ];
    for (const payload of payloads) {
      const result = decodeControlPayload(payload);
      expect(result.ok, `type 0x${payload[0]!.toString(16)}`).toBe(false);
    }
  });

  it('the encoders refuse what the decoders would refuse', () => {
    expect(() => encodeRedeemBody({ network: 'corp', secret: new Uint8Array(15), address: V4 })).toThrow(/secret must be 16 bytes/);
    expect(() => encodeRedeemBody({ network: 'corp', secret: SECRET, address: new Uint8Array(5) })).toThrow(/4 or 16 bytes/);
    expect(() => encodeRedeemBody({ network: '', secret: SECRET, address: V4 })).toThrow(/1\.\.255 bytes/);
    expect(() => encodeDigestBody({ network: 'n'.repeat(256), entries: [] })).toThrow(/1\.\.255 bytes/);
    expect(() => encodeDigestBody({ network: 'corp', entries: Array.from({ length: MAX_DIGEST_ENTRIES + 1 }, () => ({ fingerprint: fp(1), version: 1n })) })).toThrow(/at most/);
    expect(() => encodeFetchBody({ network: 'corp', fingerprints: [] })).toThrow(/1\.\./);
    expect(() => encodeFetchBody({ network: 'corp', fingerprints: Array.from({ length: MAX_FETCH_ENTRIES + 1 }, () => fp(1)) })).toThrow(/1\.\./);
    expect(() => encodeFetchBody({ network: 'corp', fingerprints: ['AA'.repeat(32)] })).toThrow(/not a SHA-256 fingerprint/);
  });
});

describe('splitting', () => {
  it('digestBodies: one empty body for an empty roster, then chunks of at most MAX_DIGEST_ENTRIES in order', () => {
    expect(digestBodies('corp', [])).toEqual([{ network: 'corp', entries: [] }]);
    for (const count of [1, MAX_DIGEST_ENTRIES, MAX_DIGEST_ENTRIES + 1, 2 * MAX_DIGEST_ENTRIES + 3]) {
      const entries = Array.from({ length: count }, (_, i) => ({ fingerprint: fp(i % 256), version: BigInt(i) }));
      const bodies = digestBodies('corp', entries);
      expect(bodies).toHaveLength(Math.ceil(count / MAX_DIGEST_ENTRIES));
      expect(bodies.every((b) => b.network === 'corp' && b.entries.length >= 1 && b.entries.length <= MAX_DIGEST_ENTRIES)).toBe(true);
      expect(bodies.flatMap((b) => b.entries)).toEqual(entries);
      // Each one is encodable: the split is what lets a large roster go out at all.
      for (const body of bodies) expect(decodeDigestBody(encodeDigestBody(body))).toEqual(body);
    }
  });

  it('fetchBodies: nothing for nothing wanted, then chunks of at most MAX_FETCH_ENTRIES in order', () => {
    expect(fetchBodies('corp', [])).toEqual([]);
    for (const count of [1, MAX_FETCH_ENTRIES, MAX_FETCH_ENTRIES + 1, 3 * MAX_FETCH_ENTRIES]) {
      const fingerprints = Array.from({ length: count }, (_, i) => fp(i % 256));
      const bodies = fetchBodies('corp', fingerprints);
      expect(bodies).toHaveLength(Math.ceil(count / MAX_FETCH_ENTRIES));
      expect(bodies.every((b) => b.fingerprints.length >= 1 && b.fingerprints.length <= MAX_FETCH_ENTRIES)).toBe(true);
      expect(bodies.flatMap((b) => b.fingerprints)).toEqual(fingerprints);
      for (const body of bodies) expect(decodeFetchBody(encodeFetchBody(body))).toEqual(body);
    }
  });
});

describe('the original protocol is unaffected', () => {
  it('an unknown type between roster messages still decodes as unknown, to be skipped', () => {
    const digest: ControlMessage = { type: 'digest', network: 'corp', entries: [{ fingerprint: fp(1), version: 3n }] };
    const hello: ControlMessage = { type: 'hello', nonce: 5n };
    const unknown: ControlMessage = { type: 'unknown', code: 0x5a, body: Uint8Array.of(1, 2) };
    const { messages, error } = decodeAll(concatBytes([digest, unknown, hello].map(encodeControlMessage)));
    expect(error).toBeNull();
    expect(messages).toEqual([digest, unknown, hello]);
  });

  it('the roster type codes are not decoded as unknown', () => {
    for (const code of [0x4a, 0x44, 0x51, 0x52]) {
      expect(() => encodeControlMessage({ type: 'unknown', code, body: new Uint8Array(0) })).toThrow(/known type/);
    }
  });
});
