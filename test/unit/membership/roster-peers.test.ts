// rosterPeers: the config file's peers plus the roster members it does not list, local config
// winning on names. Checked case by case against hand-written expectations, then on generated
// inputs against a naive model of the documented rules.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PeerConfig } from '../../../src/config/types.js';
import { newPeer } from '../../../src/config/write.js';
import { refusalKey, rosterPeers, type RosterMembers } from '../../../src/membership/roster-peers.js';
import { formatIp, formatPrefix, parseIp } from '../../../src/netgraph/addr.js';
import type { MembershipRecord, RecordFields } from '../../../src/roster/record.js';
import { fields, fp } from './fixtures.js';

const SELF = fp('ee');
const ADMIN = fp('ad');

/** rosterPeers reads fields only (the signature was checked before): a record with a dummy signer. */
function rec(over: Partial<RecordFields> & Pick<RecordFields, 'fingerprint' | 'name'>): MembershipRecord {
  return { ...fields(over), signerCertDer: new Uint8Array(1), signerFingerprint: ADMIN, signature: new Uint8Array(1) };
}

function roster(network: string, members: MembershipRecord[], selfRevoked = false): RosterMembers {
  return { network, members, selfRevoked };
}

/** A peer with its byte fields as text, for readable equality. */
function shown(peer: PeerConfig) {
  return {
    ...peer,
    allowedRoutes: peer.allowedRoutes.map(formatPrefix),
    signedAddresses: peer.signedAddresses && Object.fromEntries([...peer.signedAddresses].map(([n, a]) => [n, formatIp(a)])),
  };
}

