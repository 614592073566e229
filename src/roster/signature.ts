// Signing and checking membership records (record.ts holds their encoding): an admin signs with
// its node key; a verifier, which knows only admin fingerprints, trusts a record when the
// certificate inside hashes to one of them and the signature verifies with that certificate's key.

import { X509Certificate, sign, verify, type KeyObject } from 'node:crypto';
import { printable } from '../log/logger.js';
import { RecordError, decodeRecord, encodeRecord, encodeRecordBody, type RecordFields, type VerifiedRecord, type VerifyResult } from './record.js';

/**
 * Signs a record with an admin's node key. `signerCertDer` must be the certificate of
 * `privateKey`: the signature is checked against it before returning, so a wrong pairing fails
 * here rather than on every verifier. Throws RecordError.
 */
export function signRecord(fields: RecordFields, signerCertDer: Uint8Array, privateKey: KeyObject): Uint8Array {
  const body = encodeRecordBody(fields, signerCertDer);
  let publicKey: KeyObject;
  try {
    publicKey = new X509Certificate(signerCertDer).publicKey;
  } catch {
    throw new RecordError('signer certificate is not a readable X.509 DER certificate; pass the admin identity\'s certDer');
  }
  const signature = new Uint8Array(sign('sha256', body, privateKey));
  if (!verify('sha256', body, publicKey, signature)) {
    throw new RecordError('signing key does not belong to the signer certificate; use the private key loaded with that certificate');
  }
  return encodeRecord(body, signature);
}

/**
 * Decodes and checks a record: well-formed, signed by a certificate whose fingerprint is one of
 * `adminFingerprints` (lowercase hex), signature valid, not expired at `now` (Unix ms). The
 * signature is checked before expiry so that no field is believed before it is authenticated.
 */
export function verifyRecord(bytes: Uint8Array, adminFingerprints: ReadonlySet<string> | readonly string[], now: number): VerifyResult {
  const decoded = decodeRecord(bytes);
  if (!decoded.ok) return { ok: false, reason: 'malformed', error: decoded.error };
  const record = decoded.record;
  // Names passed the decoder's rules, but may still hold characters a terminal misreads.
  const who = `${printable(record.name)} in ${record.network}`;
  const admins = adminFingerprints instanceof Set ? adminFingerprints : new Set(adminFingerprints);
  if (!admins.has(record.signerFingerprint)) {
    return {
      ok: false,
      reason: 'not_admin',
      error: `membership record for ${who} is signed by ${record.signerFingerprint}, which is not an admin of that network; have an admin sign it`,
    };
  }
  let valid = false;
  try {
    valid = verify('sha256', decoded.body, new X509Certificate(record.signerCertDer).publicKey, record.signature);
  } catch {
    // An unreadable certificate or a malformed signature is just an invalid signature.
  }
  if (!valid) {
    return {
      ok: false,
      reason: 'bad_signature',
      error: `membership record for ${who} has a signature that does not verify (changed or damaged after signing); ask an admin to sign it again`,
    };
  }
  if (record.expiresAt !== undefined && now > record.expiresAt) {
    return {
      ok: false,
      reason: 'expired',
      error: `membership record for ${who} expired at ${new Date(record.expiresAt).toISOString()}; ask an admin for a new one`,
    };
  }
  return { ok: true, verified: { record, bytes: new Uint8Array(bytes) } as VerifiedRecord, record };
}

/** Whether a record has expired at `now` (Unix ms): strictly after expires_at, as for invites. */
export function recordExpired(record: RecordFields, now: number): boolean {
  return record.expiresAt !== undefined && now > record.expiresAt;
}
