// A node's identity: a self-signed certificate and its private key. The peer ID is the
// fingerprint (SHA-256 of the certificate DER, PROTOCOL.md section 1); nothing ever checks a CA
// chain, so trust is a fingerprint decision (pinned or TOFU), not an issuer decision.

import type * as X509 from '@peculiar/x509';
import { X509Certificate, KeyObject, createHash, createPrivateKey, webcrypto } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { defaultFs, ensureDir, errnoCode, errorText, writeFileAtomic, type AtomicFs } from './atomic-file.js';
import { readCertificateFields, type CertificateFields } from './der.js';

/**
 * @peculiar/x509, loaded only to generate a certificate: it costs ~19 MB of resident memory, and
 * the daemon reads certificates with der.ts. It resolves its ASN.1 codecs through tsyringe, which
 * needs the Reflect metadata polyfill loaded before the library (its README's documented setup).
 */
async function loadX509(): Promise<typeof X509> {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

/** Lowercase hex SHA-256 of the certificate DER: the node's peer ID. */
export function fingerprintOfDer(certDer: Uint8Array): string {
  return createHash('sha256').update(certDer).digest('hex');
}

/** Fingerprint of the first certificate in `certPem`. Throws IdentityError if it is not one. */
export function fingerprintOfPem(certPem: string): string {
  return fingerprintOfDer(parsePemCertificate(certPem, 'certificate').raw);
}

export function isFingerprint(text: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(text);
}

export interface GeneratedIdentity {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

// Ten years. A mesh node's certificate is pinned by fingerprint, not trusted through an issuer,
// so expiry adds no security here: a stolen key stays trusted until the fingerprint is unpinned,
// whatever notAfter says. What a short expiry does add is an outage — every peer refuses the node
// on the day it lapses (peers do enforce the validity window, PROTOCOL.md section 2).
const DEFAULT_VALIDITY_DAYS = 3650;
// Backdated so a peer whose clock runs a little behind still accepts a freshly generated cert.
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isDnsName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => DNS_LABEL.test(label));
}

/**
 * Why `name` cannot be a node name, or null. Node names end up in certificates, config keys and
 * log lines; control characters break all three.
 */
export function nodeNameProblem(name: string): string | null {
  if (name.length === 0 || name.length > 64) return `node name must be 1..64 characters, got ${name.length} ('${name}')`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return `node name ${JSON.stringify(name)} contains control characters`;
  return null;
}

function checkNodeName(name: string): void {
  const problem = nodeNameProblem(name);
  if (problem) throw new IdentityError(problem);
}

/**
 * Creates an ECDSA P-256 key and a self-signed X.509 v3 certificate (ecdsa-with-SHA256) whose CN
 * is the node name — the shape BoringSSL/quiche accept for TLS 1.3 in both client and server role.
 */
export async function generateIdentity(
  name: string,
  opts: { validityDays?: number; now?: Date } = {},
): Promise<GeneratedIdentity> {
  checkNodeName(name);
  const validityDays = opts.validityDays ?? DEFAULT_VALIDITY_DAYS;
  if (!(validityDays > 0)) throw new IdentityError(`certificate validity must be positive, got ${validityDays} days`);
  const now = opts.now ?? new Date();
  const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const x509 = await loadX509();
  const extensions: X509.Extension[] = [
    // CA:false, critical: this key must never be mistaken for an issuer.
    new x509.BasicConstraintsExtension(false, undefined, true),
    // TLS 1.3 with ECDSA signs, it never encrypts to the key.
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    // Both roles: every node dials and accepts (mutual TLS).
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
  ];
  if (isDnsName(name)) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }], false));
  // Serial omitted: the library draws 16 random bytes and encodes them as a positive INTEGER.
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      // The object form takes the name verbatim as a UTF8String; the string forms would parse it
      // as RFC 2253 text, mangling quotes, backslashes, ',' and '+' in node names.
      name: new x509.Name([{ CN: [{ utf8String: name }] }]),
      keys,
      signingAlgorithm: ecdsa,
      notBefore: wholeSeconds(now.getTime() - CLOCK_SKEW_MS),
      notAfter: wholeSeconds(now.getTime() + validityDays * DAY_MS),
      extensions,
    },
    webcrypto,
  );
  return {
    certPem: `${cert.toString('pem')}\n`,
    keyPem: KeyObject.from(keys.privateKey).export({ format: 'pem', type: 'pkcs8' }).toString(),
    fingerprint: fingerprintOfDer(new Uint8Array(cert.rawData)),
  };
}

