// Two control sessions wired back to back, no QUIC: the H/A/W/K/G state machine.
import { describe, expect, it } from 'vitest';
import { MAX_ANNOUNCED_PER_FOREIGN_NETWORK, MAX_ANNOUNCED_PER_NETWORK, MAX_FOREIGN_NETWORKS, Session, type SessionEvents, type SessionOptions } from '../../../src/peer/session.js';
import { decodeControlPayload, encodeControlMessage } from '../../../src/control/messages.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { Metrics } from '../../../src/metrics/metrics.js';

interface Recorded {
  events: string[];
  closed: Array<[number, string]>;
}

function makeSession(direction: 'inbound' | 'outbound', clock: { now: number }, out: Uint8Array[], rec: Recorded, extra: Partial<SessionOptions> = {}): Session {
  const events: SessionEvents = {
    hello: (s) => rec.events.push(`hello ${s.peerNonce}`),
    announce: (_s, network, routes) => rec.events.push(`announce ${network} ${routes.map((r) => `${r.prefix}@${r.metric}`).join(',')}`),
    withdraw: (_s, network, prefix) => rec.events.push(`withdraw ${network} ${prefix}`),
    goodbye: () => rec.events.push('goodbye'),
    violation: (_s, reason) => rec.events.push(`violation ${reason}`),
  };
  return new Session({
    channel: { write: (bytes) => out.push(bytes), close: (code, reason) => rec.closed.push([code, reason]) },
    events,
    direction,
    localFingerprint: direction === 'outbound' ? 'a'.repeat(64) : 'b'.repeat(64),
    peerFingerprint: direction === 'outbound' ? 'b'.repeat(64) : 'a'.repeat(64),
    peerName: 'peer',
    remoteAddress: '127.0.0.1:1',
    localNonce: direction === 'outbound' ? 5n : 9n,
    logger: memoryLogger().logger,
    metrics: new Metrics({ processMetrics: false }),
    now: () => clock.now,
    keepaliveMs: 10_000,
    deadAfterMs: 30_000,
    ...extra,
  });
}

function pipe(from: Uint8Array[], to: Session): void {
  while (from.length) to.receive(from.shift()!);
}

describe('control session', () => {
  it('exchanges Hello and Announce, learns the dialer facts, and handles Withdraw and Goodbye', () => {
    const clock = { now: 0 };
    const toB: Uint8Array[] = [];
    const toA: Uint8Array[] = [];
    const recA: Recorded = { events: [], closed: [] };
    const recB: Recorded = { events: [], closed: [] };
    const a = makeSession('outbound', clock, toB, recA);
    const b = makeSession('inbound', clock, toA, recB);
    a.start(new Map([['corp', [{ prefix: '10.42.0.7/32', metric: 1 }]]]));
    b.start(new Map([['corp', [{ prefix: '10.42.0.9/32', metric: 1 }]]]));
    pipe(toB, b);
    pipe(toA, a);
    expect(recB.events).toEqual(['hello 5', 'announce corp 10.42.0.7/32@1']);
    expect(recA.events).toEqual(['hello 9', 'announce corp 10.42.0.9/32@1']);
    // Both ends name the dialer (a) and its nonce for this connection.
    expect(a.dialer).toEqual({ dialerNonce: 5n, dialerFingerprint: 'a'.repeat(64) });
    expect(b.dialer).toEqual({ dialerNonce: 5n, dialerFingerprint: 'a'.repeat(64) });
    a.withdraw('corp', '10.42.0.7/32');
    a.goodbye();
    pipe(toB, b);
    expect(recB.events.slice(2)).toEqual(['withdraw corp 10.42.0.7/32', 'goodbye']);
    expect(b.announced.get('corp')).toEqual(new Map());
  });

  it('sends Keepalive on schedule and reports a silent peer as dead', () => {
    const clock = { now: 0 };
    const out: Uint8Array[] = [];
    const rec: Recorded = { events: [], closed: [] };
    const s = makeSession('outbound', clock, out, rec);
    s.start(new Map());
    out.length = 0;
    clock.now = 9_999;
    expect(s.tick()).toBe(false);
    expect(out).toEqual([]);
    clock.now = 10_000;
    expect(s.tick()).toBe(false);
    expect(out.map((b) => String.fromCharCode(b[2]!))).toEqual(['K']);
    clock.now = 30_001;
    expect(s.tick()).toBe(true);
  });

  it('counts any message as a sign of life', () => {
    const clock = { now: 0 };
    const rec: Recorded = { events: [], closed: [] };
    const s = makeSession('inbound', clock, [], rec);
    s.receive(encodeControlMessage({ type: 'hello', nonce: 1n }));
    clock.now = 25_000;
    s.receive(encodeControlMessage({ type: 'keepalive', time: 0n }));
    clock.now = 50_000;
    expect(s.tick()).toBe(false);
    clock.now = 55_001;
    expect(s.tick()).toBe(true);
  });

  it('reports violations: a message before Hello, a second Hello, a bad length, a closed control stream', () => {
    const cases: Array<[string, Uint8Array[], string]> = [
      ['announce first', [encodeControlMessage({ type: 'announce', network: 'corp', routes: [{ prefix: '10.0.0.1/32', metric: 1 }] })], 'expected Hello first'],
      ['two hellos', [encodeControlMessage({ type: 'hello', nonce: 1n }), encodeControlMessage({ type: 'hello', nonce: 2n })], 'second Hello'],
      ['zero length', [encodeControlMessage({ type: 'hello', nonce: 1n }), new Uint8Array([0, 0])], 'outside 1..4096'],
      ['oversized', [encodeControlMessage({ type: 'hello', nonce: 1n }), new Uint8Array([0x10, 0x01])], 'outside 1..4096'],
    ];
    for (const [name, chunks, expected] of cases) {
      const rec: Recorded = { events: [], closed: [] };
      const s = makeSession('inbound', { now: 0 }, [], rec);
      for (const c of chunks) s.receive(c);
      expect(rec.events.find((e) => e.startsWith('violation')), name).toContain(expected);
    }
    const rec: Recorded = { events: [], closed: [] };
    const s = makeSession('inbound', { now: 0 }, [], rec);
    s.receiveEnd();
    expect(rec.events).toEqual(['violation peer closed the control stream']);
  });

  it('skips unknown message types (forward compatibility)', () => {
    const rec: Recorded = { events: [], closed: [] };
    const s = makeSession('inbound', { now: 0 }, [], rec);
    s.receive(encodeControlMessage({ type: 'hello', nonce: 1n }));
    s.receive(new Uint8Array([0, 3, 0x5a, 1, 2]));
    s.receive(encodeControlMessage({ type: 'withdraw', network: 'corp', prefix: '10.0.0.1/32' }));
    expect(rec.events).toEqual(['hello 1', 'withdraw corp 10.0.0.1/32']);
  });

  it('sends nothing after it is closed', () => {
    const out: Uint8Array[] = [];
    const s = makeSession('outbound', { now: 0 }, out, { events: [], closed: [] });
    s.markClosed();
    s.start(new Map([['corp', [{ prefix: '10.42.0.7/32', metric: 1 }]]]));
    s.goodbye();
    expect(out).toEqual([]);
  });
});

