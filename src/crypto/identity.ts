// A node's identity: a self-signed certificate and its private key. The peer ID is the
// fingerprint (SHA-256 of the certificate DER, PROTOCOL.md section 1); nothing ever checks a CA
// chain, so trust is a fingerprint decision (pinned or TOFU), not an issuer decision.

import { X509Certificate, createHash, createPrivateKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import * as der from './der.js';
import { defaultFs, ensureDir, errnoCode, errorText, writeFileAtomic, type AtomicFs } from './atomic-file.js';

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
const generateKeyPairAsync = promisify(generateKeyPair);

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

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return der.sequence(der.objectIdentifier(oid), ...(critical ? [der.booleanTrue()] : []), der.octetString(value));
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
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });

  const serial = randomBytes(16);
  // DER INTEGER serials are signed; a clear top bit keeps it positive, a set bit keeps it 16 bytes.
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const signatureAlgorithm = der.sequence(der.objectIdentifier(OID.ecdsaWithSha256));
  const distinguishedName = der.sequence(
    der.set(der.sequence(der.objectIdentifier(OID.commonName), der.utf8String(name))),
  );
  const extensions = [
    // CA:false, critical: this key must never be mistaken for an issuer.
    extension(OID.basicConstraints, true, der.sequence()),
    // digitalSignature only (bit 0): TLS 1.3 with ECDSA signs, it never encrypts to the key.
    extension(OID.keyUsage, true, der.bitString(Uint8Array.of(0x80), 7)),
    // Both roles: every node dials and accepts (mutual TLS).
    extension(OID.extKeyUsage, false, der.sequence(der.objectIdentifier(OID.serverAuth), der.objectIdentifier(OID.clientAuth))),
  ];
  if (isDnsName(name)) {
    extensions.push(extension(OID.subjectAltName, false, der.sequence(der.tlv(0x82, Buffer.from(name, 'ascii')))));
  }
  const tbs = der.sequence(
    der.explicit(0, der.unsignedInteger(Uint8Array.of(2))), // v3
    der.unsignedInteger(serial),
    signatureAlgorithm,
    distinguishedName, // issuer = subject: self-signed
    der.sequence(der.time(new Date(now.getTime() - CLOCK_SKEW_MS)), der.time(new Date(now.getTime() + validityDays * DAY_MS))),
    distinguishedName,
    new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    der.explicit(3, der.sequence(...extensions)),
  );
  // node:crypto emits the DER ECDSA-Sig-Value X.509 expects.
  const signature = sign('sha256', tbs, privateKey);
  const certDer = der.sequence(tbs, signatureAlgorithm, der.bitString(signature));

  const base64 = Buffer.from(certDer).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    fingerprint: fingerprintOfDer(certDer),
  };
}

/**
 * Writes cert (0644) and key (0600), each atomically. Checks both paths before writing either,
 * so a refusal never leaves a new key next to an old certificate.
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
    writeFileAtomic(keyPath, id.keyPem, 0o600, fs);
    writeFileAtomic(certPath, id.certPem, 0o644, fs);
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
      throw new IdentityError(`${what} file ${path} does not exist (create an identity with 'vpnctl init')`);
    }
    throw new IdentityError(`cannot read ${what} file ${path}: ${errorText(err)} (create an identity with 'vpnctl init')`);
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

/** CN and validity window, read from the DER: Node's subject string is escaped display text. */
function parseCertificateFields(certDer: Uint8Array, source: string): der.CertificateFields {
  try {
    return der.readCertificateFields(certDer);
  } catch (err) {
    throw new IdentityError(`${source} holds an unreadable certificate: ${errorText(err)}`);
  }
}

/**
 * Loads and cross-checks the node's certificate and key. Synchronous so the daemon and vpnctl can
 * call it during start-up validation. Does not check the validity window: use checkValidity, so
 * the caller decides between refusing to start and warning (vpnctl doctor).
 */
export function loadIdentity(certPath: string, keyPath: string, expectedFingerprint?: string): Identity {
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
  let matches = false;
  try {
    matches = cert.checkPrivateKey(privateKey);
  } catch {
    // Different key types (e.g. RSA key, EC cert) throw instead of returning false.
  }
  if (!matches) {
    throw new IdentityError(
      `private key ${keyPath} does not belong to certificate ${certPath}; ` +
        `use the key generated together with that certificate (or create a new pair with 'vpnctl init --force')`,
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
