import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, LedgerError, parseLedger, secretHash, type LedgerFs } from '../../../src/invite/ledger.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);
const DAY = 24 * 3600;
const SECRET = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const OTHER = Uint8Array.from({ length: 16 }, (_, i) => 200 - i);
const BOB = { name: 'bob', fingerprint: 'b'.repeat(64) };
const CAROL = { name: 'carol', fingerprint: 'c'.repeat(64) };
const DAVE = { name: 'dave', fingerprint: 'd'.repeat(64) };
const PATH = '/etc/vibepn/invites.json';

/** An in-memory file with hooks: a write can be made to fail, or held until the test lets it go. */
class MemoryFs implements LedgerFs {
  text: string | undefined;
  writes = 0;
  failNext: Error | undefined;
  hold: Promise<void> | undefined;

  async read(): Promise<string | undefined> {
    return this.text;
  }

  async write(_path: string, text: string): Promise<void> {
    this.writes++;
    if (this.hold) await this.hold;
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    this.text = text;
  }
}

async function issued(uses = 1, expiresAt = NOW_S + DAY): Promise<{ ledger: Ledger; fs: MemoryFs }> {
  const fs = new MemoryFs();
  const ledger = new Ledger(PATH, fs);
  await ledger.issue({ secret: SECRET, network: 'corp', uses, expiresAt });
  return { ledger, fs };
}

