import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustStore, TrustStoreError } from '../../../src/crypto/trust.js';
import type { AtomicFsAsync } from '../../../src/crypto/atomic-file.js';

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

/** check() then learn() on first use: what the daemon does for a connection it may learn from. */
async function verify(store: TrustStore, name: string, fingerprint: string, pinned?: string) {
  const decision = store.check(name, fingerprint, pinned);
  if (decision.ok && decision.how === 'first-use') await store.learn(name, fingerprint);
  return decision;
}

describe('TrustStore', () => {
  it('is empty when the file does not exist, without creating it', () => {
    const store = new TrustStore(path);
    expect(store.entries()).toEqual({});
    expect(store.get('node2')).toBeUndefined();
    expect(fs.existsSync(path)).toBe(false);
  });

  it('stores a first-use fingerprint, persists it, and accepts it again', async () => {
    const store = new TrustStore(path);
    expect(await verify(store, 'node2', FP_A)).toEqual({ ok: true, how: 'first-use' });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ node2: FP_A });

    const reopened = new TrustStore(path);
    expect(reopened.get('node2')).toBe(FP_A);
    expect(reopened.check('node2', FP_A)).toEqual({ ok: true, how: 'known' });
    expect(reopened.check('node2', FP_A.toUpperCase())).toEqual({ ok: true, how: 'known' });
  });

  it('check() alone decides without writing anything', () => {
    const store = new TrustStore(path);
    expect(store.check('node2', FP_A)).toEqual({ ok: true, how: 'first-use' });
    expect(store.get('node2')).toBeUndefined();
    expect(fs.existsSync(path)).toBe(false);
  });

  it('creates the directory 0700 and the file 0600', async () => {
    await new TrustStore(path).learn('node2', FP_A);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('refuses a different fingerprint for a known name, naming both and the fix', async () => {
    const store = new TrustStore(path);
    await verify(store, 'node2', FP_A);
    const decision = await verify(store, 'node2', FP_B);
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.reason).toBe('tofu-mismatch');
    expect(decision.message).toContain('node2');
    expect(decision.message).toContain(FP_A);
    expect(decision.message).toContain(FP_B);
    expect(decision.message).toContain(`remove its entry from ${path} and run vpnctl reload`);
    // The refusal did not overwrite what was learned.
    expect(new TrustStore(path).get('node2')).toBe(FP_A);
  });

  it('lets a pin win over a different stored value, without writing the store', async () => {
    const store = new TrustStore(path);
    await store.learn('node2', FP_A);
    const before = readFileSync(path, 'utf8');
    expect(await verify(store, 'node2', FP_B, FP_B)).toEqual({ ok: true, how: 'pinned' });
    expect(readFileSync(path, 'utf8')).toBe(before);
    // A pinned peer never seen before is not recorded either.
    expect(await verify(store, 'node3', FP_C, FP_C.toUpperCase())).toEqual({ ok: true, how: 'pinned' });
    expect(store.get('node3')).toBeUndefined();
  });

  it('refuses a fingerprint that differs from the pin even if the store knows it', async () => {
    const store = new TrustStore(path);
    await store.learn('node2', FP_A);
    const decision = store.check('node2', FP_A, FP_B);
    expect(decision).toMatchObject({ ok: false, reason: 'pin-mismatch' });
    if (decision.ok) return;
    expect(decision.message).toContain(FP_A);
    expect(decision.message).toContain(FP_B);
  });

  it('finds a name by fingerprint, and forgets a removed peer', async () => {
    const store = new TrustStore(path);
    await store.learn('node2', FP_A);
    await store.learn('node3', FP_B.toUpperCase());
    expect(store.findName(FP_B)).toBe('node3');
    expect(store.findName(FP_A.toUpperCase())).toBe('node2');
    expect(store.findName(FP_C)).toBeUndefined();
    expect(await store.remove('node2')).toBe(true);
    expect(await store.remove('node2')).toBe(false);
    expect(new TrustStore(path).entries()).toEqual({ node3: FP_B });
    expect(store.check('node2', FP_C)).toEqual({ ok: true, how: 'first-use' });
  });

  it('reads the file once: hand edits take effect on reload(), not per handshake', async () => {
    const store = new TrustStore(path);
    await verify(store, 'node2', FP_A);
    writeFileSync(path, JSON.stringify({}));
    expect(store.check('node2', FP_B)).toMatchObject({ ok: false, reason: 'tofu-mismatch' });
    await store.reload();
    expect(store.check('node2', FP_B)).toEqual({ ok: true, how: 'first-use' });
  });

  it('reload() waits for a first use still being written, so it is not lost', async () => {
    const store = new TrustStore(path);
    const writing = store.learn('node2', FP_A);
    await store.reload();
    expect(store.get('node2')).toBe(FP_A);
    await writing;
  });

  it('counts a first use at once, so a racing second key for the same name is refused', async () => {
    const store = new TrustStore(path);
    const writing = store.learn('node2', FP_A);
    expect(store.check('node2', FP_B)).toMatchObject({ ok: false, reason: 'tofu-mismatch' });
    await writing;
  });

  it('writes one learned peer after another, each write holding all of them', async () => {
    const store = new TrustStore(path);
    await Promise.all([store.learn('node2', FP_A), store.learn('node3', FP_B), store.learn('node4', FP_C)]);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ node2: FP_A, node3: FP_B, node4: FP_C });
  });

  it('refuses to learn an invalid fingerprint', async () => {
    await expect(new TrustStore(path).learn('node2', 'zz')).rejects.toThrow(TrustStoreError);
  });

  it.each([
    ['not JSON', '{ nope'],
    ['an array', '[]'],
    ['a non-fingerprint value', JSON.stringify({ node2: 'short' })],
    ['a non-string value', JSON.stringify({ node2: 42 })],
  ])('refuses a corrupt file (%s), naming the file, and never overwrites it', async (_what, content) => {
    mkdirSync(join(dir, 'state'));
    writeFileSync(path, content);
    const store = new TrustStore(path);
    expect(() => store.get('node2')).toThrow(TrustStoreError);
    expect(() => store.check('node2', FP_A)).toThrow(path);
    await expect(store.reload()).rejects.toThrow(TrustStoreError);
    expect(readFileSync(path, 'utf8')).toBe(content);
  });

  it('leaves the old file intact, no temp file behind, and the entry not trusted when the write fails', async () => {
    await new TrustStore(path).learn('node2', FP_A);
    const before = readFileSync(path, 'utf8');

    for (const failing of ['write', 'sync', 'rename'] as const) {
      const inject = (): never => {
        throw Object.assign(new Error(`injected ${failing} failure`), { code: 'EIO' });
      };
      const faulty: AtomicFsAsync = {
        mkdir: (p, o) => fs.promises.mkdir(p, o),
        unlink: (p) => fs.promises.unlink(p),
        rename: failing === 'rename' ? async () => inject() : (a, b) => fs.promises.rename(a, b),
        open: async (p, flags, mode) => {
          const handle = await fs.promises.open(p, flags, mode);
          return {
            chmod: (m: number) => handle.chmod(m),
            write: failing === 'write' ? async () => inject() : (...args: Parameters<typeof handle.write>) => handle.write(...args),
            sync: failing === 'sync' ? async () => inject() : () => handle.sync(),
            close: () => handle.close(),
          } as unknown as fs.promises.FileHandle;
        },
      };
      const store = new TrustStore(path, { fs: faulty });
      await expect(store.learn('node3', FP_B)).rejects.toThrow(`injected ${failing} failure`);
      await expect(store.learn('node3', FP_B)).rejects.toThrow(TrustStoreError);
      // Not on disk, so not trusted: the next connection is a first use again.
      expect(store.get('node3')).toBeUndefined();
      expect(store.check('node3', FP_C)).toEqual({ ok: true, how: 'first-use' });
      expect(readFileSync(path, 'utf8')).toBe(before);
      expect(readdirSync(join(dir, 'state'))).toEqual(['known_peers.json']);
    }
    expect(new TrustStore(path).entries()).toEqual({ node2: FP_A });
  });
});
