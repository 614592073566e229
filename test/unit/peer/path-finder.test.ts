// PathFinder: when it asks for introductions, what it dials on an answer, when it goes through a
// relay, how it watches a found direct path, and what it says when there is no path. Driven by
// hand on a FakeClock with stand-in links; the dials are only recorded.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { newPeer } from '../../../src/config/write.js';
import { memoryLogger } from '../../../src/log/logger.js';
import type { DialPath } from '../../../src/peer/handshake.js';
import { PATH_SILENT_MS, PathFinder, RELAY_AFTER_MS, RETRY_DIRECT_MS } from '../../../src/peer/path-finder.js';
import { Peer, type Link } from '../../../src/peer/peer.js';
import type { QuicConnection } from '../../../src/quic/connection.js';
import { FakeQuicConnection } from '../../helpers/unit-peer-fakes.js';
import { APP_DEAD_PEER } from '../../../src/quic/errors.js';

const FP = { target: 'a'.repeat(64), h: 'b'.repeat(64), k: 'c'.repeat(64) };

/** A live link of `peer` whose session offered nat (and relay when asked). */
function linkOf(peer: Peer, options: { relayed?: boolean; relay?: boolean; remote?: string } = {}): Link & { fake: FakeQuicConnection } {
  const fake = new FakeQuicConnection('outbound', options.remote ?? (options.relayed ? '0.0.0.1:1' : '192.0.2.20:51820'));
  const session = { state: 'open', peerCapabilities: { superSegments: false, natTraversal: true, relay: options.relay ?? false } };
  const link = { conn: fake.asQuic() as QuicConnection, peer, session, control: null, relayed: options.relayed ?? false, fake } as unknown as Link & { fake: FakeQuicConnection };
  peer.links.add(link);
  return link;
}

function setup(options: { address?: string } = {}) {
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger();
  const target = new Peer(newPeer('b', ['corp'], { address: options.address ?? '', fingerprint: FP.target }), 'b', FP.target);
  const h = new Peer(newPeer('h', ['corp'], { address: '192.0.2.1:51820', fingerprint: FP.h }), 'h', FP.h);
  const k = new Peer(newPeer('k', ['corp'], { address: '192.0.2.2:51820', fingerprint: FP.k }), 'k', FP.k);
  const introducers: Peer[] = [];
  const asked: string[] = [];
  const dials: DialPath[] = [];
  const finder = new PathFinder(target, {
    clock,
    logger,
    introducers: () => introducers,
    ask: (p) => asked.push(p.name),
    dial: (path) => dials.push(path),
    relayAddress: (relay) => ({ host: relay === h ? '0.0.0.1' : '0.0.0.2', port: 1 }),
    relayOf: (link) => (link.relayed ? h : undefined),
  });
  /** h (and k) connected, h with relay = true unless told otherwise. */
  const connect = (peer: Peer, relay: boolean): void => {
    peer.active = linkOf(peer, { relay });
    introducers.push(peer);
  };
  const tick = (seconds = 1): void => {
    for (let i = 0; i < seconds; i++) {
      clock.advance(1000);
      finder.tick();
    }
  };
  return { clock, lines, target, h, k, finder, asked, dials, connect, tick };
}

describe('PathFinder: finding a peer without an address', () => {
  it('asks every introducer at once, again every 10 s, and a new introducer as soon as it connects', () => {
    const s = setup();
    s.connect(s.h, true);
    s.tick();
    expect(s.asked).toEqual(['h']);
    s.connect(s.k, false);
    s.tick();
    expect(s.asked).toEqual(['h', 'k']);
    s.tick(RETRY_DIRECT_MS / 1000 - 2);
    expect(s.asked).toEqual(['h', 'k']);
    s.tick();
    expect(s.asked).toEqual(['h', 'k', 'h', 'k']);
  });

  it('dials the address an introducer reports, once while the dial may still run, and again after it failed', () => {
    const s = setup();
    s.connect(s.h, true);
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    expect(s.dials.map((d) => d.shown)).toEqual(['198.51.100.7:51820 (introduced by h)']);
    expect(s.dials[0]!.address).toEqual({ host: '198.51.100.7', port: 51820 });
    s.dials[0]!.failed('no answer within 5s');
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    expect(s.dials).toHaveLength(2);
    // "No session with it" dials nothing.
    s.finder.endpoint(s.k, null);
    expect(s.dials).toHaveLength(2);
  });

  it('goes through a relay that knows the peer when nothing direct came up within 5 s', () => {
    const s = setup();
    s.connect(s.k, false);
    s.connect(s.h, true);
    s.tick();
    s.finder.endpoint(s.k, { host: '198.51.100.7', port: 51820 });
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    // The search began at the first tick: 4 s later, still nothing through the relay.
    s.tick(RELAY_AFTER_MS / 1000 - 1);
    expect(s.dials.filter((d) => d.shown.startsWith('via'))).toEqual([]);
    s.tick();
    const relayDials = s.dials.filter((d) => d.shown.startsWith('via'));
    // k does not relay; h does.
    expect(relayDials.map((d) => [d.shown, d.address])).toEqual([['via h', { host: '0.0.0.1', port: 1 }]]);
    expect(s.lines.some((l) => l.includes('connecting via relay h'))).toBe(true);
    // One relay dial at a time.
    s.tick(2);
    expect(s.dials.filter((d) => d.shown.startsWith('via'))).toHaveLength(1);
  });

  it('does not dial through a relay that has no session with the peer', () => {
    const s = setup();
    s.connect(s.h, true);
    s.tick();
    s.finder.endpoint(s.h, null);
    s.tick(10);
    expect(s.dials).toEqual([]);
    expect(s.finder.reason).toBe('no address, and none of the peers asked (h) has a session with it; no relay either');
  });

  it('while relayed, keeps trying direct every 10 s and does not dial the relay again', () => {
    const s = setup();
    s.connect(s.h, true);
    s.target.active = linkOf(s.target, { relayed: true });
    s.tick();
    expect(s.asked).toEqual(['h']);
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    expect(s.dials.map((d) => d.shown)).toEqual(['198.51.100.7:51820 (introduced by h)']);
    s.tick(RETRY_DIRECT_MS / 1000);
    expect(s.asked).toEqual(['h', 'h']);
    expect(s.dials.some((d) => d.shown.startsWith('via'))).toBe(false);
    expect(s.finder.reason).toBeNull();
  });
});