describe('Ledger', () => {
  it('keeps the subnet routes an invite grants and hands them to each redemption, a retry included', async () => {
    const fs = new MemoryFs();
    const ledger = new Ledger(PATH, fs);
    await ledger.issue({ secret: SECRET, network: 'corp', uses: 2, expiresAt: NOW_S + DAY, routes: ['192.168.50.0/24'] });
    await ledger.issue({ secret: OTHER, network: 'corp', uses: 1, expiresAt: NOW_S + DAY });
    expect(await ledger.redeem(SECRET, BOB, NOW)).toMatchObject({ ok: true, routes: ['192.168.50.0/24'] });
    expect(await ledger.redeem(SECRET, BOB, NOW)).toMatchObject({ ok: true, repeated: true, routes: ['192.168.50.0/24'] });
    expect(await ledger.redeem(OTHER, CAROL, NOW)).toMatchObject({ ok: true, routes: [] });
    // An entry without routes is written without the key (files from before it still read).
    const file = JSON.parse(fs.text!) as { invites: Array<Record<string, unknown>> };
    expect(file.invites[1]).not.toHaveProperty('routes');
    expect(parseLedger(fs.text!)).not.toBeTypeOf('string');
    await expect(ledger.issue({ secret: Uint8Array.from({ length: 16 }, () => 9), network: 'corp', uses: 1, expiresAt: NOW_S + DAY, routes: ['192.168.50.1/24'] })).rejects.toThrow(/--routes .*host bits/);
    const tampered = fs.text!.replace('192.168.50.0/24', '192.168.50.7/24');
    expect(parseLedger(tampered)).toMatch(/invites\[0\]\.routes: /);
  });

  it('cancels an invite by the start of its id: then unknown; a short, unknown or ambiguous id is refused', async () => {
    const { ledger } = await issued(2);
    const id = secretHash(SECRET).slice(0, 8);
    await expect(ledger.cancel('abc')).rejects.toThrow(/not an invite id/);
    await expect(ledger.cancel('00000000')).rejects.toThrow(/no invite with id 00000000/);
    expect((await ledger.cancel(id.toUpperCase())).uses_left).toBe(2);
    expect(await ledger.redeem(SECRET, BOB, NOW)).toMatchObject({ ok: false, code: 'invite.invalid' });
    expect((await ledger.read()).invites).toEqual([]);
  });

  it('refuses a redemption presented for another network without spending its use', async () => {
    const { ledger, fs } = await issued(1);
    expect(await ledger.redeem(SECRET, BOB, NOW, 'lab')).toMatchObject({ ok: false, code: 'invite.invalid' });
    expect((JSON.parse(fs.text!) as { invites: Array<{ uses_left: number }> }).invites[0]!.uses_left).toBe(1);
  });

  it('starts empty when there is no file, and keeps only the secret\'s hash', async () => {
    const { ledger, fs } = await issued(2);
    const file = JSON.parse(fs.text!);
    expect(file).toEqual({
      version: 1,
      invites: [{ secret_sha256: secretHash(SECRET), network: 'corp', uses_left: 2, expires_at: NOW_S + DAY, redeemed: [] }],
    });
    expect(fs.text).not.toContain(Buffer.from(SECRET).toString('hex'));
    expect((await ledger.read()).invites).toHaveLength(1);
  });

  it('admits exactly K joiners for K uses, then refuses as exhausted', async () => {
    const { ledger, fs } = await issued(2);
    expect(await ledger.redeem(SECRET, BOB, NOW)).toEqual({ ok: true, network: 'corp', repeated: false, routes: [] });
    expect(await ledger.redeem(SECRET, CAROL, NOW)).toEqual({ ok: true, network: 'corp', repeated: false, routes: [] });
    expect(await ledger.redeem(SECRET, DAVE, NOW)).toMatchObject({ ok: false, code: 'invite.exhausted' });
    const entry = (await ledger.read()).invites[0]!;
    expect(entry.uses_left).toBe(0);
    expect(entry.redeemed).toEqual([
      { name: 'bob', fingerprint: BOB.fingerprint, at: NOW_S },
      { name: 'carol', fingerprint: CAROL.fingerprint, at: NOW_S },
    ]);
    expect(fs.writes).toBe(3); // issue + two redemptions; a refusal writes nothing
  });

  it('refuses an unknown secret and one of the wrong size as invalid', async () => {
    const { ledger } = await issued();
    expect(await ledger.redeem(OTHER, BOB, NOW)).toMatchObject({ ok: false, code: 'invite.invalid', message: expect.stringMatching(/not known here/) });
    expect(await ledger.redeem(new Uint8Array(15), BOB, NOW)).toMatchObject({ ok: false, code: 'invite.invalid' });
    expect(await ledger.redeem(SECRET, { name: 'x', fingerprint: 'zz' }, NOW)).toMatchObject({ ok: false, code: 'invite.invalid' });
  });

  it('refuses from the expiry second on, naming the time', async () => {
    const { ledger } = await issued(1, NOW_S);
    expect(await ledger.redeem(SECRET, BOB, NOW)).toEqual({
      ok: false,
      code: 'invite.expired',
      message: 'the invite expired at 2026-03-01T12:00:00.000Z; ask the admin for a new one',
    });
    expect(await ledger.redeem(SECRET, BOB, new Date(NOW.getTime() - 1000))).toMatchObject({ ok: true });
  });

  it('admits exactly one of two joiners racing for a single-use invite', async () => {
    const { ledger } = await issued(1);
    const results = await Promise.all([ledger.redeem(SECRET, BOB, NOW), ledger.redeem(SECRET, CAROL, NOW)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.code === 'invite.exhausted')).toHaveLength(1);
    expect((await ledger.read()).invites[0]!.redeemed).toHaveLength(1);
  });

  it('keeps the second redemption waiting until the first one\'s write is done', async () => {
    const { ledger, fs } = await issued(1);
    let release!: () => void;
    fs.hold = new Promise((resolve) => (release = resolve));
    const first = ledger.redeem(SECRET, BOB, NOW);
    const second = ledger.redeem(SECRET, CAROL, NOW);
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(secondDone).toBe(false);
    fs.hold = undefined;
    release();
    expect(await first).toMatchObject({ ok: true });
    expect(await second).toMatchObject({ ok: false, code: 'invite.exhausted' });
  });

  it('does not count a redemption whose write failed, and the next one still can', async () => {
    const { ledger, fs } = await issued(1);
    fs.failNext = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const failed = ledger.redeem(SECRET, BOB, NOW);
    await expect(failed).rejects.toThrow(LedgerError);
    await expect(failed).rejects.toThrow(`cannot write the invite ledger ${PATH} (nothing was changed): ENOSPC: no space left on device`);
    expect((await ledger.read()).invites[0]!).toMatchObject({ uses_left: 1, redeemed: [] });
    expect(await ledger.redeem(SECRET, CAROL, NOW)).toEqual({ ok: true, network: 'corp', repeated: false, routes: [] });
  });

  it('lets the joiner racing a failed write have the use', async () => {
    const { ledger, fs } = await issued(1);
    fs.failNext = new Error('EIO');
    const [a, b] = await Promise.allSettled([ledger.redeem(SECRET, BOB, NOW), ledger.redeem(SECRET, CAROL, NOW)]);
    expect(a.status).toBe('rejected');
    expect(b).toMatchObject({ status: 'fulfilled', value: { ok: true, repeated: false } });
  });

  it('admits a retry by the same fingerprint without spending a use, even once used up or expired', async () => {
    const { ledger, fs } = await issued(1);
    expect(await ledger.redeem(SECRET, BOB, NOW)).toMatchObject({ ok: true, repeated: false });
    const writes = fs.writes;
    expect(await ledger.redeem(SECRET, BOB, NOW)).toEqual({ ok: true, network: 'corp', repeated: true, routes: [] });
    expect(await ledger.redeem(SECRET, { ...BOB, fingerprint: BOB.fingerprint.toUpperCase() }, new Date(NOW.getTime() + 2 * DAY * 1000))).toMatchObject({
      ok: true,
      repeated: true,
    });
    expect(fs.writes).toBe(writes);
    expect(await ledger.redeem(SECRET, CAROL, NOW)).toMatchObject({ ok: false, code: 'invite.exhausted' });
  });

  it('refuses bad issue requests and a secret issued twice', async () => {
    const { ledger } = await issued();
    const base = { secret: OTHER, network: 'corp', uses: 1, expiresAt: NOW_S + DAY };
    await expect(ledger.issue({ ...base, secret: SECRET })).rejects.toThrow(/already in .*make a new random secret/);
    await expect(ledger.issue({ ...base, uses: 0 })).rejects.toThrow(/--uses 0 must be a whole number 1\.\.1000/);
    await expect(ledger.issue({ ...base, network: 'a b' })).rejects.toThrow(/not a valid network name/);
    await expect(ledger.issue({ ...base, expiresAt: -5 })).rejects.toThrow(/expiry/);
    await expect(ledger.issue({ ...base, secret: new Uint8Array(8) })).rejects.toThrow(/16 random bytes/);
    expect((await ledger.read()).invites).toHaveLength(1);
  });

  it('refuses a damaged file, naming it and the fix, and goes on after one failure', async () => {
    const fs = new MemoryFs();
    fs.text = '{"version": 1, "invites": [';
    const ledger = new Ledger(PATH, fs);
    await expect(ledger.redeem(SECRET, BOB, NOW)).rejects.toThrow(`the invite ledger ${PATH} is damaged (not JSON`);
    await expect(ledger.redeem(SECRET, BOB, NOW)).rejects.toThrow(/restore it from a backup, or delete it/);
    fs.text = undefined;
    expect(await ledger.redeem(SECRET, BOB, NOW)).toMatchObject({ ok: false, code: 'invite.invalid' });
  });

  it('names the read error', async () => {
    const ledger = new Ledger(PATH, { read: () => Promise.reject(new Error('EACCES: permission denied')), write: () => Promise.resolve() });
    await expect(ledger.read()).rejects.toThrow(`cannot read the invite ledger ${PATH}: EACCES: permission denied`);
  });
});

