import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../../src/crypto/identity.js';
import type { RecordFields, VerifiedRecord } from '../../../src/roster/record.js';
import { signRecord, verifyRecord } from '../../../src/roster/signature.js';
import { Roster } from '../../../src/roster/roster.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const FP_A = 'aa'.repeat(32);
const FP_B = 'bb'.repeat(32);
const FP_C = 'cc'.repeat(32);

let certDer: Uint8Array;
let key: KeyObject;
let admins: Set<string>;

beforeAll(async () => {
  const id = await generateIdentity('admin', { now: new Date('2026-01-01T00:00:00Z') });
  certDer = new Uint8Array(new X509Certificate(id.certPem).raw);
  key = createPrivateKey(id.keyPem);
  admins = new Set([id.fingerprint]);
});

/** A record as the roster receives it: signed by the admin and verified. */
function rec(over: Partial<RecordFields> & Pick<RecordFields, 'fingerprint' | 'name'>): VerifiedRecord {
  const fields: RecordFields = {
    kind: 'member',
    version: 1n,
    network: 'corp',
    address: '10.42.0.7',
    routes: [],
    endpoints: [],
    issuedAt: NOW - 1000,
    ...over,
  };
  const result = verifyRecord(signRecord(fields, certDer, key), admins, NOW);
  if (!result.ok) throw new Error(result.error);
  return result.verified;
}

const fingerprints = (roster: Roster, now = NOW): string[] => roster.members(now).map((m) => m.fingerprint);

describe('Roster versioning', () => {
  it('adds, then a newer version replaces, and older or equal versions are stale', () => {
    const roster = new Roster('corp');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 2n }))).toBe('added');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 2n, address: '10.42.0.9' }))).toBe('stale');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 1n, address: '10.42.0.9' }))).toBe('stale');
    expect(roster.get(FP_A)?.record.address).toBe('10.42.0.7');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 3n, address: '10.42.0.9' }))).toBe('updated');
    expect(roster.members(NOW).map((m) => m.address)).toEqual(['10.42.0.9']);
    expect(roster.isMember(FP_A, NOW)).toBe(true);
  });

  it('a revocation removes the member; only a higher version re-admits', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 1n }));
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 2n, kind: 'revoked' }))).toBe('revoked');
    expect(roster.isMember(FP_A, NOW)).toBe(false);
    expect(roster.members(NOW)).toEqual([]);
    // Replaying the old member record, or one at the revocation's version, changes nothing.
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 1n }))).toBe('stale');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 2n }))).toBe('stale');
    expect(roster.isMember(FP_A, NOW)).toBe(false);
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 3n }))).toBe('added');
    expect(roster.isMember(FP_A, NOW)).toBe(true);
  });

  it('a revocation that arrives first makes the older member record stale', () => {
    const roster = new Roster('corp');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 5n, kind: 'revoked' }))).toBe('revoked');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 4n }))).toBe('stale');
    expect(roster.isMember(FP_A, NOW)).toBe(false);
  });

  it('refuses records of another network', () => {
    const roster = new Roster('lab');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'a' }))).toBe('wrong_network');
    expect(roster.digest()).toEqual([]);
  });

  it('members() and isMember() leave out expired records; the record stays held', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'a', expiresAt: NOW + 10 }));
    roster.merge(rec({ fingerprint: FP_B, name: 'b' }));
    expect(fingerprints(roster, NOW + 10)).toEqual([FP_A, FP_B]);
    expect(fingerprints(roster, NOW + 11)).toEqual([FP_B]);
    expect(roster.isMember(FP_A, NOW + 11)).toBe(false);
    expect(roster.digest().map((d) => d.fingerprint)).toEqual([FP_A, FP_B]);
  });

  it('lists members sorted by name', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'zulu' }));
    roster.merge(rec({ fingerprint: FP_B, name: 'alpha' }));
    roster.merge(rec({ fingerprint: FP_C, name: 'mike' }));
    expect(roster.members(NOW).map((m) => m.name)).toEqual(['alpha', 'mike', 'zulu']);
  });
});

