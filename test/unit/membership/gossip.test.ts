// Gossip between nodes over fake peers: every message goes through the wire codec, so what one
// Gossip sends is exactly what the other can decode. Records are really signed and verified.
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeControlPayload, encodeControlMessage, type ControlMessage } from '../../../src/control/messages.js';
import { MAX_DIGEST_ENTRIES } from '../../../src/control/roster-messages.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { Gossip, type GossipPeer } from '../../../src/membership/gossip.js';
import { Roster } from '../../../src/roster/roster.js';
import { verifyRecord } from '../../../src/roster/signature.js';
import { NOW, fp, signed, signer, type Signer } from './fixtures.js';

type RosterMsg = Extract<ControlMessage, { type: 'digest' | 'fetch' | 'record' }>;

let admin: Signer;
beforeAll(async () => {
  admin = await signer('admin');
});

/** One node: its rosters, its Gossip, and the peers (links to other nodes) it has. */
class TestNode {
  readonly rosters = new Map<string, Roster>();
  readonly links: FakePeer[] = [];
  readonly gossip: Gossip;
  /** Records this node received, by sender. */
  readonly received: string[] = [];

  constructor(readonly fingerprint: string, networks: string[]) {
    for (const n of networks) this.rosters.set(n, new Roster(n));
    this.gossip = new Gossip({
      rosters: () => this.rosters,
      peers: () => this.links,
      // What Membership.offer does: verify, merge, push a change on to the others.
      receive: (from, bytes) => {
        this.received.push(from.fingerprint);
        const verdict = verifyRecord(bytes, [admin.fingerprint], NOW);
        if (!verdict.ok) return;
        const outcome = this.rosters.get(verdict.record.network)?.merge(verdict.verified);
        if (outcome === 'added' || outcome === 'updated' || outcome === 'revoked') this.gossip.push([verdict.verified], from.fingerprint);
      },
      logger: memoryLogger().logger,
    });
  }

  hold(by: Signer, over: Parameters<typeof signed>[1]): void {
    const verdict = verifyRecord(signed(by, over), [by.fingerprint], NOW);
    if (!verdict.ok) throw new Error(verdict.error);
    this.rosters.get(verdict.record.network)!.merge(verdict.verified);
  }

