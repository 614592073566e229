// Fuzzing the certificate field reader (der.ts): it reads every certificate a peer presents over
// TLS, before any trust decision. Budget and seeds: test/helpers/fuzz.ts.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, it } from 'vitest';
import { DerError, readCertificateFields } from '../../../src/crypto/der.js';
import { generateIdentity } from '../../../src/crypto/identity.js';
import { FUZZ_TIMEOUT_MS, editsArb, fuzz, mutateBytes } from '../../helpers/fuzz.js';

let certs: Uint8Array[] = [];

beforeAll(async () => {
  const made = await Promise.all(['node1', 'émile – 東京', 'x'.repeat(64)].map((name) => generateIdentity(name, { now: new Date('2026-01-01T00:00:00Z') })));
  certs = made.map((g) => new Uint8Array(new x509.X509Certificate(g.certPem).rawData));
});

/** Only DerError may come out; what it returns is a real date and a string. */
function readOnly(bytes: Uint8Array): ReturnType<typeof readCertificateFields> | null {
  try {
    const fields = readCertificateFields(bytes);
    if (Number.isNaN(fields.notBefore.getTime()) || Number.isNaN(fields.notAfter.getTime())) throw new Error('an invalid Date came out');
    if (typeof fields.commonName !== 'string') throw new Error('a non-string CN came out');
    return fields;
  } catch (err) {
    if (err instanceof DerError) return null;
    throw err;
  }
}

describe('certificate reader fuzzing', () => {
  it('arbitrary bytes: only DerError comes out', () => fuzz('der: arbitrary', 0.3, fc.uint8Array({ maxLength: 600 }), (bytes) => void readOnly(bytes)), FUZZ_TIMEOUT_MS);

  it(
    'mutated certificates: only DerError comes out, and where @peculiar/x509 also reads one, both read the same fields',
    () =>
      fuzz('der: mutated', 0.7, fc.nat(2), editsArb, (index, edits) => {
        const bytes = mutateBytes(certs[index]!, edits);
        const ours = readOnly(bytes);
        if (ours === null) return;
        let theirs: { commonName: string; notBefore: Date; notAfter: Date };
        try {
          const cert = new x509.X509Certificate(bytes);
          theirs = { commonName: cert.subjectName.getField('CN')[0] ?? '', notBefore: cert.notBefore, notAfter: cert.notAfter };
        } catch {
          return; // the reference is stricter about the parts we skip (signature, extensions)
        }
        if (ours.commonName !== theirs.commonName || ours.notBefore.getTime() !== theirs.notBefore.getTime() || ours.notAfter.getTime() !== theirs.notAfter.getTime()) {
          throw new Error(`disagree: ours ${JSON.stringify(ours)}, @peculiar/x509 ${JSON.stringify(theirs)}`);
        }
      }),
    FUZZ_TIMEOUT_MS,
  );
});
