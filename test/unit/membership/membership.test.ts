// Membership, the owner of a node's signed rosters: what an offered record does (verify, merge,
// keep, push, apply), revocation by an admin, an admin's own record, and a reload that changes
// the admins. Real signatures; the file, push and apply are recording fakes (fixtures.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { newPeer } from '../../../src/config/write.js';
import { parseRosterFile } from '../../../src/membership/roster-file.js';
import { decodeRecord } from '../../../src/roster/record.js';
import { NOW, corpConfig, counted, fp, harness, signed, signer, type Signer } from './fixtures.js';

let admin: Signer;
let admin2: Signer;
let stranger: Signer;
let node: Signer;

beforeAll(async () => {
  [admin, admin2, stranger, node] = await Promise.all([signer('admin'), signer('admin2'), signer('stranger'), signer('node')]);
});

const names = (h: ReturnType<typeof harness>): string[] => h.membership.effective().peers.map((p) => p.name);

describe('Membership.offer', () => {
  it('an admin-signed record is added: kept in the file, pushed on, applied, and a peer', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    const bytes = signed(admin, { fingerprint: fp('b1'), name: 'bob', endpoints: ['192.0.2.2:51820'] });
    expect(await h.membership.offer(bytes, fp('c1'))).toBe('added');
    expect(h.applies).toEqual(['roster: added "bob"']);
    expect(h.pushes).toHaveLength(1);
    expect(h.pushes[0]!.from).toBe(fp('c1'));
    expect(h.pushes[0]!.records.map((r) => r.bytes)).toEqual([bytes]);
    expect(parseRosterFile(h.fs.text!)).toEqual([bytes]);
    expect(names(h)).toEqual(['bob']);
    expect(h.membership.effective().peers[0]).toMatchObject({ fingerprint: fp('b1'), fromRoster: true, address: { host: '192.0.2.2', port: 51820 } });
    expect(await counted(h.counters, 'corp', 'added')).toBe(1);
  });

  it('a member whose record expires stops being a peer at the next tick after it, not at the next change', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob', expiresAt: NOW + 60_000 }), undefined);
    expect(names(h)).toEqual(['bob']);
    h.applies.length = 0;
    h.clock.advance(59_000);
    await h.membership.expire();
    expect(h.applies).toEqual([]);
    h.clock.advance(2000);
    await h.membership.expire();
    expect(h.applies).toEqual(['roster: a membership record expired']);
    expect(names(h)).toEqual([]);
    await h.membership.expire();
    expect(h.applies).toHaveLength(1);
  });

  it('a record signed by a non-admin is refused as not_admin and counted; nothing changes', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    const writes = h.fs.writes.length;
    expect(await h.membership.offer(signed(stranger, { fingerprint: fp('b1'), name: 'bob' }), fp('c1'))).toBe('not_admin');
    expect(await counted(h.counters, 'corp', 'not_admin')).toBe(1);
    expect(h.applies).toEqual([]);
    expect(h.pushes).toEqual([]);
    expect(h.fs.writes.length).toBe(writes);
    expect(names(h)).toEqual([]);
    expect(h.lines.join('\n')).toMatch(/not an admin of that network/);
  });

  it('a tampered record is bad_signature; garbage is malformed; an unkept network is no_roster', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    const bytes = signed(admin, { fingerprint: fp('b1'), name: 'bob' });
    const tampered = bytes.slice();
    // The last byte of the address (10.42.0.7 → 10.42.0.8): still well-formed, no longer signed.
    const decoded = decodeRecord(bytes);
    if (!decoded.ok) throw new Error(decoded.error);
    const at = Buffer.from(bytes).indexOf(Buffer.from([4, 10, 42, 0, 7]));
    tampered[at + 4] = 8;
    expect(await h.membership.offer(tampered, undefined)).toBe('bad_signature');
    expect(await h.membership.offer(Uint8Array.of(1, 2, 3), undefined)).toBe('malformed');
    expect(await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob', network: 'lab' }), undefined)).toBe('no_roster');
    expect(h.pushes).toEqual([]);
    expect(names(h)).toEqual([]);
  });

  it('a replay of a held version is stale: not pushed, saved or applied again', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    const v2 = signed(admin, { fingerprint: fp('b1'), name: 'bob', version: 2n });
    await h.membership.offer(v2, undefined);
    const before = { pushes: h.pushes.length, writes: h.fs.writes.length, applies: h.applies.length };
    expect(await h.membership.offer(v2, fp('c1'))).toBe('stale');
    expect(await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob', version: 1n, address: '10.42.0.99' }), fp('c1'))).toBe('stale');
    expect({ pushes: h.pushes.length, writes: h.fs.writes.length, applies: h.applies.length }).toEqual(before);
    expect(await counted(h.counters, 'corp', 'stale')).toBe(2);
    expect(h.membership.effective().peers[0]!.signedAddresses!.get('corp')).toEqual(Uint8Array.of(10, 42, 0, 7));
  });

  it('a revocation of this node itself empties its peers from that roster', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob' }), undefined);
    expect(await h.membership.offer(signed(admin, { fingerprint: node.fingerprint, name: 'node', address: '10.42.0.9', kind: 'revoked', version: 4n }), undefined)).toBe('revoked');
    expect(names(h)).toEqual([]);
    expect(h.lines.join('\n')).toMatch(/this node was revoked from corp/);
  });

  it("this node's own member record tells joined()", async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: node.fingerprint, name: 'node', address: '10.42.0.9' }), undefined);
    expect(h.joined).toEqual(['corp']);
    expect(names(h)).toEqual([]);
  });
});