describe('rosterPeers', () => {
  it('a new member becomes a pinned peer at its first endpoint, with its signed address and routes', () => {
    const member = rec({ fingerprint: fp('b1'), name: 'bob', endpoints: ['192.0.2.2:51820', '198.51.100.2:4000'], routes: ['192.168.7.0/24'] });
    const { peers, refused } = rosterPeers([], [roster('corp', [member])], SELF);
    expect(refused.size).toBe(0);
    expect(peers.map(shown)).toEqual([
      {
        name: 'bob',
        address: { host: '192.0.2.2', port: 51820 },
        fingerprint: fp('b1'),
        networks: ['corp'],
        allowedRoutes: ['192.168.7.0/24'],
        signedAddresses: { corp: '10.42.0.7' },
        fromRoster: true,
      },
    ]);
  });

  it('a member without endpoints is inbound-only (address null)', () => {
    const { peers } = rosterPeers([], [roster('corp', [rec({ fingerprint: fp('b1'), name: 'bob' })])], SELF);
    expect(peers[0]!.address).toBeNull();
    expect(peers[0]!.fingerprint).toBe(fp('b1'));
  });

  it('a file peer with the member’s fingerprint keeps its name and address, and gains the network, routes and signed address', () => {
    const file = newPeer('robert', ['lab'], { address: '203.0.113.9:51820', fingerprint: fp('b1'), allowedRoutes: ['192.168.7.0/24'] });
    const member = rec({ fingerprint: fp('b1'), name: 'bob', endpoints: ['192.0.2.2:51820'], routes: ['192.168.7.0/24', '192.168.8.0/24'] });
    const { peers, refused } = rosterPeers([file], [roster('corp', [member])], SELF);
    expect(refused.size).toBe(0);
    expect(peers).toHaveLength(1);
    expect(shown(peers[0]!)).toEqual({
      ...shown(file),
      networks: ['lab', 'corp'],
      // The route both list is not doubled.
      allowedRoutes: ['192.168.7.0/24', '192.168.8.0/24'],
      signedAddresses: { corp: '10.42.0.7' },
    });
    expect(peers[0]!.fromRoster).toBeUndefined();
    // The input is left alone: the daemon keeps the file's config for reloads.
    expect(file.networks).toEqual(['lab']);
    expect(file.signedAddresses).toBeUndefined();
  });

  it('a file peer already in the network is not listed in it twice', () => {
    const file = newPeer('bob', ['corp'], { fingerprint: fp('b1') });
    const { peers } = rosterPeers([file], [roster('corp', [rec({ fingerprint: fp('b1'), name: 'bob' })])], SELF);
    expect(peers[0]!.networks).toEqual(['corp']);
  });

  it.each([
    ['another fingerprint', { fingerprint: fp('99') }, /fingerprint 9999999999999999…/],
    ['no fingerprint', {}, /no pinned fingerprint/],
  ])('a file peer with the member’s name and %s keeps it; the member is refused with the fix', (_what, pin, reason) => {
    const file = newPeer('bob', ['corp'], { address: '203.0.113.9:51820', ...pin });
    const { peers, refused } = rosterPeers([file], [roster('corp', [rec({ fingerprint: fp('b1'), name: 'bob' })])], SELF);
    expect(peers).toEqual([file]);
    const why = refused.get(refusalKey('corp', fp('b1')));
    expect(why).toMatch(reason);
    expect(why).toMatch(/local config wins \(pin the member's fingerprint there, or rename one of them\)/);
  });

  it('skips this node’s own record', () => {
    const { peers, refused } = rosterPeers([], [roster('corp', [rec({ fingerprint: SELF, name: 'me' }), rec({ fingerprint: fp('b1'), name: 'bob', address: '10.42.0.8' })])], SELF);
    expect(peers.map((p) => p.name)).toEqual(['bob']);
    expect(refused.size).toBe(0);
  });

  it('a roster that revoked this node gives no peers; another roster still does', () => {
    const { peers } = rosterPeers(
      [],
      [roster('corp', [rec({ fingerprint: fp('b1'), name: 'bob' })], true), roster('lab', [rec({ fingerprint: fp('c1'), name: 'carol', network: 'lab' })])],
      SELF,
    );
    expect(peers.map((p) => [p.name, p.networks])).toEqual([['carol', ['lab']]]);
  });

  it('one fingerprint in two rosters is one peer in both networks, named by the first network (sorted)', () => {
    const { peers, refused } = rosterPeers(
      [],
      [
        roster('lab', [rec({ fingerprint: fp('b1'), name: 'bobby', network: 'lab', address: '10.43.0.7', routes: ['192.168.9.0/24'] })]),
        roster('corp', [rec({ fingerprint: fp('b1'), name: 'bob', endpoints: ['192.0.2.2:51820'] })]),
      ],
      SELF,
    );
    expect(refused.size).toBe(0);
    expect(peers.map(shown)).toEqual([
      {
        name: 'bob',
        address: { host: '192.0.2.2', port: 51820 },
        fingerprint: fp('b1'),
        networks: ['corp', 'lab'],
        allowedRoutes: ['192.168.9.0/24'],
        signedAddresses: { corp: '10.42.0.7', lab: '10.43.0.7' },
        fromRoster: true,
      },
    ]);
  });

  it('two members of two rosters with one name: the second is refused, naming the holder', () => {
    const { peers, refused } = rosterPeers(
      [],
      [roster('corp', [rec({ fingerprint: fp('b1'), name: 'bob' })]), roster('lab', [rec({ fingerprint: fp('b2'), name: 'bob', network: 'lab' })])],
      SELF,
    );
    expect(peers.map((p) => p.fingerprint)).toEqual([fp('b1')]);
    expect(refused.get(refusalKey('lab', fp('b2')))).toMatch(/the name bob belongs to another member \(b1b1b1b1b1b1b1b1…\) in corp/);
  });
});

// ---- generated: against a naive model ----

const FPS = ['b1', 'b2', 'b3', 'b4', 'ee'].map(fp);
const NAMES = ['bob', 'carol', 'dave', 'erin'];

const arbRecord = (network: string) =>
  fc.record({
    fingerprint: fc.constantFrom(...FPS),
    name: fc.constantFrom(...NAMES),
    host: fc.integer({ min: 2, max: 250 }),
    endpoints: fc.subarray(['192.0.2.1:1', '192.0.2.2:2']),
  }).map((r) => rec({ fingerprint: r.fingerprint, name: r.name, network, address: `10.42.0.${r.host}`, endpoints: r.endpoints }));

/** One member per fingerprint per roster, as Roster.members gives (a roster holds one record per fingerprint). */
const arbRoster = (network: string) =>
  fc.record({ members: fc.uniqueArray(arbRecord(network), { selector: (r) => r.fingerprint, maxLength: 4 }), selfRevoked: fc.boolean() }).map((r) => roster(network, r.members, r.selfRevoked));

const arbFilePeers = fc.uniqueArray(
  fc.record({ name: fc.constantFrom(...NAMES, 'zed'), fingerprint: fc.option(fc.constantFrom(...FPS.slice(0, 4)), { nil: undefined }) }),
  { selector: (p) => p.name, maxLength: 3 },
).map((list) => {
  // Config files pin one fingerprint to one name at most (the loader refuses duplicates).
  const seen = new Set<string>();
  return list.map(({ name, fingerprint }) => {
    const pin = fingerprint && !seen.has(fingerprint) ? fingerprint : undefined;
    if (pin) seen.add(pin);
    return newPeer(name, ['lab'], pin ? { fingerprint: pin } : {});
  });
});

describe('rosterPeers (generated)', () => {
  it('matches the documented rules: file peers stay, fingerprints first, names second, one peer per fingerprint', () => {
    fc.assert(
      fc.property(arbFilePeers, arbRoster('corp'), arbRoster('lab'), (file, corp, lab) => {
        const { peers, refused } = rosterPeers(file, [lab, corp], SELF);
        // Naive model: walk networks in name order, then members in order.
        const byFp = new Map<string, { name: string; networks: Set<string> }>();
        const names = new Set(file.map((p) => p.name));
        for (const p of file) if (p.fingerprint) byFp.set(p.fingerprint, { name: p.name, networks: new Set(p.networks) });
        const expectRefused = new Set<string>();
        for (const r of [corp, lab]) {
          if (r.selfRevoked) continue;
          for (const m of r.members) {
            if (m.fingerprint === SELF) continue;
            const held = byFp.get(m.fingerprint);
            if (held) held.networks.add(r.network);
            else if (names.has(m.name)) expectRefused.add(refusalKey(r.network, m.fingerprint));
            else {
              byFp.set(m.fingerprint, { name: m.name, networks: new Set([r.network]) });
              names.add(m.name);
            }
          }
        }
        expect(new Set(refused.keys())).toEqual(expectRefused);
        // File peers first, in order, names kept.
        expect(peers.slice(0, file.length).map((p) => p.name)).toEqual(file.map((p) => p.name));
        expect(new Set(peers.map((p) => p.name)).size).toBe(peers.length);
        expect(peers.some((p) => p.fingerprint === SELF)).toBe(false);
        for (const [fingerprint, want] of byFp) {
          const got = peers.filter((p) => p.fingerprint === fingerprint);
          expect(got).toHaveLength(1);
          expect(got[0]!.name).toBe(want.name);
          expect(new Set(got[0]!.networks)).toEqual(want.networks);
          // Every roster network the peer is taken in has its signed address (not one it was refused in).
          for (const r of [corp, lab]) {
            const m = want.networks.has(r.network) && !r.selfRevoked ? r.members.find((x) => x.fingerprint === fingerprint) : undefined;
            if (m) expect(formatIp(got[0]!.signedAddresses!.get(r.network)!)).toBe(formatIp(parseIp(m.address)!));
          }
        }
        expect(peers).toHaveLength(byFp.size + file.filter((p) => !p.fingerprint).length);
      }),
      { numRuns: 500, seed: 7 },
    );
  });
});