describe('Roster name conflicts', () => {
  it('refuses a second fingerprint for a held name; the holder keeps it', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'laptop' }));
    expect(roster.merge(rec({ fingerprint: FP_B, name: 'laptop', version: 9n }))).toBe('conflict');
    expect(fingerprints(roster)).toEqual([FP_A]);
    expect(roster.get(FP_B)).toBeUndefined();
  });

  it('an expired holder still holds the name (merge does not read the clock)', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'laptop', expiresAt: NOW + 1 }));
    expect(roster.merge(rec({ fingerprint: FP_B, name: 'laptop' }))).toBe('conflict');
  });

  it('a revoked holder frees the name; its re-admission under that name then conflicts', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'laptop' }));
    roster.merge(rec({ fingerprint: FP_A, name: 'laptop', version: 2n, kind: 'revoked' }));
    expect(roster.merge(rec({ fingerprint: FP_B, name: 'laptop' }))).toBe('added');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'laptop', version: 3n }))).toBe('conflict');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'old-laptop', version: 3n }))).toBe('added');
  });

  it('a member renaming itself frees its old name and may keep its own', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_A, name: 'laptop' }));
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'laptop', version: 2n, address: '10.42.0.8' }))).toBe('updated');
    expect(roster.merge(rec({ fingerprint: FP_A, name: 'desktop', version: 3n }))).toBe('updated');
    expect(roster.merge(rec({ fingerprint: FP_B, name: 'laptop' }))).toBe('added');
  });
});

describe('Roster digest and diff', () => {
  it('digests every held record, revocations included, sorted by fingerprint', () => {
    const roster = new Roster('corp');
    roster.merge(rec({ fingerprint: FP_C, name: 'c', version: 7n }));
    roster.merge(rec({ fingerprint: FP_A, name: 'a', version: 2n, kind: 'revoked' }));
    expect(roster.digest()).toEqual([
      { fingerprint: FP_A, version: 2n },
      { fingerprint: FP_C, version: 7n },
    ]);
  });

  it('diff names what the other side lacks or holds older, not what it holds newer', () => {
    const ours = new Roster('corp');
    ours.merge(rec({ fingerprint: FP_A, name: 'a', version: 2n }));
    ours.merge(rec({ fingerprint: FP_B, name: 'b', version: 5n }));
    ours.merge(rec({ fingerprint: FP_C, name: 'c', version: 1n }));
    const theirs = [
      { fingerprint: FP_A, version: 1n },
      { fingerprint: FP_C, version: 4n },
      { fingerprint: 'dd'.repeat(32), version: 1n },
    ];
    expect(ours.diff(theirs)).toEqual([FP_A, FP_B]);
    expect(ours.diff(ours.digest())).toEqual([]);
    expect(ours.diff([])).toEqual([FP_A, FP_B, FP_C]);
    // A digest listing a fingerprint twice counts its highest version.
    expect(ours.diff([{ fingerprint: FP_A, version: 2n }, { fingerprint: FP_A, version: 0n }])).toEqual([FP_B, FP_C]);
  });

  it('two rosters converge by sending each other their diffs', () => {
    const left = new Roster('corp');
    const right = new Roster('corp');
    left.merge(rec({ fingerprint: FP_A, name: 'a', version: 3n }));
    left.merge(rec({ fingerprint: FP_B, name: 'b', version: 1n }));
    right.merge(rec({ fingerprint: FP_B, name: 'b', version: 2n, kind: 'revoked' }));
    right.merge(rec({ fingerprint: FP_C, name: 'c', version: 1n }));
    const toRight = left.diff(right.digest()).map((fp) => left.get(fp)!);
    const toLeft = right.diff(left.digest()).map((fp) => right.get(fp)!);
    for (const r of toRight) right.merge(r);
    for (const r of toLeft) left.merge(r);
    expect(left.digest()).toEqual(right.digest());
    expect(fingerprints(left)).toEqual([FP_A, FP_C]);
    expect(fingerprints(right)).toEqual([FP_A, FP_C]);
  });
});