  digest(network: string): string {
    return JSON.stringify(this.rosters.get(network)!.digest(), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

/** `from`'s view of `to`: sending encodes, and the far side decodes and handles it (queued, not recursive). */
class FakePeer implements GossipPeer {
  readonly sent: RosterMsg[] = [];
  back!: FakePeer;

  constructor(
    readonly to: TestNode,
    readonly fingerprint: string,
    private readonly networks: string[],
    private readonly queue: Array<() => void> | null,
  ) {}

  get label(): string {
    return this.fingerprint.slice(0, 8);
  }

  inNetwork(network: string): boolean {
    return this.networks.includes(network);
  }

  send(msg: ControlMessage): void {
    const decoded = decodeControlPayload(encodeControlMessage(msg).subarray(2));
    if (!decoded.ok) throw new Error(decoded.error);
    const wire = decoded.msg as RosterMsg;
    this.sent.push(wire);
    if (this.queue) this.queue.push(() => this.to.gossip.handle(this.back, wire));
  }
}

/** Links a and b in `networks` (each sees the other in them); returns a's and b's peers. */
function link(a: TestNode, b: TestNode, networks: string[], queue: Array<() => void> | null): [FakePeer, FakePeer] {
  const ab = new FakePeer(b, b.fingerprint, networks, queue);
  const ba = new FakePeer(a, a.fingerprint, networks, queue);
  ab.back = ba;
  ba.back = ab;
  a.links.push(ab);
  b.links.push(ba);
  return [ab, ba];
}

function drain(queue: Array<() => void>): number {
  let steps = 0;
  while (queue.length > 0) {
    queue.shift()!();
    if (++steps > 10_000) throw new Error('gossip did not settle');
  }
  return steps;
}

describe('Gossip D/Q/R', () => {
  it('two nodes with different rosters converge after both open', () => {
    const queue: Array<() => void> = [];
    const a = new TestNode(fp('a1'), ['corp']);
    const b = new TestNode(fp('b1'), ['corp']);
    a.hold(admin, { fingerprint: fp('01'), name: 'one', version: 3n });
    a.hold(admin, { fingerprint: fp('02'), name: 'two', address: '10.42.0.8' });
    b.hold(admin, { fingerprint: fp('01'), name: 'one', version: 2n });
    b.hold(admin, { fingerprint: fp('03'), name: 'three', address: '10.42.0.9', kind: 'revoked' });
    const [ab, ba] = link(a, b, ['corp'], queue);
    a.gossip.opened(ab);
    b.gossip.opened(ba);
    drain(queue);
    expect(a.digest('corp')).toBe(b.digest('corp'));
    expect(a.rosters.get('corp')!.digest().map((e) => [e.fingerprint.slice(0, 2), e.version])).toEqual([
      ['01', 3n],
      ['02', 1n],
      ['03', 1n],
    ]);
    // Only what was missing or older travelled: 01 v3 and 02 to b, 03 to a.
    // (ab is a's link to b: what a sent.)
    expect(ab.sent.filter((m) => m.type === 'record')).toHaveLength(2);
    expect(ba.sent.filter((m) => m.type === 'record')).toHaveLength(1);
    // a asked only for what it lacked, not for 01, which it holds newer.
    const aFetches = ab.sent.filter((m) => m.type === 'fetch').flatMap((m) => (m.type === 'fetch' ? m.fingerprints : []));
    expect(aFetches).toEqual([fp('03')]);
  });

  it('equal rosters exchange digests and nothing else', () => {
    const queue: Array<() => void> = [];
    const a = new TestNode(fp('a1'), ['corp']);
    const b = new TestNode(fp('b1'), ['corp']);
    for (const n of [a, b]) n.hold(admin, { fingerprint: fp('01'), name: 'one' });
    const [ab, ba] = link(a, b, ['corp'], queue);
    a.gossip.opened(ab);
    b.gossip.opened(ba);
    drain(queue);
    expect([...ab.sent, ...ba.sent].map((m) => m.type)).toEqual(['digest', 'digest']);
  });

  it('a roster larger than one digest message still converges (several D)', () => {
    const queue: Array<() => void> = [];
    const a = new TestNode(fp('a1'), ['corp']);
    const b = new TestNode(fp('b1'), ['corp']);
    const count = MAX_DIGEST_ENTRIES + 5;
    for (let i = 0; i < count; i++) {
      const hex = (i + 16).toString(16).padStart(4, '0');
      a.hold(admin, { fingerprint: hex.repeat(16), name: `m${i}`, address: `10.42.${Math.floor(i / 200)}.${(i % 200) + 2}`, network: 'corp' });
    }
    const [ab, ba] = link(a, b, ['corp'], queue);
    a.gossip.opened(ab);
    b.gossip.opened(ba);
    drain(queue);
    expect(ab.sent.filter((m) => m.type === 'digest')).toHaveLength(2);
    expect(b.rosters.get('corp')!.digest()).toHaveLength(count);
  });

  it('a node answers a fetch for a fingerprint it does not hold with nothing', () => {
    const a = new TestNode(fp('a1'), ['corp']);
    const b = new TestNode(fp('b1'), ['corp']);
    a.hold(admin, { fingerprint: fp('01'), name: 'one' });
    const [ab] = link(a, b, ['corp'], null);
    a.gossip.handle(ab, { type: 'fetch', network: 'corp', fingerprints: [fp('77')] });
    expect(ab.sent).toEqual([]);
    // A fetch for a held one and an unknown one: just the held one, once even if asked twice.
    a.gossip.handle(ab, { type: 'fetch', network: 'corp', fingerprints: [fp('77'), fp('01'), fp('01')] });
    expect(ab.sent.map((m) => m.type)).toEqual(['record']);
  });

  it('ignores a digest or fetch from a peer not in the network, and for a network without a roster', () => {
    const a = new TestNode(fp('a1'), ['corp', 'lab']);
    const b = new TestNode(fp('b1'), ['corp', 'lab']);
    a.hold(admin, { fingerprint: fp('01'), name: 'one' });
    const [ab] = link(a, b, ['lab'], null);
    a.gossip.handle(ab, { type: 'digest', network: 'corp', entries: [{ fingerprint: fp('05'), version: 9n }] });
    a.gossip.handle(ab, { type: 'fetch', network: 'corp', fingerprints: [fp('01')] });
    a.gossip.handle(ab, { type: 'digest', network: 'other', entries: [{ fingerprint: fp('05'), version: 9n }] });
    expect(ab.sent).toEqual([]);
    // opened() says nothing about corp to a lab-only peer either.
    a.gossip.opened(ab);
    expect(ab.sent.map((m) => (m.type === 'digest' ? m.network : m.type))).toEqual(['lab']);
  });

  it('push: to every peer in the record’s network except the one it came from', () => {
    const a = new TestNode(fp('a1'), ['corp']);
    const [toB] = link(a, new TestNode(fp('b1'), ['corp']), ['corp'], null);
    const [toC] = link(a, new TestNode(fp('c1'), ['corp']), ['corp'], null);
    const [toD] = link(a, new TestNode(fp('d1'), ['lab']), ['lab'], null);
    const verdict = verifyRecord(signed(admin, { fingerprint: fp('01'), name: 'one' }), [admin.fingerprint], NOW);
    if (!verdict.ok) throw new Error(verdict.error);
    a.gossip.push([verdict.verified], fp('b1'));
    expect(toB.sent).toEqual([]);
    expect(toC.sent).toEqual([{ type: 'record', record: verdict.verified.bytes }]);
    expect(toD.sent).toEqual([]);
    // From nobody (this admin signed it): every corp peer.
    a.gossip.push([verdict.verified], undefined);
    expect(toB.sent).toHaveLength(1);
    a.gossip.push([], undefined);
    expect(toB.sent).toHaveLength(1);
  });

  it('a revocation pushed into a chain o–a–b–c reaches c, and flooding stops', () => {
    const queue: Array<() => void> = [];
    const [o, a, b, c] = ['0f', 'a1', 'b1', 'c1'].map((h) => new TestNode(fp(h), ['corp'])) as [TestNode, TestNode, TestNode, TestNode];
    for (const n of [o, a, b, c]) n.hold(admin, { fingerprint: fp('01'), name: 'one' });
    link(o, a, ['corp'], queue);
    link(a, b, ['corp'], queue);
    link(b, c, ['corp'], queue);
    const verdict = verifyRecord(signed(admin, { fingerprint: fp('01'), name: 'one', version: 2n, kind: 'revoked' }), [admin.fingerprint], NOW);
    if (!verdict.ok) throw new Error(verdict.error);
    o.rosters.get('corp')!.merge(verdict.verified);
    o.gossip.push([verdict.verified], undefined);
    const steps = drain(queue);
    for (const n of [o, a, b, c]) expect(n.rosters.get('corp')!.isMember(fp('01'), NOW)).toBe(false);
    // o → a → b → c; none sends it back the way it came.
    expect(steps).toBe(3);
    expect([a.received, b.received, c.received, o.received]).toEqual([[fp('0f')], [fp('a1')], [fp('b1')], []]);
  });
});