describe('Membership.revoke', () => {
  it('an admin revokes a member: version + 1, pushed to all, applied, and the member is no longer a peer', async () => {
    const h = harness(admin, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob', version: 5n, endpoints: ['192.0.2.2:51820'] }), fp('c1'));
    expect(names(h)).toEqual(['bob']);
    h.pushes.length = 0;
    const revoked = await h.membership.revoke('bob', undefined);
    expect(revoked.record).toMatchObject({ kind: 'revoked', version: 6n, name: 'bob', fingerprint: fp('b1'), network: 'corp', signerFingerprint: admin.fingerprint });
    expect(revoked.record.expiresAt).toBeUndefined();
    expect(h.pushes).toEqual([{ records: [revoked], from: undefined }]);
    expect(h.applies.at(-1)).toBe('roster: revoked bob');
    expect(names(h)).toEqual([]);
    expect(parseRosterFile(h.fs.text!)).toContainEqual(revoked.bytes);
    // Revoking again: no member of that name any more.
    await expect(h.membership.revoke('bob', 'corp')).rejects.toThrow(/no member named bob in corp \(see vpnctl members\)/);
  });

  it('on a node that is not an admin: refused, naming the admins to run it on', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob' }), undefined);
    await expect(h.membership.revoke('bob', undefined)).rejects.toThrow(/not an admin of corp; run vpnctl revoke on an admin/);
    expect(names(h)).toEqual(['bob']);
  });

  it('an admin cannot revoke itself; unknown names and networks are refused with the fix', async () => {
    const h = harness(admin, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await expect(h.membership.revoke('admin', undefined)).rejects.toThrow(/cannot revoke itself \(remove it from networks\.corp\.admins instead\)/);
    await expect(h.membership.revoke('nobody', undefined)).rejects.toThrow(/no member named nobody \(see vpnctl members\)/);
    await expect(h.membership.revoke('bob', 'lab')).rejects.toThrow(/no roster for network 'lab' here \(networks with admins: corp\)/);
  });
});

describe('an admin’s own record', () => {
  it('is signed once at start, and not again on a restart with the same file', async () => {
    const fs = harness(admin, corpConfig([admin.fingerprint])).fs;
    const first = harness(admin, corpConfig([admin.fingerprint]), fs);
    await first.membership.start();
    expect(fs.writes).toHaveLength(1);
    // start() hands its caller the config to apply; it does not apply one itself.
    expect(first.applies).toEqual([]);
    const own = first.membership.rosterMap.get('corp')!.get(admin.fingerprint)!.record;
    expect(own).toMatchObject({ kind: 'member', version: 1n, name: 'admin', signerFingerprint: admin.fingerprint });

    const second = harness(admin, corpConfig([admin.fingerprint]), fs);
    await second.membership.start();
    expect(fs.writes).toHaveLength(1);
    expect(second.pushes).toEqual([]);
    expect(second.membership.rosterMap.get('corp')!.get(admin.fingerprint)!.record.version).toBe(1n);
    // Its own record makes no peer of itself.
    expect(names(second)).toEqual([]);
  });

  it('is signed again, version + 1, when its address changes on reload, without applying (the caller applies)', async () => {
    const h = harness(admin, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.configChanged(corpConfig([admin.fingerprint], [], '10.42.0.2'));
    expect(h.membership.rosterMap.get('corp')!.get(admin.fingerprint)!.record).toMatchObject({ version: 2n, address: '10.42.0.2' });
    expect(h.fs.writes).toHaveLength(2);
    expect(h.applies).toEqual([]);
  });

  it('a non-admin signs nothing at start and reads no file without admins', async () => {
    const fs = harness(node, corpConfig([])).fs;
    fs.text = 'damaged';
    const none = harness(node, corpConfig([]), fs);
    await expect(none.membership.start()).resolves.toBeDefined();
    expect(fs.writes).toEqual([]);
  });
});

describe('Membership.configChanged', () => {
  it('an admin removed from the config takes its records with it', async () => {
    const h = harness(node, corpConfig([admin.fingerprint, admin2.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob' }), undefined);
    await h.membership.offer(signed(admin2, { fingerprint: fp('c1'), name: 'carol', address: '10.42.0.8' }), undefined);
    expect(names(h)).toEqual(['bob', 'carol']);
    const applied = h.applies.length;
    const config = await h.membership.configChanged(corpConfig([admin.fingerprint]));
    expect(config.peers.map((p) => p.name)).toEqual(['bob']);
    expect(h.membership.rosterMap.get('corp')!.get(fp('c1'))).toBeUndefined();
    expect(h.applies.length).toBe(applied);
    // And an admin added back does not resurrect what was dropped: it must be offered again.
    await h.membership.configChanged(corpConfig([admin.fingerprint, admin2.fingerprint]));
    expect(names(h)).toEqual(['bob']);
  });

  it('a file peer added with a member’s name wins on reload; the member is refused with the reason', async () => {
    const h = harness(node, corpConfig([admin.fingerprint]));
    await h.membership.start();
    await h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob' }), undefined);
    const config = await h.membership.configChanged(corpConfig([admin.fingerprint], [newPeer('bob', ['corp'], { fingerprint: fp('99') })]));
    expect(config.peers.map((p) => [p.name, p.fingerprint])).toEqual([['bob', fp('99')]]);
    expect(h.membership.refusal('corp', fp('b1'))).toMatch(/local config wins/);
  });
});
