// The admin's decision on a J (redeem): the documented order, with a real Ledger (in-memory
// file) and a real Membership, so "no use spent" is read back from the ledger itself and an
// admitted joiner's record is the one the roster holds.
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveNetworkAddress } from '../../../src/config/address.js';
import { newConfig, newNetwork } from '../../../src/config/write.js';
import type { RedeemBody } from '../../../src/control/roster-messages.js';
import { Ledger, type LedgerFs } from '../../../src/invite/ledger.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { MembershipCounters } from '../../../src/metrics/membership-counters.js';
import { Redeemer } from '../../../src/membership/redeem.js';
import { formatIp, parseIp } from '../../../src/netgraph/addr.js';
import type { RedeemRequest } from '../../../src/peer/redemption.js';
import { NOW, corpConfig, fp, harness, signed, signer, type Signer } from './fixtures.js';

const SECRET = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const UNKNOWN = Uint8Array.from({ length: 16 }, (_, i) => 100 + i);
const NOW_S = Math.floor(NOW / 1000);

let admin: Signer;
let other: Signer;
beforeAll(async () => {
  [admin, other] = await Promise.all([signer('admin'), signer('other')]);
});

class MemoryLedgerFs implements LedgerFs {
  text: string | undefined;
  async read(): Promise<string | undefined> {
    return this.text;
  }
  async write(_path: string, text: string): Promise<void> {
    this.text = text;
  }
}

interface Setup {
  redeemer: Redeemer;
  ledger: Ledger;
  h: ReturnType<typeof harness>;
  counters: MembershipCounters;
  usesLeft(): Promise<number>;
}

/** Admin of corp (10.42.0.0/24), an invite for it with `uses` uses; `filePeers` name → pin in its config. */
async function setup(options: { uses?: number; expiresAt?: number; admins?: string[]; filePeers?: Record<string, string | null> } = {}): Promise<Setup> {
  const h = harness(admin, corpConfig(options.admins ?? [admin.fingerprint]));
  await h.membership.start();
  const ledger = new Ledger('/etc/vibepn/invites.json', new MemoryLedgerFs());
  await ledger.issue({ secret: SECRET, network: 'corp', uses: options.uses ?? 1, expiresAt: options.expiresAt ?? NOW_S + 3600 });
  const counters = new MembershipCounters();
  const redeemer = new Redeemer({
    membership: h.membership,
    ledger,
    clock: h.clock,
    logger: memoryLogger().logger,
    counters,
    filePeerFingerprint: (name) => (options.filePeers && name in options.filePeers ? options.filePeers[name] : undefined),
  });
  return { redeemer, ledger, h, counters, usesLeft: async () => (await ledger.read()).invites[0]!.uses_left };
}

function request(over: { name?: string; fingerprint?: string; secret?: Uint8Array; address?: string; network?: string; host?: string; port?: number } = {}): RedeemRequest {
  const body: RedeemBody = { network: over.network ?? 'corp', secret: over.secret ?? SECRET, address: parseIp(over.address ?? '10.42.0.20')! };
  return { body, fingerprint: over.fingerprint ?? fp('b1'), name: over.name ?? 'bob', remote: { host: over.host ?? '192.0.2.2', port: over.port ?? 40000 } };
}

const memberRecord = (s: Setup, fingerprint: string) => s.h.membership.rosterMap.get('corp')!.get(fingerprint)?.record;

describe('Redeemer: admits', () => {
  it('a valid invite: ok, a use spent, the joiner signed with its address and observed endpoint, pushed', async () => {
    const s = await setup();
    expect(s.redeemer.active).toBe(true);
    expect(await s.redeemer.redeem(request())).toEqual({ ok: true, name: 'bob', repeated: false });
    expect(await s.usesLeft()).toBe(0);
    expect(memberRecord(s, fp('b1'))).toMatchObject({ kind: 'member', version: 1n, name: 'bob', address: '10.42.0.20', endpoints: ['192.0.2.2:40000'], signerFingerprint: admin.fingerprint });
    expect(s.h.pushes.at(-1)!.records[0]!.record.fingerprint).toBe(fp('b1'));
    expect(s.counters.redemptions.admitted).toBe(1);
  });

  it('the same fingerprint again: ok, repeated, no use spent, no new record', async () => {
    const s = await setup({ uses: 2 });
    await s.redeemer.redeem(request());
    const pushes = s.h.pushes.length;
    expect(await s.redeemer.redeem(request())).toEqual({ ok: true, name: 'bob', repeated: true });
    expect(await s.usesLeft()).toBe(1);
    expect(s.h.pushes.length).toBe(pushes);
    expect(memberRecord(s, fp('b1'))!.version).toBe(1n);
    expect(s.counters.redemptions.repeated).toBe(1);
  });

  it.each([
    ['an IPv4-mapped IPv6 host', '::ffff:10.0.0.2', 5000, ['10.0.0.2:5000']],
    ['an IPv6 host', '2001:db8::2', 5000, ['[2001:db8::2]:5000']],
    ['a relay’s virtual address', '0.0.0.7', 5000, []],
    ['a relay’s virtual address, mapped', '::ffff:0.0.0.7', 5000, []],
  ])('the endpoint hint from %s', async (_what, host, port, endpoints) => {
    const s = await setup();
    expect((await s.redeemer.redeem(request({ host, port }))).ok).toBe(true);
    expect(memberRecord(s, fp('b1'))!.endpoints).toEqual(endpoints);
  });
});

