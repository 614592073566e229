// Introductions: the common peer's side of hole punching. Who is told what, when the asker hears
// "no session with it", and the per-pair rate limit. Stand-in links record what their sessions send.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import type { ControlMessage } from '../../../src/control/messages.js';
import { newPeer } from '../../../src/config/write.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { Introductions } from '../../../src/peer/introductions.js';
import type { Link } from '../../../src/peer/peer.js';
import { PeerMap } from '../../../src/peer/peers.js';
import { FakeQuicConnection } from '../../helpers/unit-peer-fakes.js';

const FP = { a: 'a'.repeat(64), b: 'b'.repeat(64), c: 'c'.repeat(64) };

function setup() {
  const clock = new FakeClock();
  const peers = new PeerMap();
  const sent = new Map<string, ControlMessage[]>();
  const connect = (name: 'a' | 'b' | 'c', remote: string, options: { nat?: boolean; relayed?: boolean } = {}): Link => {
    const peer = peers.addConfigured(newPeer(name, ['corp'], { fingerprint: FP[name] }), undefined);
    const messages: ControlMessage[] = [];
    sent.set(name, messages);
    const session = {
      state: 'open',
      peerCapabilities: { superSegments: false, natTraversal: options.nat ?? true, relay: false },
      send: (msg: ControlMessage) => messages.push(msg),
    };
    const link = { conn: new FakeQuicConnection('inbound', remote).asQuic(), peer, session, control: null, relayed: options.relayed ?? false } as unknown as Link;
    peer.links.add(link);
    peer.active = link;
    return link;
  };
  const intro = new Introductions({ peers, clock, logger: memoryLogger().logger });
  return { clock, intro, sent, connect };
}

describe('Introductions.requested', () => {
  it('tells each side where the other is, as this node sees it (IPv4-mapped shown as IPv4)', () => {
    const s = setup();
    const a = s.connect('a', '[::ffff:198.51.100.10]:51820');
    s.connect('b', '[2001:db8::11]:40001');
    s.intro.requested(a, FP.b);
    expect(s.sent.get('a')).toEqual([{ type: 'endpoint', fingerprint: FP.b, address: { host: '2001:db8::11', port: 40001 } }]);
    expect(s.sent.get('b')).toEqual([{ type: 'endpoint', fingerprint: FP.a, address: { host: '198.51.100.10', port: 51820 } }]);
  });

  it('answers "no session with it" for a stranger, a peer that is down, one without nat, one it reaches only through a relay, and the asker itself', () => {
    for (const [why, prepare] of [
      ['stranger', () => {}],
      ['no nat', (s: ReturnType<typeof setup>) => s.connect('b', '198.51.100.11:51820', { nat: false })],
      ['relayed', (s: ReturnType<typeof setup>) => s.connect('b', '0.0.0.3:1', { relayed: true })],
    ] as const) {
      const s = setup();
      const a = s.connect('a', '198.51.100.10:51820');
      prepare(s);
      s.intro.requested(a, FP.b);
      expect(s.sent.get('a'), why).toEqual([{ type: 'endpoint', fingerprint: FP.b, address: null }]);
      expect(s.sent.get('b') ?? [], why).toEqual([]);
    }
    const s = setup();
    const a = s.connect('a', '198.51.100.10:51820');
    s.intro.requested(a, FP.a);
    expect(s.sent.get('a')).toEqual([{ type: 'endpoint', fingerprint: FP.a, address: null }]);
  });

  it('ignores an asker that did not offer nat, or that reaches this node only through a relay', () => {
    const s = setup();
    const a = s.connect('a', '198.51.100.10:51820', { nat: false });
    s.connect('b', '198.51.100.11:51820');
    s.intro.requested(a, FP.b);
    expect(s.sent.get('a')).toEqual([]);
    expect(s.sent.get('b')).toEqual([]);
    const t = setup();
    const relayedAsker = t.connect('a', '0.0.0.3:1', { relayed: true });
    t.connect('b', '198.51.100.11:51820');
    t.intro.requested(relayedAsker, FP.b);
    // Its observed address would be a virtual one: no use to b.
    expect(t.sent.get('b')).toEqual([]);
    expect(t.sent.get('a')).toEqual([{ type: 'endpoint', fingerprint: FP.b, address: null }]);
  });

  it('introduces one pair at most once a second', () => {
    const s = setup();
    const a = s.connect('a', '198.51.100.10:51820');
    s.connect('b', '198.51.100.11:51820');
    s.connect('c', '198.51.100.12:51820');
    for (let i = 0; i < 50; i++) s.intro.requested(a, FP.b);
    s.intro.requested(a, FP.c);
    expect(s.sent.get('b')).toHaveLength(1);
    expect(s.sent.get('c')).toHaveLength(1);
    s.clock.advance(999);
    s.intro.requested(a, FP.b);
    expect(s.sent.get('b')).toHaveLength(1);
    s.clock.advance(1);
    s.intro.requested(a, FP.b);
    expect(s.sent.get('b')).toHaveLength(2);
  });
});