// RFC 5280 4.1.2.5.2: GeneralizedTime (years from 2050) must not carry fractional seconds.
function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/**
 * The new certificate waits here while the key is replaced. Two files cannot be replaced in one
 * step, so the certificate goes last, and loading finishes a replacement a crash interrupted.
 */
export function pendingCertPath(certPath: string): string {
  return `${certPath}.pending`;
}

/**
 * Writes cert (0644) and key (0600) as a pair: the new certificate to a pending file, then the
 * key, then the certificate into place, each atomically. Interrupted before the key moved, the old
 * pair stands; after, the new key sits beside the old certificate and the pending new one, and
 * loadIdentity completes the swap. Checks both paths before writing either.
 */
export function writeIdentityFiles(
  certPath: string,
  keyPath: string,
  id: GeneratedIdentity,
  opts: { force?: boolean; fs?: AtomicFs } = {},
): void {
  const fs = opts.fs ?? defaultFs;
  if (!opts.force) {
    for (const [path, what] of [
      [certPath, 'certificate'],
      [keyPath, 'private key'],
    ] as const) {
      if (fs.existsSync(path)) throw new IdentityError(`${what} file ${path} already exists (use --force to overwrite it)`);
    }
  }
  try {
    // Key directory first, so when both live in one directory it is created 0700.
    ensureDir(dirname(keyPath), 0o700, fs);
    ensureDir(dirname(certPath), 0o755, fs);
    const pending = pendingCertPath(certPath);
    writeFileAtomic(pending, id.certPem, 0o644, fs);
    writeFileAtomic(keyPath, id.keyPem, 0o600, fs);
    fs.renameSync(pending, certPath);
  } catch (err) {
    if (err instanceof IdentityError) throw err;
    throw new IdentityError(`cannot write identity files ${certPath} and ${keyPath}: ${errorText(err)}`);
  }
}

export interface Identity {
  /** The certificate's CN. */
  name: string;
  /** The leaf certificate alone, normalized PEM. */
  certPem: string;
  /** The private key as PKCS#8 PEM, whatever format the file used. */
  keyPem: string;
  certDer: Uint8Array;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  privateKey: KeyObject;
}

function readPemFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') {
      throw new IdentityError(`${what} file ${path} does not exist (create an identity with 'vpnctl init', or 'vpnctl rekey --force' to keep an existing config)`);
    }
    throw new IdentityError(`cannot read ${what} file ${path}: ${errorText(err)} (create an identity with 'vpnctl init', or 'vpnctl rekey --force' to keep an existing config)`);
  }
}

function parsePemCertificate(text: string, source: string): X509Certificate {
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new IdentityError(`${source} is not a PEM certificate (expected a -----BEGIN CERTIFICATE----- block)`);
  }
  try {
    return new X509Certificate(text);
  } catch (err) {
    throw new IdentityError(`${source} holds an unreadable certificate: ${errorText(err)}`);
  }
}

/**
 * CN and validity window, read from the DER (der.ts): Node's `subject` is escaped display text and
 * Node 20's `validFrom` a locale-style string. Peer certificates are untrusted input, so every
 * failure, including an unparseable time, becomes an IdentityError.
 */
function parseCertificateFields(certDer: Uint8Array, source: string): CertificateFields {
  try {
    return readCertificateFields(certDer);
  } catch (err) {
    throw new IdentityError(`${source} holds an unreadable certificate: ${errorText(err)}`);
  }
}