describe('Redeemer: refusal order', () => {
  it('not an admin of the network (or no such network): invite.invalid, ledger untouched', async () => {
    const s = await setup({ admins: [admin.fingerprint] });
    expect(await s.redeemer.redeem(request({ network: 'lab' }))).toMatchObject({ ok: false, code: 'invite.invalid' });
    const t = await setup({ admins: [other.fingerprint] });
    expect(t.redeemer.active).toBe(false);
    expect(await t.redeemer.redeem(request())).toMatchObject({ ok: false, code: 'invite.invalid' });
    expect(await t.usesLeft()).toBe(1);
  });

  it('a revoked joiner: member.revoked before the ledger is looked at', async () => {
    const s = await setup();
    await s.h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob', kind: 'revoked', version: 3n, address: '10.42.0.20' }), undefined);
    expect(await s.redeemer.redeem(request())).toMatchObject({ ok: false, code: 'member.revoked' });
    expect(await s.redeemer.redeem(request({ secret: UNKNOWN }))).toMatchObject({ ok: false, code: 'member.revoked' });
    expect(await s.usesLeft()).toBe(1);
  });

  it('an existing member with any secret, even an unknown one: ok, repeated', async () => {
    const s = await setup();
    await s.h.membership.offer(signed(admin, { fingerprint: fp('b1'), name: 'bob', address: '10.42.0.20' }), undefined);
    expect(await s.redeemer.redeem(request({ secret: UNKNOWN }))).toEqual({ ok: true, name: 'bob', repeated: true });
    expect(await s.usesLeft()).toBe(1);
  });

  describe('name and address checks spend no use, even with a used-up invite', () => {
    const cases: Array<[string, Parameters<typeof request>[0], string, RegExp, Parameters<typeof setup>[0]?]> = [
      ['a name with a control character', { name: 'bo\nb' }, 'member.name_taken', /not usable.*vpnctl rekey --name/],
      ['an address outside the network', { address: '10.99.0.5' }, 'member.address_taken', /outside corp/],
      ['an IPv6 address in an IPv4 network', { address: 'fd00::5' }, 'member.address_taken', /outside corp/],
      ['a name another member holds', { name: 'carol' }, 'member.name_taken', /carol is already a member of corp with another key/],
      ['an address another member holds', { address: '10.42.0.30' }, 'member.address_taken', /10\.42\.0\.30 is carol's address in corp/],
      ['a name pinned to another key in the admin’s file', { name: 'dave' }, 'member.name_taken', /\[\[peers\]\] entry/, { filePeers: { dave: fp('d1') } }],
      ['a name unpinned in the admin’s file', { name: 'dave' }, 'member.name_taken', /\[\[peers\]\] entry/, { filePeers: { dave: null } }],
    ];
    it.each(cases)('%s', async (_what, over, code, message, options) => {
      const s = await setup({ uses: 1, ...options });
      await s.h.membership.offer(signed(admin, { fingerprint: fp('c1'), name: 'carol', address: '10.42.0.30' }), undefined);
      const decision = await s.redeemer.redeem(request(over));
      expect(decision).toMatchObject({ ok: false, code });
      if (!decision.ok) expect(decision.message).toMatch(message);
      expect(await s.usesLeft()).toBe(1);
      // The invite still works for a joiner that fixed it.
      expect(await s.redeemer.redeem(request({ fingerprint: fp('e1'), name: 'erin', address: '10.42.0.40' }))).toMatchObject({ ok: true });
    });

    it("the admin's own address", async () => {
      const s = await setup();
      const own = formatIp(resolveNetworkAddress(s.h.membership.networkConfig('corp')!, admin.fingerprint));
      expect(own).toBe('10.42.0.1');
      const decision = await s.redeemer.redeem(request({ address: own }));
      expect(decision).toMatchObject({ ok: false, code: 'member.address_taken' });
      if (!decision.ok) expect(decision.message).toMatch(/is the admin's own in corp/);
      expect(await s.usesLeft()).toBe(1);
    });

    it('a name pinned to the joiner’s own key in the admin’s file is fine', async () => {
      const s = await setup({ filePeers: { bob: fp('b1') } });
      expect(await s.redeemer.redeem(request())).toMatchObject({ ok: true });
    });

    it('roster checks come before the ledger: a taken name with a used-up invite is name_taken', async () => {
      const s = await setup({ uses: 1 });
      await s.redeemer.redeem(request({ fingerprint: fp('e1'), name: 'erin', address: '10.42.0.40' }));
      expect(await s.redeemer.redeem(request({ name: 'erin' }))).toMatchObject({ ok: false, code: 'member.name_taken' });
      expect(await s.redeemer.redeem(request())).toMatchObject({ ok: false, code: 'invite.exhausted' });
    });
  });

  it('the ledger: unknown → invite.invalid, expired → invite.expired, used up → invite.exhausted', async () => {
    const s = await setup();
    expect(await s.redeemer.redeem(request({ secret: UNKNOWN }))).toMatchObject({ ok: false, code: 'invite.invalid' });
    await s.redeemer.redeem(request({ fingerprint: fp('e1'), name: 'erin', address: '10.42.0.40' }));
    expect(await s.redeemer.redeem(request())).toMatchObject({ ok: false, code: 'invite.exhausted' });
    const t = await setup({ expiresAt: NOW_S - 1 });
    expect(await t.redeemer.redeem(request())).toMatchObject({ ok: false, code: 'invite.expired' });
    expect(memberRecord(t, fp('b1'))).toBeUndefined();
    expect(t.counters.redemptions['invite.expired']).toBe(1);
  });
});

describe('Redeemer: an invite presented for another network', () => {
  // The ledger compares networks before it spends: "a use only when the joiner will be admitted".
  it('is invite.invalid without spending a use of the other network’s invite', async () => {
    const config = newConfig('/etc/vibepn/config.toml', {
      homeDir: '/home/test',
      networks: [newNetwork('corp', '10.42.0.0/24', { admins: [admin.fingerprint], address: '10.42.0.1' }), newNetwork('lab', '10.43.0.0/24', { admins: [admin.fingerprint], address: '10.43.0.1' })],
    });
    const h = harness(admin, config);
    await h.membership.start();
    const ledger = new Ledger('/etc/vibepn/invites.json', new MemoryLedgerFs());
    await ledger.issue({ secret: SECRET, network: 'lab', uses: 1, expiresAt: NOW_S + 3600 });
    const redeemer = new Redeemer({ membership: h.membership, ledger, clock: h.clock, logger: memoryLogger().logger, counters: new MembershipCounters(), filePeerFingerprint: () => undefined });
    expect(await redeemer.redeem(request({ network: 'corp' }))).toMatchObject({ ok: false, code: 'invite.invalid' });
    expect((await ledger.read()).invites[0]!.uses_left).toBe(1);
  });
});

describe('Redeemer: concurrency', () => {
  it('a single-use invite redeemed by two fingerprints at once admits exactly one', async () => {
    const s = await setup({ uses: 1 });
    const results = await Promise.all([
      s.redeemer.redeem(request({ fingerprint: fp('b1'), name: 'bob', address: '10.42.0.20' })),
      s.redeemer.redeem(request({ fingerprint: fp('c1'), name: 'carol', address: '10.42.0.21' })),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.find((r) => !r.ok)).toMatchObject({ code: 'invite.exhausted' });
    expect(s.h.membership.rosterMap.get('corp')!.members(NOW).map((m) => m.name).filter((n) => n !== 'admin')).toHaveLength(1);
    expect(await s.usesLeft()).toBe(0);
  });

  // Redemptions run one at a time, checks through signing: the second sees the first's record.
  it('two joiners racing for one address on a two-use invite: one is refused member.address_taken', async () => {
    const s = await setup({ uses: 2 });
    const results = await Promise.all([
      s.redeemer.redeem(request({ fingerprint: fp('b1'), name: 'bob', address: '10.42.0.20' })),
      s.redeemer.redeem(request({ fingerprint: fp('c1'), name: 'carol', address: '10.42.0.20' })),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.find((r) => !r.ok)).toMatchObject({ code: 'member.address_taken' });
    const holders = s.h.membership.rosterMap.get('corp')!.members(NOW).filter((m) => m.address === '10.42.0.20');
    expect(holders).toHaveLength(1);
    expect(await s.usesLeft()).toBe(1);
  });

  // The same race on a name: refused before the ledger, so no use is spent on the loser.
  it('two joiners racing for one name on a two-use invite: one is refused member.name_taken, no use spent on it', async () => {
    const s = await setup({ uses: 2 });
    const results = await Promise.allSettled([
      s.redeemer.redeem(request({ fingerprint: fp('b1'), name: 'bob', address: '10.42.0.20' })),
      s.redeemer.redeem(request({ fingerprint: fp('c1'), name: 'bob', address: '10.42.0.21' })),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const values = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
    expect(values.filter((v) => v?.ok)).toHaveLength(1);
    expect(values.find((v) => v && !v.ok)).toMatchObject({ code: 'member.name_taken' });
    expect(await s.usesLeft()).toBe(1);
  });
});
