import { X509Certificate, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../../src/crypto/identity.js';
import {
  MAX_CERT_BYTES,
  MAX_ENDPOINTS,
  MAX_RECORD_BYTES,
  MAX_ROUTES,
  RecordError,
  decodeRecord,
  encodeRecord,
  encodeRecordBody,
  type RecordFields,
} from '../../../src/roster/record.js';
import { signRecord, verifyRecord } from '../../../src/roster/signature.js';

interface Signer {
  certDer: Uint8Array;
  key: KeyObject;
  fingerprint: string;
}

async function signer(name: string): Promise<Signer> {
  const id = await generateIdentity(name, { now: new Date('2026-01-01T00:00:00Z') });
  return { certDer: new Uint8Array(new X509Certificate(id.certPem).raw), key: createPrivateKey(id.keyPem), fingerprint: id.fingerprint };
}

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MEMBER_FP = 'ab'.repeat(32);

function fields(over: Partial<RecordFields> = {}): RecordFields {
  return {
    kind: 'member',
    version: 1n,
    network: 'corp',
    name: 'laptop',
    fingerprint: MEMBER_FP,
    address: '10.42.0.7',
    routes: ['192.168.1.0/24', 'fd00:1::/64'],
    endpoints: ['198.51.100.20:51820', '[2001:db8::1]:51820', 'laptop.example.com:443'],
    issuedAt: NOW - 1000,
    expiresAt: NOW + 86_400_000,
    ...over,
  };
}

let admin: Signer;
let mallory: Signer;
let admins: Set<string>;

beforeAll(async () => {
  [admin, mallory] = await Promise.all([signer('admin'), signer('mallory')]);
  admins = new Set([admin.fingerprint]);
});

function signed(over: Partial<RecordFields> = {}): Uint8Array {
  return signRecord(fields(over), admin.certDer, admin.key);
}

function encodeError(over: Partial<RecordFields>, certDer: Uint8Array = admin.certDer): string {
  try {
    encodeRecordBody(fields(over), certDer);
  } catch (err) {
    expect(err).toBeInstanceOf(RecordError);
    return (err as Error).message;
  }
  throw new Error('expected RecordError');
}

describe('membership record encoding', () => {
  it('round-trips: verify gives the fields back, and re-encoding gives the same bytes', () => {
    const bytes = signed();
    const result = verifyRecord(bytes, admins, NOW);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { signerCertDer, signerFingerprint, signature, ...back } = result.record;
    expect(back).toEqual(fields());
    expect(signerFingerprint).toBe(admin.fingerprint);
    expect(Buffer.from(signerCertDer).equals(Buffer.from(admin.certDer))).toBe(true);
    expect(Buffer.from(encodeRecord(encodeRecordBody(back, signerCertDer), signature))).toEqual(Buffer.from(bytes));
    expect(Buffer.from(result.verified.bytes)).toEqual(Buffer.from(bytes));
  });

  it('round-trips a revocation without expiry, routes or endpoints, and a u64 version at its maximum', () => {
    const over = { kind: 'revoked' as const, version: (1n << 64n) - 1n, routes: [], endpoints: [], expiresAt: undefined };
    const result = verifyRecord(signed(over), admins, NOW);
    expect(result.ok && result.record).toMatchObject({ kind: 'revoked', version: (1n << 64n) - 1n, routes: [], endpoints: [] });
    expect(result.ok && 'expiresAt' in result.record).toBe(false);
  });

  it('writes addresses and routes in canonical form', () => {
    const result = verifyRecord(signed({ address: 'fd00:0:0::7', routes: ['fd00:0001::/64', '10.0.0.0/8'] }), admins, NOW);
    expect(result.ok && result.record.address).toBe('fd00::7');
    expect(result.ok && result.record.routes).toEqual(['fd00:1::/64', '10.0.0.0/8']);
  });

  it('accepts every field at its bound', () => {
    const routes = Array.from({ length: MAX_ROUTES }, (_, i) => `10.${i}.0.0/16`);
    const endpoints = Array.from({ length: MAX_ENDPOINTS }, (_, i) => `198.51.100.${i + 1}:51820`);
    const result = verifyRecord(signed({ routes, endpoints, network: 'n'.repeat(255), name: 'é'.repeat(64) }), admins, NOW);
    expect(result.ok).toBe(true);
  });

  it('refuses fields it cannot encode, naming the problem', () => {
    expect(encodeError({ name: '' })).toMatch(/node name must be 1\.\.64/);
    expect(encodeError({ name: 'a\nb' })).toMatch(/control characters/);
    expect(encodeError({ network: 'co rp' })).toMatch(/not a valid network name/);
    expect(encodeError({ network: 'n'.repeat(256) })).toMatch(/not a valid network name/);
    expect(encodeError({ fingerprint: 'AB'.repeat(32) })).toMatch(/64 lowercase hex/);
    expect(encodeError({ fingerprint: 'ab' })).toMatch(/64 lowercase hex/);
    expect(encodeError({ version: -1n })).toMatch(/u64/);
    expect(encodeError({ version: 1n << 64n })).toMatch(/u64/);
    expect(encodeError({ address: '10.42.0' })).toMatch(/not an IPv4 or IPv6 address/);
    expect(encodeError({ routes: ['10.42.0.5/24'] })).toMatch(/host bits set/);
    expect(encodeError({ routes: ['10.0.0.0/8', '10.0.0.0/8'] })).toMatch(/listed twice/);
    expect(encodeError({ routes: Array.from({ length: MAX_ROUTES + 1 }, (_, i) => `10.${i}.0.0/16`) })).toMatch(/at most 64 routes/);
    expect(encodeError({ endpoints: Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => `198.51.100.${i}:1`) })).toMatch(/at most 16 endpoint/);
    expect(encodeError({ endpoints: ['198.51.100.1'] })).toMatch(/missing :PORT/);
    expect(encodeError({ endpoints: ['198.51.100.1:051820'] })).toMatch(/port must be/);
    expect(encodeError({ endpoints: ['198.51.100.1:0080'] })).toMatch(/canonical form.*198\.51\.100\.1:80/);
    expect(encodeError({ endpoints: ['a.example:1', 'a.example:1'] })).toMatch(/must not repeat/);
    expect(encodeError({ expiresAt: NOW - 1000 })).toMatch(/later than issued_at/);
    expect(encodeError({ issuedAt: 1.5 })).toMatch(/whole number/);
    expect(encodeError({}, new Uint8Array(0))).toMatch(/1\.\.4096 bytes/);
    expect(encodeError({}, new Uint8Array(MAX_CERT_BYTES + 1))).toMatch(/1\.\.4096 bytes/);
    expect(() => encodeRecord(new Uint8Array(10), new Uint8Array(73))).toThrow(RecordError);
  });

  it('refuses to sign with a key that is not the certificate\'s', () => {
    expect(() => signRecord(fields(), admin.certDer, mallory.key)).toThrow(/does not belong to the signer certificate/);
    expect(() => signRecord(fields(), Uint8Array.of(1, 2, 3), admin.key)).toThrow(/not a readable X\.509/);
  });
});

