// der.ts reads a certificate's subject CN and validity the way @peculiar/x509 does (the reference,
// still used to generate certificates), for every string and time form certificates use.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { DerError, readCertificateFields } from '../../../src/crypto/der.js';
import { generateIdentity } from '../../../src/crypto/identity.js';

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
let keys: webcrypto.CryptoKeyPair;

beforeAll(async () => {
  keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
});

/** A self-signed certificate with this subject and validity, as DER. */
async function certificate(name: x509.Name, notBefore: Date, notAfter: Date): Promise<Uint8Array> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ name, keys, signingAlgorithm: ecdsa, notBefore, notAfter }, webcrypto);
  return new Uint8Array(cert.rawData);
}

function reference(der: Uint8Array): { commonName: string; notBefore: Date; notAfter: Date } {
  const cert = new x509.X509Certificate(der);
  return { commonName: cert.subjectName.getField('CN')[0] ?? '', notBefore: cert.notBefore, notAfter: cert.notAfter };
}

const JAN_2026 = new Date('2026-01-01T00:00:00Z');

describe('readCertificateFields', () => {
  it('reads what @peculiar/x509 reads from certificates vpnctl init makes, for awkward node names', async () => {
    for (const name of ['node1', 'laptop.example.com', 'émile – 東京', 'a"b\\c,d+e=f;g<h>', 'x'.repeat(64), '😀 emoji', ' spaced ']) {
      const generated = await generateIdentity(name, { now: JAN_2026 });
      const der = new x509.X509Certificate(generated.certPem).rawData;
      const fields = readCertificateFields(new Uint8Array(der));
      expect(fields, name).toEqual(reference(new Uint8Array(der)));
      expect(fields.commonName).toBe(name);
    }
  });

  it('reads every string type a CN comes in', async () => {
    const cases: Array<[x509.JsonAttributeObject, string]> = [
      [{ utf8String: 'utf8 ü' }, 'utf8 ü'],
      [{ printableString: 'Printable 1' }, 'Printable 1'],
      [{ ia5String: 'ia5@example' }, 'ia5@example'],
      [{ bmpString: 'bmp ü 東' }, 'bmp ü 東'],
      [{ universalString: 'univ 😀' }, 'univ 😀'],
    ];
    for (const [value, text] of cases) {
      const der = await certificate(new x509.Name([{ CN: [value] }]), JAN_2026, new Date('2027-01-01T00:00:00Z'));
      const fields = readCertificateFields(der);
      expect(fields.commonName, JSON.stringify(value)).toBe(text);
      expect(fields).toEqual(reference(der));
    }
  });

  it('takes the first CN, after other attributes, and gives "" without one', async () => {
    const later = new Date('2027-01-01T00:00:00Z');
    const withOthers = await certificate(new x509.Name([{ O: [{ utf8String: 'Org' }] }, { CN: [{ utf8String: 'first' }] }, { CN: [{ utf8String: 'second' }] }]), JAN_2026, later);
    expect(readCertificateFields(withOthers).commonName).toBe('first');
    expect(readCertificateFields(withOthers)).toEqual(reference(withOthers));
    const none = await certificate(new x509.Name([{ O: [{ utf8String: 'Org' }] }]), JAN_2026, later);
    expect(readCertificateFields(none).commonName).toBe('');
  });

  it('reads UTCTime (years to 2049) and GeneralizedTime (from 2050) to the second', async () => {
    const spans: Array<[string, string]> = [
      ['1970-01-01T00:00:00Z', '2049-12-31T23:59:59Z'],
      ['1999-06-15T12:34:56Z', '2050-01-01T00:00:00Z'],
      ['2026-02-28T23:59:59Z', '9999-12-31T23:59:59Z'],
    ];
    for (const [from, to] of spans) {
      const der = await certificate(new x509.Name([{ CN: [{ utf8String: 't' }] }]), new Date(from), new Date(to));
      const fields = readCertificateFields(der);
      expect([fields.notBefore.toISOString(), fields.notAfter.toISOString()]).toEqual([new Date(from).toISOString(), new Date(to).toISOString()]);
      expect(fields).toEqual(reference(der));
    }
  });

  it('refuses what is not a certificate with a DerError naming the problem', async () => {
    const good = await certificate(new x509.Name([{ CN: [{ utf8String: 'ok' }] }]), JAN_2026, new Date('2027-01-01T00:00:00Z'));
    const problems: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array(), /truncated/],
      [Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff), /longer than its container/],
      [Uint8Array.of(0x30, 0x80, 0x00, 0x00), /unsupported length/],
      [good.subarray(0, good.length - 10), /longer than its container/],
      [Uint8Array.of(0x04, 0x00), /certificate SEQUENCE/],
    ];
    for (const [bytes, message] of problems) expect(() => readCertificateFields(bytes)).toThrow(message);
    expect(() => readCertificateFields(Uint8Array.of(0x30, 0x00))).toThrow(DerError);
  });

  it('refuses impossible times', async () => {
    const der = await certificate(new x509.Name([{ CN: [{ utf8String: 'ok' }] }]), JAN_2026, new Date('2027-01-01T00:00:00Z'));
    // The UTCTime "260101000000Z" of notBefore: make it 31 February, then month 13.
    const text = Buffer.from('260101000000Z');
    const at = Buffer.from(der).indexOf(text);
    expect(at).toBeGreaterThan(0);
    for (const [bad, message] of [['260231000000Z', /no such date/], ['261301000000Z', /out of range/], ['2601010000ZZ0', /malformed UTCTime/]] as const) {
      const copy = Uint8Array.from(der);
      copy.set(Buffer.from(bad), at);
      expect(() => readCertificateFields(copy), bad).toThrow(message);
    }
  });

  it('reads a leap second as the first second of the next minute, as @peculiar/x509 does', async () => {
    const der = await certificate(new x509.Name([{ CN: [{ utf8String: 'ok' }] }]), JAN_2026, new Date('2027-01-01T00:00:00Z'));
    const at = Buffer.from(der).indexOf(Buffer.from('260101000000Z'));
    const copy = Uint8Array.from(der);
    copy.set(Buffer.from('251231235960Z'), at);
    const expected = new Date('2026-01-01T00:00:00Z');
    expect(readCertificateFields(copy).notBefore).toEqual(expected);
    expect(new x509.X509Certificate(copy).notBefore).toEqual(expected);
  });
});
