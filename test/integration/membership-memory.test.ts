// Whole daemons on an in-memory network with a fake clock (as nat-memory.test.ts): an admin A
// issues invites into its ledger; joiners hold only A's address, fingerprint and an invite's
// secret (what `vpnctl join` writes). Each joiner's daemon redeems it on its first connection,
// and the signed roster must then make every member a peer of every other, with no config edit
// on any node. Also: refusals with their codes, a racing single-use invite, revocation, a forged
// record, and an admin restart.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { FakeClock } from '../../src/clock/fake.js';
import { newNetwork } from '../../src/config/write.js';
import { ledgerPath, pendingInvitesPath, rosterPath } from '../../src/config/state-files.js';
import { controlRequest } from '../../src/control/client.js';
import type { PeerRow, RosterStatus } from '../../src/control/api.js';
import { loadIdentity } from '../../src/crypto/identity.js';
import { Ledger } from '../../src/invite/ledger.js';
import { addPendingInvite, PendingInvites } from '../../src/invite/pending.js';
import { signRecord } from '../../src/roster/signature.js';
import type { Config } from '../../src/config/types.js';
import { metricsText, metricValue, peerOf, writeNodeConfig, type TestNode } from '../helpers/cluster.js';
import { MemoryLab } from '../helpers/memory-lab.js';

let lab: MemoryLab;
let clock: FakeClock;

beforeEach(() => {
  lab = new MemoryLab('vibepn-members-', new FakeClock(Date.now()));
  clock = lab.clock;
});

afterEach(() => lab.destroy());

const memoryNode = (name: string, host: string): Promise<TestNode> => lab.node(name, host);
const start = (node: TestNode, config: Config): Promise<unknown> => lab.start(node, config);
const advance = (seconds: number): Promise<void> => lab.advance(seconds);
const until = (condition: () => Promise<boolean>, what: string, seconds: number): Promise<number> => lab.until(condition, what, seconds);

async function peers(node: TestNode): Promise<PeerRow[]> {
  return (await controlRequest(join(node.dir, 'vpn.sock'), { cmd: 'peers' })) as PeerRow[];
}

async function connected(node: TestNode, name: string): Promise<boolean> {
  return (await peers(node)).some((r) => r.name === name && r.connected);
}

const corp = (admin: TestNode) => newNetwork('corp', '10.42.0.0/24', { admins: [admin.fingerprint] });

async function issue(admin: TestNode, uses: number, ttlSeconds = 3600, routes: string[] = []): Promise<Uint8Array> {
  const secret = randomBytes(16);
  await new Ledger(ledgerPath(admin.configPath)).issue({ secret, network: 'corp', uses, expiresAt: Math.floor(clock.now() / 1000) + ttlSeconds, routes });
  return secret;
}

/** What `vpnctl join` leaves: A pinned at its address, A as the network's admin, the secret to redeem. */
function joinerConfig(joiner: TestNode, admin: TestNode, secret: Uint8Array, exported: string[] = []) {
  addPendingInvite(pendingInvitesPath(joiner.configPath), { network: 'corp', admin: admin.fingerprint, secret });
  return writeNodeConfig(joiner, [peerOf(admin, ['corp'])], [newNetwork('corp', '10.42.0.0/24', { admins: [admin.fingerprint], routes: exported })]);
}

async function adminWithTwoMembers(uses = 2): Promise<{ a: TestNode; b: TestNode; c: TestNode; secret: Uint8Array }> {
  const a = await memoryNode('a', '10.0.0.1');
  const b = await memoryNode('b', '10.0.0.2');
  const c = await memoryNode('c', '10.0.0.3');
  await start(a, writeNodeConfig(a, [], [corp(a)]));
  const secret = await issue(a, uses);
  await start(b, joinerConfig(b, a, secret));
  await start(c, joinerConfig(c, a, secret));
  await until(async () => (await connected(b, 'c')) && (await connected(c, 'b')), 'b↔c through the roster', 30);
  return { a, b, c, secret };
}