describe('control session, bounded and original-compatible', () => {
  const opened = () => {
    const clock = { now: 1000 };
    const out: Uint8Array[] = [];
    const rec: Recorded = { events: [], closed: [] };
    return { clock, out, rec };
  };
  const hello = encodeControlMessage({ type: 'hello', nonce: 3n });
  const announce = (network: string, prefixes: string[]) =>
    encodeControlMessage({ type: 'announce', network, routes: prefixes.map((prefix) => ({ prefix, metric: 1 })) });

  it('remembers only what keepAnnounced allows: 4096 routes per local network, a few foreign networks of 256', () => {
    const { clock, out, rec } = opened();
    const keepAnnounced = (network: string, prefix: string): 'local' | 'foreign' | 'drop' => (prefix.startsWith('junk') ? 'drop' : network === 'corp' ? 'local' : 'foreign');
    const s = makeSession('inbound', clock, out, rec, { keepAnnounced });
    s.receive(hello);
    s.receive(announce('corp', ['10.42.0.7/32', 'junk1']));
    expect([...s.announced.get('corp')!.keys()]).toEqual(['10.42.0.7/32']);
    // Every announcement still reaches the owner (route policy refuses and counts what it must).
    expect(rec.events.filter((e) => e.startsWith('announce'))).toHaveLength(1);
    const many = (count: number, at = 0) => Array.from({ length: count }, (_, j) => `10.${(at + j) >> 8}.${(at + j) & 255}.0/24`);
    for (let i = 0; i < MAX_ANNOUNCED_PER_NETWORK + 10; i += 200) s.receive(announce('corp', many(200, i)));
    expect(s.announced.get('corp')!.size).toBe(MAX_ANNOUNCED_PER_NETWORK);
    // Networks this node may add on reload are kept too, but only a few, and small.
    for (let n = 0; n < MAX_FOREIGN_NETWORKS + 5; n++) s.receive(announce(`net${n}`, many(150)));
    for (let n = 0; n < MAX_FOREIGN_NETWORKS; n++) s.receive(announce(`net${n}`, many(150, 150)));
    const foreign = [...s.announced.keys()].filter((k) => k !== 'corp');
    expect(foreign).toHaveLength(MAX_FOREIGN_NETWORKS);
    for (const network of foreign) expect(s.announced.get(network)!.size).toBe(MAX_ANNOUNCED_PER_FOREIGN_NETWORK);
  });

  it('sends a Keepalive right after Hello and the announcements when asked (original VibePN peers)', () => {
    const { clock, out, rec } = opened();
    const s = makeSession('outbound', clock, out, rec, { keepaliveAtStart: true });
    s.start(new Map([['corp', [{ prefix: '10.42.0.7/32', metric: 1 }]]]));
    const types = out.map((bytes) => {
      const decoded = decodeControlPayload(bytes.subarray(2));
      return decoded.ok ? decoded.msg.type : 'bad';
    });
    expect(types).toEqual(['hello', 'announce', 'keepalive']);
  });

  it('takes control messages from outside the control stream once open, ignoring a Hello there', () => {
    const { clock, out, rec } = opened();
    const s = makeSession('inbound', clock, out, rec);
    s.receiveOutOfBand({ type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.5/32', metric: 1 }] });
    expect(rec.events).toEqual([]);
    s.receive(hello);
    s.receiveOutOfBand({ type: 'hello', nonce: 9n });
    s.receiveOutOfBand({ type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.5/32', metric: 1 }] });
    s.receiveOutOfBand({ type: 'goodbye' });
    expect(rec.events).toEqual(['hello 3', 'announce corp 10.42.0.5/32@1', 'goodbye']);
    expect(s.peerNonce).toBe(3n);
  });
});

describe('control session: capabilities (PROTOCOL.md#v-capabilities)', () => {
  it('sends C right after Hello when it has capabilities, and nothing when it has none to offer', () => {
    const clock = { now: 0 };
    const sent: Uint8Array[] = [];
    makeSession('outbound', clock, sent, { events: [], closed: [] }, { capabilities: ['tcp-gso'] }).start(new Map([['corp', [{ prefix: '10.42.0.7/32', metric: 1 }]]]));
    expect(sent.map((b) => decodeControlPayload(b.subarray(2))).map((r) => (r.ok ? r.msg.type : r.error))).toEqual(['hello', 'capabilities', 'announce']);
    const plain: Uint8Array[] = [];
    makeSession('outbound', clock, plain, { events: [], closed: [] }).start(new Map());
    expect(plain.map((b) => b[2])).toEqual([0x48]);
  });

  it('records what the peer accepts from its latest C, ignoring tokens it does not know', () => {
    const clock = { now: 0 };
    const rec: Recorded = { events: [], closed: [] };
    const toB: Uint8Array[] = [];
    const b = makeSession('inbound', clock, [], rec);
    makeSession('outbound', clock, toB, { events: [], closed: [] }, { capabilities: ['future-thing', 'tcp-gso'] }).start(new Map());
    expect(b.peerCapabilities.superSegments).toBe(false);
    pipe(toB, b);
    expect(b.peerCapabilities.superSegments).toBe(true);
    b.receive(encodeControlMessage({ type: 'capabilities', tokens: ['future-thing'] }));
    expect(b.peerCapabilities.superSegments).toBe(false);
    expect(rec.events).toEqual(['hello 5']);
    expect(rec.closed).toEqual([]);
  });

  it('reads nat and relay from C; relay counts only with nat', () => {
    const clock = { now: 0 };
    const b = makeSession('inbound', clock, [], { events: [], closed: [] });
    b.receive(encodeControlMessage({ type: 'hello', nonce: 5n }));
    b.receive(encodeControlMessage({ type: 'capabilities', tokens: ['nat', 'relay'] }));
    expect(b.peerCapabilities).toEqual({ superSegments: false, natTraversal: true, relay: true, roster: false });
    b.receive(encodeControlMessage({ type: 'capabilities', tokens: ['relay'] }));
    expect(b.peerCapabilities).toEqual({ superSegments: false, natTraversal: false, relay: false, roster: false });
  });

  // PROTOCOL.md#v-introductions: N and E go only to a node that offered nat; to any other node
  // they are just unknown types, skipped like any newer message.
  it('hands N and E to its owner only when it offered nat itself', () => {
    for (const offered of [true, false]) {
      const seen: string[] = [];
      const b = makeSession('inbound', { now: 0 }, [], { events: [], closed: [] }, {
        capabilities: offered ? ['nat'] : [],
        events: {
          hello: () => {},
          announce: () => {},
          withdraw: () => {},
          goodbye: () => {},
          violation: (_s, reason) => seen.push(`violation ${reason}`),
          introduce: (_s, fp) => seen.push(`introduce ${fp.slice(0, 4)}`),
          endpoint: (_s, fp, address) => seen.push(`endpoint ${fp.slice(0, 4)} ${address ? `${address.host}:${address.port}` : 'none'}`),
        },
      });
      b.receive(encodeControlMessage({ type: 'hello', nonce: 5n }));
      b.receive(encodeControlMessage({ type: 'introduce', fingerprint: 'c'.repeat(64) }));
      b.receive(encodeControlMessage({ type: 'endpoint', fingerprint: 'd'.repeat(64), address: { host: '198.51.100.7', port: 51820 } }));
      b.receive(encodeControlMessage({ type: 'endpoint', fingerprint: 'e'.repeat(64), address: null }));
      expect(seen, `offered nat: ${offered}`).toEqual(offered ? ['introduce cccc', 'endpoint dddd 198.51.100.7:51820', 'endpoint eeee none'] : []);
    }
  });

  it('treats a C before Hello as the violation any first message but Hello is', () => {
    const rec: Recorded = { events: [], closed: [] };
    const b = makeSession('inbound', { now: 0 }, [], rec);
    b.receive(encodeControlMessage({ type: 'capabilities', tokens: ['tcp-gso'] }));
    expect(rec.events).toEqual(['violation expected Hello first, got capabilities']);
  });
});