describe('parseLedger', () => {
  const entry = { secret_sha256: 'a'.repeat(64), network: 'corp', uses_left: 1, expires_at: NOW_S, redeemed: [{ name: 'bob', fingerprint: 'b'.repeat(64), at: NOW_S }] };
  const text = (over: Record<string, unknown>, top: Record<string, unknown> = {}) => JSON.stringify({ version: 1, invites: [{ ...entry, ...over }], ...top });

  it('reads a valid ledger', () => {
    expect(parseLedger(text({}))).toEqual({ version: 1, invites: [entry] });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['not an object', '[]', /expected a JSON object/],
    ['other version', text({}, { version: 2 }), /version 2 is not 1/],
    ['unknown top key', text({}, { extra: 1 }), /the file has an unknown key 'extra'/],
    ['unknown entry key', text({ usesLeft: 1 }), /invites\[0\] has an unknown key 'usesLeft'/],
    ['missing key', JSON.stringify({ version: 1, invites: [{ network: 'corp' }] }), /invites\[0\] has no 'secret_sha256'/],
    ['bad hash', text({ secret_sha256: 'A'.repeat(64) }), /invites\[0\]\.secret_sha256/],
    ['bad network', text({ network: '' }), /invites\[0\]\.network/],
    ['negative uses', text({ uses_left: -1 }), /invites\[0\]\.uses_left/],
    ['fractional uses', text({ uses_left: 0.5 }), /invites\[0\]\.uses_left/],
    ['string expiry', text({ expires_at: '2026' }), /invites\[0\]\.expires_at/],
    ['redeemed not a list', text({ redeemed: {} }), /invites\[0\]\.redeemed is not a list/],
    ['bad redeemer', text({ redeemed: [{ name: 'x', fingerprint: 'x', at: 0 }] }), /invites\[0\]\.redeemed\[0\]\.fingerprint/],
    ['duplicate secret', JSON.stringify({ version: 1, invites: [entry, entry] }), /invites\[1\]\.secret_sha256 appears twice/],
  ];
  for (const [what, input, message] of bad) {
    it(`refuses ${what}`, () => {
      const r = parseLedger(input);
      expect(typeof r).toBe('string');
      expect(r).toMatch(message);
    });
  }
});

describe('Ledger on a real file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vibepn-ledger-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the ledger 0600, atomically (no temp file left), and reads it back in a new Ledger', async () => {
    const path = join(dir, 'invites.json');
    const ledger = new Ledger(path);
    await ledger.issue({ secret: SECRET, network: 'corp', uses: 1, expiresAt: NOW_S + DAY });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await new Ledger(path).redeem(SECRET, BOB, NOW)).toMatchObject({ ok: true });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['invites.json']);
    expect(await new Ledger(path).redeem(SECRET, CAROL, NOW)).toMatchObject({ ok: false, code: 'invite.exhausted' });
    expect(JSON.parse(readFileSync(path, 'utf8')).invites[0].redeemed[0].name).toBe('bob');
  });

  it('makes a 0644 ledger 0600 on its next write', async () => {
    const path = join(dir, 'invites.json');
    writeFileSync(path, JSON.stringify({ version: 1, invites: [] }), { mode: 0o644 });
    await new Ledger(path).issue({ secret: SECRET, network: 'corp', uses: 1, expiresAt: NOW_S + DAY });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('treats a missing file as empty and a corrupt one as an error naming it', async () => {
    const path = join(dir, 'invites.json');
    expect(await new Ledger(path).read()).toEqual({ version: 1, invites: [] });
    writeFileSync(path, 'garbage');
    await expect(new Ledger(path).read()).rejects.toThrow(`the invite ledger ${path} is damaged`);
  });
});
