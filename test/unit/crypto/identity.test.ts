import * as nodeFs from 'node:fs';
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createPrivateKey, X509Certificate, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IdentityError,
  certificateInfo,
  checkValidity,
  fingerprintOfDer,
  fingerprintOfPem,
  generateIdentity,
  isFingerprint,
  loadIdentity,
  writeIdentityFiles,
} from '../../../src/crypto/identity.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-identity-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function expectIdentityError(fn: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(IdentityError);
  for (const f of fragments) expect((caught as Error).message).toContain(f);
}

describe('fingerprints', () => {
  it('is the lowercase hex SHA-256 of the DER', () => {
    const der = new Uint8Array([1, 2, 3]);
    expect(fingerprintOfDer(der)).toBe(createHash('sha256').update(der).digest('hex'));
    expect(fingerprintOfDer(der)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('recognizes 64 hex characters in either case only', () => {
    expect(isFingerprint('a'.repeat(64))).toBe(true);
    expect(isFingerprint('A'.repeat(64))).toBe(true);
    expect(isFingerprint('a'.repeat(63))).toBe(false);
    expect(isFingerprint('g'.repeat(64))).toBe(false);
    expect(isFingerprint(` ${'a'.repeat(64)}`)).toBe(false);
  });

  it('refuses text that is not a PEM certificate', () => {
    expectIdentityError(() => fingerprintOfPem('hello'), 'not a PEM certificate');
  });
});

describe('generateIdentity', () => {
  it('creates an ECDSA P-256 self-signed certificate with the node name as CN', async () => {
    const now = new Date('2026-01-01T12:00:00Z');
    const id = await generateIdentity('node1', { now });
    const cert = new X509Certificate(id.certPem);
    expect(cert.subject).toBe('CN=node1');
    expect(cert.issuer).toBe('CN=node1');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe('DNS:node1');
    expect(id.fingerprint).toBe(fingerprintOfDer(cert.raw));
    expect(fingerprintOfPem(id.certPem)).toBe(id.fingerprint);
    expect(id.keyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(cert.checkPrivateKey(createPrivateKey(id.keyPem))).toBe(true);

    const info = certificateInfo(new Uint8Array(cert.raw));
    expect(info.commonName).toBe('node1');
    expect(info.notBefore.toISOString()).toBe('2026-01-01T11:00:00.000Z');
    expect(info.notAfter.getTime() - now.getTime()).toBe(3650 * 24 * 3600 * 1000);
  });

  it('gives every certificate its own key and serial', async () => {
    const a = await generateIdentity('same');
    const b = await generateIdentity('same');
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(new X509Certificate(b.certPem).serialNumber);
  });

  it('omits the DNS subjectAltName when the name is not a DNS name', async () => {
    const id = await generateIdentity('my node');
    const cert = new X509Certificate(id.certPem);
    expect(cert.subject).toBe('CN=my node');
    expect(cert.subjectAltName).toBeUndefined();
  });

  it('refuses empty names and control characters', async () => {
    await expect(generateIdentity('')).rejects.toThrow(IdentityError);
    await expect(generateIdentity('a\nb')).rejects.toThrow(/control characters/);
  });

  it('is accepted by openssl as a TLS certificate with a matching key', async () => {
    const id = await generateIdentity('node-ossl');
    writeFileSync(join(dir, 'c.pem'), id.certPem);
    writeFileSync(join(dir, 'k.pem'), id.keyPem);
    let text: string;
    try {
      text = execFileSync('openssl', ['x509', '-in', join(dir, 'c.pem'), '-noout', '-text'], { encoding: 'utf8' });
    } catch {
      return; // openssl not installed: the node:crypto checks above still cover the format
    }
    expect(text).toContain('ecdsa-with-SHA256');
    expect(text).toContain('prime256v1');
    expect(text).toContain('CA:FALSE');
    expect(text).toMatch(/Basic Constraints: critical/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toContain('DNS:node-ossl');
  });

  it('keeps quotes, backslashes, commas and non-ASCII in the CN verbatim', async () => {
    const name = 'a "b"\\c, d+e=ü';
    const id = await generateIdentity(name);
    expect(certificateInfo(new Uint8Array(new X509Certificate(id.certPem).raw)).commonName).toBe(name);
  });

  it('serves both ends of a mutual-TLS connection, each seeing the other\'s certificate', async () => {
    const serverId = await generateIdentity('server');
    const clientId = await generateIdentity('client');
    // Self-signed on both sides: trust is the fingerprint check, so chain verification is off.
    const server = createServer({ cert: serverId.certPem, key: serverId.keyPem, requestCert: true, rejectUnauthorized: false });
    const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      cert: clientId.certPem,
      key: clientId.keyPem,
      rejectUnauthorized: false,
    });
    try {
      await once(client, 'secureConnect');
      const [serverSide] = await accepted;
      expect(fingerprintOfDer(client.getPeerCertificate().raw)).toBe(serverId.fingerprint);
      expect(fingerprintOfDer(serverSide.getPeerCertificate().raw)).toBe(clientId.fingerprint);
      expect(certificateInfo(new Uint8Array(serverSide.getPeerCertificate().raw)).commonName).toBe('client');
      serverSide.destroy();
    } finally {
      client.destroy();
      server.close();
    }
  });
});

describe('writeIdentityFiles and loadIdentity', () => {
  it('round-trips with key 0600, cert 0644 and a 0700 key directory', async () => {
    const gen = await generateIdentity('node1');
    const certPath = join(dir, 'etc', 'certs', 'node.crt');
    const keyPath = join(dir, 'etc', 'certs', 'node.key');
    writeIdentityFiles(certPath, keyPath, gen);
    expect(mode(keyPath)).toBe(0o600);
    expect(mode(certPath)).toBe(0o644);
    expect(mode(join(dir, 'etc', 'certs'))).toBe(0o700);

    const id = loadIdentity(certPath, keyPath, gen.fingerprint);
    expect(id.name).toBe('node1');
    expect(id.fingerprint).toBe(gen.fingerprint);
    expect(fingerprintOfDer(id.certDer)).toBe(gen.fingerprint);
    expect(id.keyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(id.privateKey.asymmetricKeyType).toBe('ec');
    expect(checkValidity(id.notBefore, id.notAfter)).toBeNull();
    // An upper-case pin is the same fingerprint.
    expect(loadIdentity(certPath, keyPath, gen.fingerprint.toUpperCase()).fingerprint).toBe(gen.fingerprint);
  });

  it('refuses to overwrite either file without force, and overwrites with it', async () => {
    const first = await generateIdentity('one');
    const second = await generateIdentity('two');
    const certPath = join(dir, 'node.crt');
    const keyPath = join(dir, 'node.key');
    writeFileSync(keyPath, 'old key');
    expectIdentityError(() => writeIdentityFiles(certPath, keyPath, first), keyPath, '--force');
    // Neither file was touched by the refusal.
    expect(existsSync(certPath)).toBe(false);
    expect(readFileSync(keyPath, 'utf8')).toBe('old key');

    writeIdentityFiles(certPath, keyPath, first, { force: true });
    expectIdentityError(() => writeIdentityFiles(certPath, keyPath, second), certPath, '--force');
    writeIdentityFiles(certPath, keyPath, second, { force: true });
    expect(loadIdentity(certPath, keyPath).name).toBe('two');
    expect(mode(keyPath)).toBe(0o600);
  });

  it('replaces a pair so that a crash at any step leaves a usable identity (old, or new once loaded)', async () => {
    const [first, second] = await Promise.all([generateIdentity('one'), generateIdentity('two')]);
    const certPath = join(dir, 'node.crt');
    const keyPath = join(dir, 'node.key');
    // Each of the three renames (pending certificate, key, certificate into place) fails in turn.
    for (const failAt of [1, 2, 3]) {
      writeIdentityFiles(certPath, keyPath, first, { force: true });
      let renames = 0;
      const faulty = {
        ...nodeFs,
        renameSync: (from: nodeFs.PathLike, to: nodeFs.PathLike) => {
          if (++renames === failAt) throw Object.assign(new Error('injected crash'), { code: 'EIO' });
          nodeFs.renameSync(from, to);
        },
      };
      expect(() => writeIdentityFiles(certPath, keyPath, second, { force: true, fs: faulty })).toThrow('injected crash');
      // Before the key moved the old pair stands; after, loading finishes the swap.
      expect(loadIdentity(certPath, keyPath).name, `crash at rename ${failAt}`).toBe(failAt <= 2 ? 'one' : 'two');
      expect(existsSync(`${certPath}.pending`) && failAt === 3).toBe(false);
    }
  });

  it('names a missing file and suggests vpnctl init', () => {
    expectIdentityError(() => loadIdentity(join(dir, 'nope.crt'), join(dir, 'nope.key')), 'nope.crt', 'vpnctl init');
  });

  it('names a missing key file', async () => {
    const gen = await generateIdentity('node1');
    writeFileSync(join(dir, 'c.pem'), gen.certPem);
    expectIdentityError(() => loadIdentity(join(dir, 'c.pem'), join(dir, 'k.pem')), 'k.pem', 'does not exist');
  });

  it('refuses files that are not PEM', async () => {
    const gen = await generateIdentity('node1');
    writeFileSync(join(dir, 'c.pem'), 'not a cert');
    writeFileSync(join(dir, 'k.pem'), gen.keyPem);
    expectIdentityError(() => loadIdentity(join(dir, 'c.pem'), join(dir, 'k.pem')), 'c.pem', 'not a PEM certificate');
    writeFileSync(join(dir, 'c.pem'), gen.certPem);
    writeFileSync(join(dir, 'k.pem'), 'garbage');
    expectIdentityError(() => loadIdentity(join(dir, 'c.pem'), join(dir, 'k.pem')), 'k.pem', 'not a PEM private key');
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const a = await generateIdentity('a');
    const b = await generateIdentity('b');
    writeFileSync(join(dir, 'c.pem'), a.certPem);
    writeFileSync(join(dir, 'k.pem'), b.keyPem);
    expectIdentityError(() => loadIdentity(join(dir, 'c.pem'), join(dir, 'k.pem')), 'does not belong to certificate');
  });

  it('refuses a certificate whose fingerprint differs from the configured one, showing both', async () => {
    const gen = await generateIdentity('a');
    writeFileSync(join(dir, 'c.pem'), gen.certPem);
    writeFileSync(join(dir, 'k.pem'), gen.keyPem);
    const pinned = 'ab'.repeat(32);
    expectIdentityError(() => loadIdentity(join(dir, 'c.pem'), join(dir, 'k.pem'), pinned), gen.fingerprint, pinned);
  });

  it('accepts a SEC1 "EC PRIVATE KEY" and normalizes it to PKCS#8', async () => {
    const gen = await generateIdentity('sec1');
    const sec1 = createPrivateKey(gen.keyPem).export({ format: 'pem', type: 'sec1' }).toString();
    expect(sec1).toContain('-----BEGIN EC PRIVATE KEY-----');
    writeFileSync(join(dir, 'c.pem'), gen.certPem);
    writeFileSync(join(dir, 'k.pem'), sec1);
    const id = loadIdentity(join(dir, 'c.pem'), join(dir, 'k.pem'));
    expect(id.name).toBe('sec1');
    expect(id.keyPem).toContain('-----BEGIN PRIVATE KEY-----');
  });
});

describe('checkValidity', () => {
  const notBefore = new Date('2026-01-01T00:00:00Z');
  const notAfter = new Date('2027-01-01T00:00:00Z');

  it('accepts a time inside the window, edges included', () => {
    expect(checkValidity(notBefore, notAfter, new Date('2026-06-01T00:00:00Z'))).toBeNull();
    expect(checkValidity(notBefore, notAfter, notBefore)).toBeNull();
    expect(checkValidity(notBefore, notAfter, notAfter)).toBeNull();
  });

  it('reports expiry with the date', () => {
    expect(checkValidity(notBefore, notAfter, new Date('2027-01-02T00:00:00Z'))).toBe(
      'certificate expired on 2027-01-01T00:00:00.000Z',
    );
  });

  it('reports a certificate that is not valid yet', () => {
    expect(checkValidity(notBefore, notAfter, new Date('2025-12-31T00:00:00Z'))).toContain(
      'not valid until 2026-01-01T00:00:00.000Z',
    );
  });

  it('reports an expired generated certificate', async () => {
    const gen = await generateIdentity('short', { validityDays: 1, now: new Date('2020-01-01T00:00:00Z') });
    const info = certificateInfo(new Uint8Array(new X509Certificate(gen.certPem).raw));
    expect(checkValidity(info.notBefore, info.notAfter, new Date('2020-01-03T00:00:00Z'))).toMatch(/^certificate expired on 2020-01-02/);
  });
});

describe('certificateInfo', () => {
  it('refuses bytes that are not a certificate', () => {
    expectIdentityError(() => certificateInfo(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])), 'peer certificate');
    expectIdentityError(() => certificateInfo(new Uint8Array(0)), 'peer certificate');
    // A length field claiming far more than is there.
    expectIdentityError(() => certificateInfo(new Uint8Array([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x00])), 'peer certificate');
  });

  it('reads a GeneralizedTime notAfter (years from 2050)', async () => {
    const gen = await generateIdentity('far', { now: new Date('2045-06-01T00:00:00Z'), validityDays: 3650 });
    const info = certificateInfo(new Uint8Array(new X509Certificate(gen.certPem).raw));
    expect(info.notAfter.getUTCFullYear()).toBe(2055);
    expect(info.notBefore.toISOString()).toBe('2045-05-31T23:00:00.000Z');
  });

  it('throws only IdentityError for 1000 corrupted certificates', async () => {
    const der = new Uint8Array(new X509Certificate((await generateIdentity('fuzz')).certPem).raw);
    let seed = 0x9e3779b9;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 1000; i++) {
      const bytes = new Uint8Array(der);
      for (let k = rand(4) + 1; k > 0; k--) bytes[rand(bytes.length)] = rand(256);
      const input = i % 3 === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes;
      try {
        const info = certificateInfo(input);
        expect(info.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      } catch (err) {
        expect(err).toBeInstanceOf(IdentityError);
      }
    }
  });
});