describe('verifyRecord refusals', () => {
  it('not_admin: signed by a key whose certificate is not an admin', () => {
    const bytes = signRecord(fields(), mallory.certDer, mallory.key);
    const result = verifyRecord(bytes, admins, NOW);
    expect(result).toMatchObject({ ok: false, reason: 'not_admin' });
    expect(!result.ok && result.error).toContain(mallory.fingerprint);
    expect(verifyRecord(bytes, [admin.fingerprint, mallory.fingerprint], NOW).ok).toBe(true);
  });

  it('bad_signature: an admin certificate with someone else\'s signature', () => {
    const body = encodeRecordBody(fields(), admin.certDer);
    const forged = encodeRecord(body, new Uint8Array(sign('sha256', body, mallory.key)));
    expect(verifyRecord(forged, admins, NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
    // A signature over different fields does not carry over either.
    const other = decodeRecord(signed({ version: 2n }));
    expect(other.ok).toBe(true);
    if (other.ok) expect(verifyRecord(encodeRecord(body, other.record.signature), admins, NOW)).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('expired: after expires_at, not at it', () => {
    const bytes = signed({ expiresAt: NOW });
    expect(verifyRecord(bytes, admins, NOW).ok).toBe(true);
    const result = verifyRecord(bytes, admins, NOW + 1);
    expect(result).toMatchObject({ ok: false, reason: 'expired' });
    expect(!result.ok && result.error).toMatch(/expired at 2026-03-01T12:00:00\.000Z; ask an admin/);
  });

  it('checks the signature before expiry: a tampered expired record is bad_signature', () => {
    const bytes = signed({ expiresAt: NOW });
    bytes[bytes.length - 5]! ^= 1;
    expect(verifyRecord(bytes, admins, NOW + 1)).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('malformed: empty, truncated at every length, trailing bytes, oversized', () => {
    const bytes = signed();
    for (let n = 0; n < bytes.length; n++) {
      expect(verifyRecord(bytes.subarray(0, n), admins, NOW)).toMatchObject({ ok: false, reason: 'malformed' });
    }
    expect(verifyRecord(Buffer.concat([bytes, Uint8Array.of(0)]), admins, NOW)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeRecord(new Uint8Array(MAX_RECORD_BYTES + 1))).toMatchObject({ ok: false, error: expect.stringMatching(/more than any valid one/) });
  });

  it('malformed: the strict decoder refuses each bad header field', () => {
    const bytes = signed();
    const at = (offset: number, value: number): string => {
      const copy = Uint8Array.from(bytes);
      copy[offset] = value;
      const result = decodeRecord(copy);
      expect(result.ok).toBe(false);
      return result.ok ? '' : result.error;
    };
    expect(at(0, 0x00)).toMatch(/no VPNR magic/);
    expect(at(4, 2)).toMatch(/format 2 is not supported.*upgrade vibepn/);
    expect(at(5, 3)).toMatch(/kind 3 is unknown/);
    expect(at(14, 0)).toMatch(/network name length 0/);
    // 'corp' is 4 bytes: claiming 5 shifts every later field, and something must refuse it.
    expect(at(14, 5)).toMatch(/malformed/);
    // The overlay address family follows the fingerprint: 14 + 1 + 4 + 1 + 6 + 32.
    expect(at(58, 5)).toMatch(/member address family 5/);
    expect(at(63, MAX_ROUTES + 1)).toMatch(/route count 65/);
    // The first route: family, length (24 for 192.168.1.0/24), 4 bytes.
    expect(at(65, 33)).toMatch(/prefix length 33/);
    expect(at(69, 1)).toMatch(/host bits set/);
  });

  it('malformed: invalid UTF-8 and non-canonical text in the body', () => {
    const bytes = signed({ name: 'laptop' });
    const copy = Uint8Array.from(bytes);
    copy[20] = 0xff; // first byte of the member name (after 14 + 1 + 4 + 1)
    expect(decodeRecord(copy)).toMatchObject({ ok: false, error: expect.stringMatching(/member name is not valid UTF-8/) });
    const spaced = Uint8Array.from(bytes);
    spaced[15] = 0x20; // 'corp' -> ' orp'
    expect(decodeRecord(spaced)).toMatchObject({ ok: false, error: expect.stringMatching(/not a valid network name/) });
  });
});

describe('tampering', () => {
  it('every byte flipped (one bit, and all bits) fails, never verifies', () => {
    const bytes = signed();
    const result = decodeRecord(bytes);
    if (!result.ok) throw new Error(result.error);
    const certEnd = bytes.length - 1 - result.record.signature.length;
    const certStart = certEnd - admin.certDer.length;
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const copy = Uint8Array.from(bytes);
        copy[i]! ^= mask;
        const verdict = verifyRecord(copy, admins, NOW);
        expect(verdict.ok, `byte ${i} ^ ${mask}`).toBe(false);
        if (verdict.ok) continue;
        // Changing the certificate changes its fingerprint, so it is no longer an admin's.
        const allowed = i >= certStart && i < certEnd ? ['not_admin', 'malformed'] : ['bad_signature', 'malformed'];
        expect(allowed, `byte ${i} ^ ${mask}: ${verdict.reason}`).toContain(verdict.reason);
      }
    }
  });
});

describe('text the decoder could not read back', () => {
  it('refuses a lone surrogate in a name', () => {
    expect(encodeError({ name: 'a\ud800b' })).toMatch(/lone surrogate/);
  });
});