/**
 * Loads and cross-checks the node's certificate and key. Synchronous so the daemon and vpnctl can
 * call it during start-up validation. Does not check the validity window: use checkValidity, so
 * the caller decides between refusing to start and warning (vpnctl doctor).
 */
function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    // Different key types (e.g. RSA key, EC cert) throw instead of returning false.
    return false;
  }
}

/**
 * Finishes a pair replacement a crash interrupted (writeIdentityFiles): a pending certificate
 * that belongs to the key on disk goes into place. Anything else is left for the checks below.
 */
function finishPendingCert(certPath: string, keyPath: string): void {
  const pending = pendingCertPath(certPath);
  try {
    const cert = new X509Certificate(readFileSync(pending, 'utf8'));
    const key = createPrivateKey({ key: readFileSync(keyPath, 'utf8'), format: 'pem' });
    if (keyMatches(cert, key)) renameSync(pending, certPath);
  } catch {
    // No pending certificate, or nothing usable: nothing to finish.
  }
}

export function loadIdentity(certPath: string, keyPath: string, expectedFingerprint?: string): Identity {
  finishPendingCert(certPath, keyPath);
  const certText = readPemFile(certPath, 'certificate');
  const cert = parsePemCertificate(certText, `certificate file ${certPath}`);
  const certDer = new Uint8Array(cert.raw);
  const fingerprint = fingerprintOfDer(certDer);
  if (expectedFingerprint !== undefined && expectedFingerprint !== '') {
    if (expectedFingerprint.toLowerCase() !== fingerprint) {
      throw new IdentityError(
        `certificate ${certPath} has fingerprint ${fingerprint}, but the config pins identity.fingerprint = ${expectedFingerprint}; ` +
          `point identity.cert at the right certificate or update identity.fingerprint`,
      );
    }
  }

  const keyText = readPemFile(keyPath, 'private key');
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(keyText)) {
    const hint = keyText.includes('ENCRYPTED PRIVATE KEY') ? ' (encrypted keys are not supported)' : '';
    throw new IdentityError(`private key file ${keyPath} is not a PEM private key${hint}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: keyText, format: 'pem' });
  } catch (err) {
    throw new IdentityError(`private key file ${keyPath} holds an unreadable key: ${errorText(err)}`);
  }
  if (!keyMatches(cert, privateKey)) {
    throw new IdentityError(
      `private key ${keyPath} does not belong to certificate ${certPath}; ` +
        `use the key generated together with that certificate (or create a new pair with 'vpnctl rekey --force', which keeps the config)`,
    );
  }

  const fields = parseCertificateFields(certDer, `certificate file ${certPath}`);
  if (fields.commonName === '') {
    throw new IdentityError(`certificate ${certPath} has no common name (CN); the CN is the node name`);
  }
  return {
    name: fields.commonName,
    certPem: cert.toString(),
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    certDer,
    fingerprint,
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    privateKey,
  };
}

/** null when `now` lies inside [notBefore, notAfter], else why not. */
export function checkValidity(notBefore: Date, notAfter: Date, now: Date = new Date()): string | null {
  if (now.getTime() < notBefore.getTime()) {
    return `certificate is not valid until ${notBefore.toISOString()} (check the clocks of both machines)`;
  }
  if (now.getTime() > notAfter.getTime()) return `certificate expired on ${notAfter.toISOString()}`;
  return null;
}

export interface CertificateInfo {
  fingerprint: string;
  /** '' when the certificate has no CN. */
  commonName: string;
  notBefore: Date;
  notAfter: Date;
}

/** Reads what trust decisions need from a certificate a peer presented over TLS. */
export function certificateInfo(certDer: Uint8Array): CertificateInfo {
  const fields = parseCertificateFields(certDer, 'peer certificate');
  return { fingerprint: fingerprintOfDer(certDer), ...fields };
}