describe('membership: invites redeemed by the daemon, a signed roster that spreads', () => {
  it('A invites B and C; each only holds the invite, and B and C become each other’s peers directly', async () => {
    const { a, b, c } = await adminWithTwoMembers();
    // Direct: C dialed B at the endpoint A saw for it.
    const bRow = (await peers(c)).find((r) => r.name === 'b')!;
    expect(bRow).toMatchObject({ connected: true, path: 'direct', fingerprint: b.fingerprint, trust: 'roster' });
    // The admin is C's config peer (join wrote it), so it stays pinned.
    expect((await peers(c)).find((r) => r.name === 'a')).toMatchObject({ trust: 'pinned' });
    expect(await connected(a, 'b')).toBe(true);
    expect(await connected(a, 'c')).toBe(true);
    const members = (await controlRequest(join(b.dir, 'vpn.sock'), { cmd: 'members' })) as RosterStatus[];
    expect(members[0]!.members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    expect(members[0]!.members.every((m) => m.signed_by === 'a')).toBe(true);
    // The invite is spent on both joiners, the roster kept 0600 beside each config.
    expect(await new PendingInvites(pendingInvitesPath(b.configPath)).read()).toEqual([]);
    for (const node of [a, b, c]) expect(statSync(rosterPath(node.configPath)).mode & 0o777).toBe(0o600);
    const ledger = await new Ledger(ledgerPath(a.configPath)).read();
    expect(ledger.invites[0]!.uses_left).toBe(0);
    expect(ledger.invites[0]!.redeemed.map((r) => r.name).sort()).toEqual(['b', 'c']);
    expect(metricValue(await metricsText(a), 'vibepn_invite_redemptions_total', 'result="admitted"')).toBe(2);
    // Routes: each member's signed address, nothing else.
    const routes = b.daemon!.routeList().map((r) => r.peer);
    expect(routes).toContain(c.fingerprint);
  });

  it('a single-use invite raced by two joiners admits exactly one; the other sees invite.exhausted', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    const c = await memoryNode('c', '10.0.0.3');
    await start(a, writeNodeConfig(a, [], [corp(a)]));
    const secret = await issue(a, 1);
    await Promise.all([start(b, joinerConfig(b, a, secret)), start(c, joinerConfig(c, a, secret))]);
    await until(async () => (await connected(b, 'a')) || (await connected(c, 'a')), 'one joiner admitted', 15);
    await advance(5);
    const admitted = [(await connected(b, 'a')) ? 'b' : null, (await connected(c, 'a')) ? 'c' : null].filter(Boolean);
    expect(admitted).toHaveLength(1);
    const loser = admitted[0] === 'b' ? c : b;
    const row = (await peers(loser)).find((r) => r.name === 'a')!;
    expect(row.connected).toBe(false);
    expect(row.last_error).toMatch(/a refused our invite: invite\.exhausted: /);
    expect(metricValue(await metricsText(loser), 'vibepn_invite_refused_total', 'code="invite.exhausted"')).toBeGreaterThan(0);
    expect(metricValue(await metricsText(a), 'vibepn_invite_redemptions_total', 'result="invite.exhausted"')).toBeGreaterThan(0);
  });

  it('a running node joins one more network (what join --add writes) on reload, and stays up in its first', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    const lab = newNetwork('lab', '10.50.0.0/24', { admins: [b.fingerprint] });
    await start(a, writeNodeConfig(a, [], [corp(a)]));
    // B runs alone, the admin of its own network.
    await start(b, writeNodeConfig(b, [], [lab]));
    const secret = await issue(a, 1);
    joinerConfig(b, a, secret);
    writeNodeConfig(b, [peerOf(a, ['corp'])], [lab, corp(a)]);
    await b.daemon!.reload();
    await until(async () => (await connected(b, 'a')) && (await connected(a, 'b')), 'b a member of corp after reload', 30);
    const held = (await controlRequest(join(b.dir, 'vpn.sock'), { cmd: 'members' })) as RosterStatus[];
    expect(held.map((r) => r.network).sort()).toEqual(['corp', 'lab']);
    expect(held.find((r) => r.network === 'corp')!.members.map((m) => m.name)).toEqual(['a', 'b']);
    expect(await new PendingInvites(pendingInvitesPath(b.configPath)).read()).toEqual([]);
  });

  it('a cancelled invite (vpnctl invites --cancel) is refused as invite.invalid', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    await start(a, writeNodeConfig(a, [], [corp(a)]));
    const secret = await issue(a, 1);
    const ledger = new Ledger(ledgerPath(a.configPath));
    await ledger.cancel((await ledger.read()).invites[0]!.secret_sha256.slice(0, 12));
    await start(b, joinerConfig(b, a, secret));
    await until(async () => /invite\.invalid/.test((await peers(b)).find((r) => r.name === 'a')?.last_error ?? ''), 'b refused', 15);
    expect(await connected(b, 'a')).toBe(false);
  });

  it('an expired invite and an unknown secret are refused with their codes', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    const c = await memoryNode('c', '10.0.0.3');
    await start(a, writeNodeConfig(a, [], [corp(a)]));
    const expiring = await issue(a, 1, 60);
    await advance(61);
    await start(b, joinerConfig(b, a, expiring));
    await start(c, joinerConfig(c, a, randomBytes(16)));
    await until(async () => Boolean((await peers(b)).find((r) => r.name === 'a')?.last_error) && Boolean((await peers(c)).find((r) => r.name === 'a')?.last_error), 'refusals', 15);
    expect((await peers(b)).find((r) => r.name === 'a')!.last_error).toMatch(/invite\.expired/);
    expect((await peers(c)).find((r) => r.name === 'a')!.last_error).toMatch(/invite\.invalid/);
  });

  it('revoke C on A: B drops C within 10 s; C cannot come back with the same invite, a new key can', async () => {
    const { a, b, c, secret } = await adminWithTwoMembers(3);
    const result = (await controlRequest(join(a.dir, 'vpn.sock'), { cmd: 'revoke', name: 'c' })) as { told: number; fingerprint: string };
    expect(result.fingerprint).toBe(c.fingerprint);
    const took = await until(async () => !(await peers(b)).some((r) => r.name === 'c'), 'c gone from b', 10);
    expect(took).toBeLessThanOrEqual(10);
    expect((await peers(a)).some((r) => r.name === 'c')).toBe(false);
    // C presents the same invite again (it has a use left): refused as revoked, nothing spent.
    addPendingInvite(pendingInvitesPath(c.configPath), { network: 'corp', admin: a.fingerprint, secret });
    await c.daemon!.reload();
    await until(async () => /a refused us as a member: member\.revoked: .*vpnctl join --force/.test((await peers(c)).find((r) => r.name === 'a')?.last_error ?? ''), 'c refused as revoked', 15);
    expect(await connected(c, 'a')).toBe(false);
    expect((await new Ledger(ledgerPath(a.configPath)).read()).invites[0]!.uses_left).toBe(1);
    // The same machine with a new key (what join --force makes) takes the name c again.
    await c.daemon!.stop('rejoin');
    const c2 = await lab.node('c', '10.0.0.4', 'c2');
    await start(c2, joinerConfig(c2, a, secret));
    await until(async () => (await connected(b, 'c')) && (await connected(c2, 'b')), 'the new c admitted and reaching b', 30);
    expect((await peers(b)).find((r) => r.name === 'c')!.fingerprint).toBe(c2.fingerprint);
  });

  it('a subnet router joins with an invite granting its subnet: members route it, and nothing it was not granted', async () => {
    const a = await memoryNode('a', '10.0.0.1');
    const b = await memoryNode('b', '10.0.0.2');
    const c = await memoryNode('c', '10.0.0.3');
    await start(a, writeNodeConfig(a, [], [corp(a)]));
    const router = await issue(a, 1, 3600, ['192.168.50.0/24']);
    const plain = await issue(a, 1);
    await start(b, joinerConfig(b, a, router, ['192.168.50.0/24', '192.168.60.0/24']));
    await start(c, joinerConfig(c, a, plain));
    await until(async () => c.daemon!.routeList().some((r) => r.prefix === '192.168.50.0/24'), 'c routes b’s granted subnet', 30);
    const onC = c.daemon!.routeList().filter((r) => r.peer === b.fingerprint).map((r) => r.prefix);
    expect(onC).toContain('192.168.50.0/24');
    expect(onC).not.toContain('192.168.60.0/24');
    expect(a.daemon!.routeList().filter((r) => r.peer === b.fingerprint).map((r) => r.prefix)).not.toContain('192.168.60.0/24');
    const members = (await controlRequest(join(c.dir, 'vpn.sock'), { cmd: 'members' })) as RosterStatus[];
    expect(members[0]!.members.find((m) => m.name === 'b')!.routes).toEqual(['192.168.50.0/24']);
    expect(metricValue(await metricsText(c), 'vibepn_routes_rejected_total', 'network="corp",reason="outside_policy"')).toBeGreaterThan(0);
  });

  it('a record signed by a member (not an admin) is rejected and counted', async () => {
    const { a, b } = await adminWithTwoMembers();
    const bIdentity = loadIdentity(join(b.dir, 'node.crt'), join(b.dir, 'node.key'));
    const forged = signRecord(
      { kind: 'member', version: 1n, network: 'corp', name: 'mallory', fingerprint: 'ab'.repeat(32), address: '10.42.0.99', routes: [], endpoints: [], issuedAt: clock.now() },
      bIdentity.certDer,
      bIdentity.privateKey,
    );
    a.daemon!.sessionWith(b.fingerprint);
    // B's daemon sends it to A as if gossiping it.
    b.daemon!.sessionWith(a.fingerprint)!.send({ type: 'record', record: forged });
    await advance(1);
    expect(metricValue(await metricsText(a), 'vibepn_roster_records_total', 'network="corp",result="not_admin"')).toBe(1);
    const members = (await controlRequest(join(a.dir, 'vpn.sock'), { cmd: 'members' })) as RosterStatus[];
    expect(members[0]!.members.map((m) => m.name)).not.toContain('mallory');
  });

  it('A restarted: B and C stay connected to each other, and A admits and reaches both again from its kept roster', async () => {
    const { a, b, c } = await adminWithTwoMembers();
    await a.daemon!.stop('restart');
    await start(a, writeNodeConfig(a, [], [corp(a)]));
    await until(async () => (await connected(a, 'b')) && (await connected(a, 'c')), 'a back with b and c', 30);
    expect(await connected(b, 'c')).toBe(true);
    expect(await connected(c, 'b')).toBe(true);
  });
});
