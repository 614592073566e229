// Two processes share the ledger: vpnctl issues invites while the daemon redeems them. Two Ledger
// objects on one path stand for them here (each has its own in-process queue, so only the lock
// file keeps their read-change-write steps apart). Without it, one's write would drop the
// other's change: an issued invite lost, or a spent use handed out again.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '../../../src/invite/ledger.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-ledger-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const later = () => Math.floor(Date.now() / 1000) + 3600;

describe('Ledger across processes (lock file)', () => {
  it('interleaved issues and redemptions from two Ledgers on one file lose nothing', async () => {
    const path = join(dir, 'invites.json');
    const vpnctl = new Ledger(path);
    const daemon = new Ledger(path);
    const spendable = randomBytes(16);
    await vpnctl.issue({ secret: spendable, network: 'corp', uses: 20, expiresAt: later() });
    const issued = Array.from({ length: 20 }, () => randomBytes(16));
    const results = await Promise.all([
      ...issued.map((secret) => vpnctl.issue({ secret, network: 'corp', uses: 1, expiresAt: later() })),
      ...Array.from({ length: 20 }, (_, i) => daemon.redeem(spendable, { name: `n${i}`, fingerprint: i.toString(16).padStart(64, '0') }, new Date())),
    ]);
    expect(results.slice(20).every((r) => 'ok' in r && r.ok)).toBe(true);
    const ledger = await daemon.read();
    expect(ledger.invites).toHaveLength(21);
    const spent = ledger.invites.find((e) => e.uses_left === 0 && e.redeemed.length === 20);
    expect(spent).toBeDefined();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('a lock left by a crashed process is taken over once stale', async () => {
    const path = join(dir, 'invites.json');
    writeFileSync(`${path}.lock`, '12345\n');
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(`${path}.lock`, old, old);
    await new Ledger(path).issue({ secret: randomBytes(16), network: 'corp', uses: 1, expiresAt: later() });
    expect((await new Ledger(path).read()).invites).toHaveLength(1);
  });
});