describe('PathFinder: a found direct path', () => {
  it('is pinged once quiet for a second, and after 3 s of silence the relayed path is brought up', () => {
    const s = setup();
    s.connect(s.h, true);
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    const direct = linkOf(s.target);
    s.target.active = direct;
    s.tick();
    expect(direct.fake.pings).toBe(0);
    s.tick();
    expect(direct.fake.pings).toBe(1);
    // An answer counts as life.
    direct.fake.received++;
    s.tick(2);
    expect(s.dials.filter((d) => d.shown.startsWith('via'))).toEqual([]);
    s.tick(PATH_SILENT_MS / 1000);
    expect(s.dials.filter((d) => d.shown.startsWith('via')).map((d) => d.shown)).toEqual(['via h']);
    expect(s.lines.some((l) => l.includes('nothing received on the direct path for 3s'))).toBe(true);
    // And introductions are asked again (the NAT may have moved).
    expect(s.asked.length).toBeGreaterThanOrEqual(1);
  });

  it('is not watched where no relay could take over (a hub that its peers dial in to)', () => {
    const s = setup();
    const direct = linkOf(s.target);
    s.target.active = direct;
    s.tick(10);
    expect(direct.fake.pings).toBe(0);
    expect(s.dials).toEqual([]);
  });

  it('is left alone for a peer with an address of its own that answers there', () => {
    const s = setup({ address: '192.0.2.30:51820' });
    s.connect(s.h, true);
    const direct = linkOf(s.target);
    s.target.active = direct;
    s.tick(10);
    expect(direct.fake.pings).toBe(0);
    expect(s.asked).toEqual([]);
    expect(s.finder.engaged).toBe(false);
  });
});

describe('PathFinder: a relayed session', () => {
  it('ends as soon as its relay is gone, instead of at the liveness timeout', () => {
    const s = setup();
    s.connect(s.h, true);
    const relayed = linkOf(s.target, { relayed: true });
    s.target.active = relayed;
    s.tick();
    expect(relayed.fake.closes).toEqual([]);
    s.h.active = null;
    s.tick();
    expect(relayed.fake.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'relay gone' }]);
    expect(s.lines.some((l) => l.includes('the relay of its session is gone'))).toBe(true);
  });

  it('ends when its relay stops relaying (relay = false by reload: a new C without relay)', () => {
    const s = setup();
    s.connect(s.h, true);
    const relayed = linkOf(s.target, { relayed: true });
    s.target.active = relayed;
    s.tick();
    expect(relayed.fake.closes).toEqual([]);
    s.h.active!.session!.peerCapabilities.relay = false;
    s.tick();
    expect(relayed.fake.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'relay gone' }]);
  });
});

describe('PathFinder.reason', () => {
  it('says when nobody can introduce the peer', () => {
    const s = setup();
    s.tick();
    expect(s.finder.reason).toBe('no address, and no connected peer that can introduce it (a common peer running vibepn with NAT traversal)');
  });

  it('says that no common peer relays when direct attempts failed', () => {
    const s = setup();
    s.connect(s.k, false);
    s.finder.endpoint(s.k, { host: '198.51.100.7', port: 51820 });
    s.dials[0]!.failed('cannot connect to 198.51.100.7:51820: no answer within 5s');
    expect(s.finder.reason).toBe('direct attempts through k failed (cannot connect to 198.51.100.7:51820: no answer within 5s); no common peer has relay = true to relay for it');
  });

  it('names the relay and its failure', () => {
    const s = setup();
    s.connect(s.h, true);
    s.finder.endpoint(s.h, { host: '198.51.100.7', port: 51820 });
    expect(s.finder.reason).toMatch(/; trying via relay h$/);
    s.tick(RELAY_AFTER_MS / 1000 + 1);
    s.dials.find((d) => d.shown === 'via h')!.failed('refused: certificate mismatch');
    expect(s.finder.reason).toMatch(/; relaying via h failed: refused: certificate mismatch$/);
  });

  it('is null while connected, and for a peer with an address that has not failed', () => {
    const s = setup({ address: '192.0.2.30:51820' });
    expect(s.finder.reason).toBeNull();
    const t = setup();
    t.target.active = linkOf(t.target, { relayed: true });
    expect(t.finder.reason).toBeNull();
  });
});
