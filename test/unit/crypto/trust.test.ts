import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustStore, TrustStoreError } from '../../../src/crypto/trust.js';
import type { AtomicFs } from '../../../src/crypto/atomic-file.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const FP_C = 'c'.repeat(64);

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-trust-'));
  path = join(dir, 'state', 'known_peers.json');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('TrustStore', () => {
  it('is empty when the file does not exist, without creating it', () => {
    const store = new TrustStore(path);
    expect(store.entries()).toEqual({});
    expect(store.get('node2')).toBeUndefined();
    expect(fs.existsSync(path)).toBe(false);
  });

  it('stores a first-use fingerprint, persists it, and accepts it again', () => {
    const store = new TrustStore(path);
    expect(store.verify('node2', FP_A)).toEqual({ ok: true, how: 'first-use' });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ node2: FP_A });

    const reopened = new TrustStore(path);
    expect(reopened.get('node2')).toBe(FP_A);
    expect(reopened.verify('node2', FP_A)).toEqual({ ok: true, how: 'known' });
    expect(reopened.verify('node2', FP_A.toUpperCase())).toEqual({ ok: true, how: 'known' });
  });

  it('creates the directory 0700 and the file 0600', () => {
    new TrustStore(path).verify('node2', FP_A);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('refuses a different fingerprint for a known name, naming both and the fix', () => {
    const store = new TrustStore(path);
    store.verify('node2', FP_A);
    const decision = store.verify('node2', FP_B);
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.reason).toBe('tofu-mismatch');
    expect(decision.message).toContain('node2');
    expect(decision.message).toContain(FP_A);
    expect(decision.message).toContain(FP_B);
    expect(decision.message).toContain(`remove its entry from ${path}`);
    // The refusal did not overwrite what was learned.
    expect(new TrustStore(path).get('node2')).toBe(FP_A);
  });

  it('lets a pin win over a different stored value, without writing the store', () => {
    const store = new TrustStore(path);
    store.set('node2', FP_A);
    const before = readFileSync(path, 'utf8');
    expect(store.verify('node2', FP_B, FP_B)).toEqual({ ok: true, how: 'pinned' });
    expect(readFileSync(path, 'utf8')).toBe(before);
    // A pinned peer never seen before is not recorded either.
    expect(store.verify('node3', FP_C, FP_C.toUpperCase())).toEqual({ ok: true, how: 'pinned' });
    expect(store.get('node3')).toBeUndefined();
  });

  it('refuses a fingerprint that differs from the pin even if the store knows it', () => {
    const store = new TrustStore(path);
    store.set('node2', FP_A);
    const decision = store.verify('node2', FP_A, FP_B);
    expect(decision).toMatchObject({ ok: false, reason: 'pin-mismatch' });
    if (decision.ok) return;
    expect(decision.message).toContain(FP_A);
    expect(decision.message).toContain(FP_B);
  });

  it('finds a name by fingerprint, and forgets a removed peer', () => {
    const store = new TrustStore(path);
    store.set('node2', FP_A);
    store.set('node3', FP_B.toUpperCase());
    expect(store.findName(FP_B)).toBe('node3');
    expect(store.findName(FP_A.toUpperCase())).toBe('node2');
    expect(store.findName(FP_C)).toBeUndefined();
    expect(store.remove('node2')).toBe(true);
    expect(store.remove('node2')).toBe(false);
    expect(new TrustStore(path).entries()).toEqual({ node3: FP_B });
    expect(store.verify('node2', FP_C)).toEqual({ ok: true, how: 'first-use' });
  });

  it('sees hand edits to the file without being reopened', () => {
    const store = new TrustStore(path);
    store.verify('node2', FP_A);
    writeFileSync(path, JSON.stringify({}));
    expect(store.verify('node2', FP_B)).toEqual({ ok: true, how: 'first-use' });
  });

  it('refuses to set an invalid fingerprint', () => {
    expect(() => new TrustStore(path).set('node2', 'zz')).toThrow(TrustStoreError);
  });

  it.each([
    ['not JSON', '{ nope'],
    ['an array', '[]'],
    ['a non-fingerprint value', JSON.stringify({ node2: 'short' })],
    ['a non-string value', JSON.stringify({ node2: 42 })],
  ])('refuses a corrupt file (%s), naming the file, and never overwrites it', (_what, content) => {
    mkdirSync(join(dir, 'state'));
    writeFileSync(path, content);
    const store = new TrustStore(path);
    expect(() => store.get('node2')).toThrow(TrustStoreError);
    expect(() => store.verify('node2', FP_A)).toThrow(path);
    expect(readFileSync(path, 'utf8')).toBe(content);
  });

  it('leaves the old file intact, and no temp file behind, when the write fails', () => {
    new TrustStore(path).set('node2', FP_A);
    const before = readFileSync(path, 'utf8');

    for (const failing of ['writeSync', 'fsyncSync', 'renameSync'] as const) {
      const faulty: AtomicFs = {
        ...fs,
        [failing]: () => {
          throw Object.assign(new Error(`injected ${failing} failure`), { code: 'EIO' });
        },
      };
      const store = new TrustStore(path, { fs: faulty });
      expect(() => store.verify('node3', FP_B)).toThrow(`injected ${failing} failure`);
      expect(() => store.set('node3', FP_B)).toThrow(TrustStoreError);
      expect(readFileSync(path, 'utf8')).toBe(before);
      expect(readdirSync(join(dir, 'state'))).toEqual(['known_peers.json']);
    }
    expect(new TrustStore(path).entries()).toEqual({ node2: FP_A });
  });
});
