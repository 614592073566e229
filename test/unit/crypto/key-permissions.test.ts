// The private key's mode check (src/crypto/key-permissions.ts), on real files. Tests run as root,
// who can read any file, so every file gets an explicit mode: only the bits are judged.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityError } from '../../../src/crypto/identity.js';
import { privateKeyModeProblem, refuseExposedPrivateKey } from '../../../src/crypto/key-permissions.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-key-mode-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function keyFile(mode: number, name = 'node.key'): string {
  const path = join(dir, name);
  writeFileSync(path, '-----BEGIN PRIVATE KEY-----\n');
  chmodSync(path, mode);
  return path;
}

describe('privateKeyModeProblem', () => {
  it.each(['0600', '0400', '0700', '0200'])('accepts %s: owner only', (mode) => {
    expect(privateKeyModeProblem(keyFile(parseInt(mode, 8)))).toBeNull();
  });

  it.each([
    ['0644', 'its group and all users'],
    ['0640', 'its group'],
    ['0604', 'all users'],
    ['0620', 'its group'],
    ['0602', 'all users'],
    ['0660', 'its group'],
    ['0666', 'its group and all users'],
    ['0610', 'its group'],
  ])('refuses %s, saying who can get at it (%s) and the chmod that fixes it', (mode, who) => {
    const path = keyFile(parseInt(mode, 8));
    const problem = privateKeyModeProblem(path);
    expect(problem).toContain(`private key file ${path} is mode ${mode}`);
    expect(problem).toContain(`accessible to ${who}`);
    expect(problem).toContain(`chmod 600 ${path}`);
  });

  it('judges the file a symlink points to', () => {
    const target = keyFile(0o644, 'real.key');
    const link = join(dir, 'node.key');
    symlinkSync(target, link);
    expect(privateKeyModeProblem(link)).toContain(`chmod 600 ${link}`);
    chmodSync(target, 0o600);
    expect(privateKeyModeProblem(link)).toBeNull();
  });

  it('quotes a path the shell would split', () => {
    mkdirSync(join(dir, 'my keys'));
    const path = keyFile(0o644, 'my keys/node.key');
    expect(privateKeyModeProblem(path)).toContain(`chmod 600 '${path}'`);
  });

  it('leaves a missing file to loadIdentity, which names it and suggests vpnctl init', () => {
    expect(privateKeyModeProblem(join(dir, 'nope.key'))).toBeNull();
  });
});

describe('refuseExposedPrivateKey', () => {
  it('throws an IdentityError with the problem', () => {
    const path = keyFile(0o644);
    expect(() => refuseExposedPrivateKey(path)).toThrow(IdentityError);
    expect(() => refuseExposedPrivateKey(path)).toThrow(`chmod 600 ${path}`);
  });

  it('returns for a key only its owner can read', () => {
    expect(() => refuseExposedPrivateKey(keyFile(0o600))).not.toThrow();
  });
});
