// Connections: the life of admitted connections with one peer, driven by hand on fake QUIC
// connections and a FakeClock: the control session, the probe before the tie-break, takeover and
// handover, liveness, Goodbye, and the original-VibePN rules.
import { CAPABILITY_TCP_SUPER_SEGMENTS } from '../../../src/control/messages.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { resolveNetworkAddress } from '../../../src/config/address.js';
import type { Config } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer } from '../../../src/config/write.js';
import type { GeneratedIdentity } from '../../../src/crypto/identity.js';
import { announcementsFor, ownHostRoute } from '../../../src/daemon/announce.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { formatPrefix, hostPrefix } from '../../../src/netgraph/addr.js';
import { Routes } from '../../../src/netgraph/routes.js';
import { Connections } from '../../../src/peer/connections.js';
import type { Peer } from '../../../src/peer/peer.js';
import { PeerMap } from '../../../src/peer/peers.js';
import { DEFAULT_TIMING } from '../../../src/peer/timing.js';
import type { QuicCloseInfo } from '../../../src/quic/connection.js';
import { APP_DEAD_PEER, APP_DUPLICATE, APP_GOODBYE, APP_PROTOCOL_VIOLATION, APP_SHUTDOWN } from '../../../src/quic/errors.js';
import type { QuicStream } from '../../../src/quic/stream.js';
import { FakeStream, concatBytes } from '../../helpers/unit-fakes.js';
import {
  RecordingManager,
  announceBytes,
  controlSent,
  controlTypes,
  counterValue,
  framesOn,
  goodbyeBytes,
  helloBytes,
  keepaliveBytes,
  openLink,
  sendThrough,
  withdrawBytes,
  type DrivenLink,
} from '../../helpers/unit-peer-fakes.js';
import { encodeFrame } from '../../../src/forward/frame.js';
import { distinctIdentities } from '../../helpers/identities.js';
/** What a current vibepn node offers after Hello (daemon.offload on). */
const CAPABILITIES = [CAPABILITY_TCP_SUPER_SEGMENTS];


const MAX_NONCE = (1n << 64n) - 1n;
/** Before an RTT sample: 250 ms + 4 × 250 ms, checked in five steps of 250 ms. */
const PROBE_MS = 1250;
/** A duplicate's drain before an RTT sample: 1 s + 4 × 250 ms. */
const DRAIN_MS = 2000;

let self: GeneratedIdentity;
let alice: GeneratedIdentity;

beforeAll(async () => {
  const now = new Date('2026-01-01T00:00:00Z');
  [self, alice] = await distinctIdentities(['self', 'alice'], { now });
});

interface DataStream {
  peer: Peer;
  stream: QuicStream;
  chunks: Uint8Array[];
}

function setup(options: { original?: boolean; nonces?: bigint[] } = {}) {
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger();
  const metrics = new Metrics({ processMetrics: false });
  const peers = new PeerMap();
  const config: Config = newConfig('/etc/vibepn/config.toml', {
    homeDir: '/home/test',
    peers: [
      newPeer('alice', ['corp'], {
        address: '192.0.2.10:51820',
        fingerprint: alice.fingerprint,
        allowedRoutes: ['192.168.0.0/16'],
        ...(options.original ? { original: true } : {}),
      }),
    ],
    networks: [newNetwork('corp', '10.42.0.0/24'), newNetwork('lab', '10.43.0.0/24'), newNetwork('quiet', '10.44.0.0/24', { export: false })],
  });
  const routes = new Routes<Peer>({ knownPeers: () => peers.withKeys(), metrics, logger: logger.child('netgraph'), onChange: () => {}, now: () => clock.now() });
  for (const net of config.networks.values()) routes.addNetwork(net.name, net.prefix, resolveNetworkAddress(net, self.fingerprint));
  const nonces = [...(options.nonces ?? [])];
  const data: DataStream[] = [];
  const connections = new Connections({
    peers,
    localFingerprint: self.fingerprint,
    localName: 'self',
    clock,
    timing: DEFAULT_TIMING,
    metrics,
    logger,
    nonce: () => nonces.shift() ?? 1000n,
    announcementsFor: (peer) => announcementsFor(config, peer.config, self.fingerprint),
    routes,
    capabilities: () => CAPABILITIES,
    acceptStream: (peer, stream) => {
      const entry: DataStream = { peer, stream, chunks: [] };
      stream.onData = (chunk) => entry.chunks.push(chunk.slice());
      data.push(entry);
    },
  });
  const peer = peers.addConfigured(config.peers[0]!, undefined);
  const manager = new RecordingManager();
  peer.manager = manager.asManager();
  const corp = config.networks.get('corp')!;
  const host = formatPrefix(hostPrefix(peer.autoAddressIn('corp', corp.prefix)));
  return {
    clock,
    lines,
    metrics,
    peers,
    config,
    routes,
    connections,
    nonces,
    data,
    peer,
    manager,
    /** alice's own host route in corp. */
    host,
    /** Our own host route in corp, as we announce it. */
    ours: ownHostRoute(corp, self.fingerprint),
    /** Learned routes as sorted CIDR text. */
    routeList: () => routes.list().map((r) => `${r.network} ${formatPrefix(r.prefix)}`).sort(),
    open: (direction: 'inbound' | 'outbound', remoteAddress?: string) => openLink(connections, peer, direction, remoteAddress),
    /** The peer (or quiche) closed the connection: what handshake.ts forwards from onClose. */
    peerClosed: (d: DrivenLink, info: Partial<QuicCloseInfo> = {}) => {
      d.conn.closedByPeer = true;
      connections.closed(d.conn.asQuic(), { local: false, errorCode: 0, reason: '', isApp: true, timedOut: false, ...info });
    },
  };
}

type Setup = ReturnType<typeof setup>;

/** Whether the manager heard that the peer went down. */
const wentDown = (s: Setup): boolean => s.manager.calls.some((c) => c.startsWith('disconnected'));

/** An active outbound link whose peer announced its host route and 192.168.1.0/24. */
function activeOutbound(s: Setup, theirNonce = 1n): DrivenLink {
  const old = s.open('outbound');
  old.hello(theirNonce);
  old.announce('corp', [s.host, '192.168.1.0/24']);
  return old;
}

describe('Connections.openSession', () => {
  it('sends Hello with a fresh nonce, then Announce for each exported network the peer is in', () => {
    const s = setup({ nonces: [42n] });
    const d = s.open('outbound');
    expect(controlSent(d.control)).toEqual([
      { type: 'hello', nonce: 42n },
      { type: 'capabilities', tokens: [CAPABILITY_TCP_SUPER_SEGMENTS] },
      { type: 'announce', network: 'corp', routes: [{ prefix: s.ours, metric: 1 }] },
    ]);
    expect(d.link.session?.state).toBe('awaiting-hello');
    expect(d.link.session?.direction).toBe('outbound');
    expect(s.peer.active).toBeNull();
    expect(s.peer.sender).toBeNull();
    expect(s.manager.calls).toEqual([]);
    expect(s.connections.connectionCount()).toBe(1);
  });

  it('draws a new nonce for every session', () => {
    const s = setup({ nonces: [5n, 6n] });
    const a = s.open('outbound');
    const b = s.open('inbound');
    expect(controlSent(a.control)[0]).toEqual({ type: 'hello', nonce: 5n });
    expect(controlSent(b.control)[0]).toEqual({ type: 'hello', nonce: 6n });
    expect(b.link.session?.localNonce).toBe(6n);
  });
});

describe('Connections: Hello with no active link', () => {
  it('makes the link active, creates the data sender on it and tells the manager', () => {
    const s = setup();
    const d = s.open('outbound');
    s.clock.advance(300);
    d.hello(7n);
    expect(s.peer.active).toBe(d.link);
    expect(d.link.session?.state).toBe('open');
    expect(d.link.session?.peerNonce).toBe(7n);
    expect(s.peer.lastSeen).toBe(s.clock.now());
    expect(s.manager.calls).toEqual(['connected']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(d.conn).map((f) => f.network)).toEqual(['corp']);
    expect(s.lines.some((l) => l.includes('connected to alice') && l.includes('outbound'))).toBe(true);
    // No probe: there was nothing to compare with.
    expect(d.conn.pings).toBe(0);
  });

  it('applies the active session’s announcements and withdrawals through route policy', () => {
    const s = setup();
    const d = s.open('inbound');
    d.hello(7n);
    d.announce('corp', [s.host, '192.168.1.0/24', '172.16.0.0/12']);
    // 172.16.0.0/12 is neither in the network nor in allowed_routes.
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.1.0/24']);
    d.receive(withdrawBytes('corp', '192.168.1.0/24'));
    expect(s.routeList()).toEqual([`corp ${s.host}`]);
  });

  it('treats anything before Hello as a protocol violation', async () => {
    const s = setup();
    const d = s.open('inbound');
    d.announce('corp', [s.host]);
    expect(d.conn.closes).toEqual([{ code: APP_PROTOCOL_VIOLATION, reason: 'expected Hello first, got announce' }]);
    expect(s.routeList()).toEqual([]);
    expect(s.peer.active).toBeNull();
    expect(await counterValue(s.metrics, 'vibepn_peer_protocol_violations_total')).toBe(1);
  });
});

describe('Connections: a second connection’s Hello while one is active', () => {
  /** Old: our outbound, dialer nonce 500 (ours). New: their inbound, dialer nonce `theirs`. */
  function duplicate(theirs: bigint, oldAnswers: boolean) {
    const s = setup({ nonces: [500n, 9n] });
    const old = activeOutbound(s);
    old.conn.answersPings = oldAnswers;
    const fresh = s.open('inbound');
    fresh.hello(theirs);
    fresh.announce('corp', [s.host, '192.168.2.0/24']);
    return { s, old, fresh };
  }

  it('probes the old connection first and decides nothing meanwhile', () => {
    const { s, old, fresh } = duplicate(100n, true);
    expect(old.conn.pings).toBe(1);
    expect(fresh.conn.pings).toBe(0);
    s.clock.advance(249);
    expect(s.peer.active).toBe(old.link);
    expect(old.conn.closes).toEqual([]);
    expect(fresh.conn.closes).toEqual([]);
    // The new connection's announcements are kept, not applied.
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.1.0/24']);
    expect(fresh.link.session?.announced.get('corp')?.has('192.168.2.0/24')).toBe(true);
  });

  it('old one alive, new one has the lower dialer nonce: the old one is closed as the duplicate', async () => {
    const { s, old, fresh } = duplicate(100n, true);
    s.clock.advance(250 + DRAIN_MS);
    expect(old.conn.closes).toEqual([{ code: APP_DUPLICATE, reason: 'duplicate connection' }]);
    expect(old.link.session?.state).toBe('closed');
    expect(fresh.conn.closes).toEqual([]);
    expect(s.peer.active).toBe(fresh.link);
    expect(await counterValue(s.metrics, 'vibepn_peer_handshakes_rejected_total', { reason: 'duplicate' })).toBe(1);
    // Traffic follows the survivor.
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(fresh.conn)).toHaveLength(1);
    expect(framesOn(old.conn)).toHaveLength(0);
    expect(wentDown(s)).toBe(false);
    expect(s.lines.some((l) => l.includes('duplicate connection with alice') && l.includes('keeping the inbound one'))).toBe(true);
    // The loser's close, when it comes, changes nothing.
    s.connections.closed(old.conn.asQuic(), { local: true, errorCode: APP_DUPLICATE, reason: 'duplicate connection', isApp: true, timedOut: false });
    expect(s.peer.active).toBe(fresh.link);
    expect(s.routeList()).toContain(`corp ${s.host}`);
    expect(wentDown(s)).toBe(false);
  });

  // Both sides pick the same loser, each when it reads the other's Hello: the loser stays open
  // (read, never written) until what is in flight on it has arrived.
  it('a quiet loser is closed after 1 s + 4 RTT (at most 3 s); what arrives on it meanwhile is still read', () => {
    for (const [rtt, drain] of [
      [null, DRAIN_MS],
      [100, 1400],
      [800, 3000],
    ] as const) {
      const { s, old, fresh } = duplicate(100n, true);
      old.conn.rtt = rtt;
      s.clock.advance(250);
      expect(s.peer.active, `rtt ${rtt}`).toBe(fresh.link);
      expect(old.link.session?.state).toBe('closed');
      expect(old.conn.closes).toEqual([]);
      // Traffic goes to the winner only.
      expect(sendThrough(s.peer)).toBe(true);
      expect(framesOn(fresh.conn)).toHaveLength(1);
      expect(framesOn(old.conn)).toHaveLength(0);
      // A data stream alice opened on the loser before she settled is read.
      const late = new FakeStream(5);
      s.connections.acceptStream(old.link, late.asQuic());
      late.onData(new Uint8Array([1, 2, 3]));
      expect(s.data.at(-1)!.chunks).toEqual([new Uint8Array([1, 2, 3])]);
      s.clock.advance(drain - 1);
      expect(old.conn.closes, `rtt ${rtt}`).toEqual([]);
      s.clock.advance(1);
      expect(old.conn.closes, `rtt ${rtt}`).toEqual([{ code: APP_DUPLICATE, reason: 'duplicate connection' }]);
      expect(wentDown(s)).toBe(false);
    }
  });

  it('a loser the peer still sends on stays open until it has been quiet that long, at most 10 s', () => {
    const { s, old } = duplicate(100n, true);
    s.clock.advance(250);
    // The peer has not read our Hello on the winner yet: its packets keep coming on the loser.
    for (let t = 0; t < 3; t++) {
      s.clock.advance(DRAIN_MS - 100);
      old.conn.received++;
      s.clock.advance(100);
      expect(old.conn.closes, `check ${t}`).toEqual([]);
    }
    // Now it has moved: one quiet spell later the loser goes.
    s.clock.advance(DRAIN_MS);
    expect(old.conn.closeCode).toBe(APP_DUPLICATE);

    const busy = duplicate(100n, true);
    busy.s.clock.advance(250);
    const retiredAt = busy.s.clock.now();
    while (busy.old.conn.closes.length === 0 && busy.s.clock.now() - retiredAt < 20_000) {
      busy.old.conn.received++;
      busy.s.clock.advance(100);
    }
    // Never quiet: closed at the first check past 10 s.
    expect(busy.old.conn.closeCode).toBe(APP_DUPLICATE);
    expect(busy.s.clock.now() - retiredAt).toBeGreaterThanOrEqual(10_000);
    expect(busy.s.clock.now() - retiredAt).toBeLessThanOrEqual(10_000 + DRAIN_MS);
  });

  it('a loser that closed during the drain is not closed again', () => {
    const { s, old } = duplicate(100n, true);
    s.clock.advance(250);
    old.conn.closedByPeer = true;
    s.clock.advance(DRAIN_MS);
    expect(old.conn.closes).toEqual([]);
  });

  // A new connection that wins against a live old one after the probe brings its own announcements,
  // remembered during the probe: only the survivor's may stand (PROTOCOL.md).
  it('old one alive and beaten: only the survivor’s announcements stay in the route table', () => {
    const { s, fresh } = duplicate(100n, true);
    s.clock.advance(250);
    expect(s.peer.active).toBe(fresh.link);
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.2.0/24']);
  });

  it('old one alive with the lower dialer nonce: the new one is closed as the duplicate', async () => {
    const { s, old, fresh } = duplicate(900n, true);
    s.clock.advance(250 + DRAIN_MS);
    expect(fresh.conn.closes).toEqual([{ code: APP_DUPLICATE, reason: 'duplicate connection' }]);
    expect(fresh.link.session?.state).toBe('closed');
    expect(old.conn.closes).toEqual([]);
    expect(s.peer.active).toBe(old.link);
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.1.0/24']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(old.conn)).toHaveLength(1);
    expect(s.manager.calls).toEqual(['connected']);
    expect(await counterValue(s.metrics, 'vibepn_peer_handshakes_rejected_total', { reason: 'duplicate' })).toBe(1);
  });

  it('equal dialer nonces: the connection dialed by the lower fingerprint survives', () => {
    const { s, old, fresh } = duplicate(500n, true);
    s.clock.advance(250 + DRAIN_MS);
    // old was dialed by us, fresh by alice.
    const [survivor, loser] = self.fingerprint < alice.fingerprint ? [old, fresh] : [fresh, old];
    expect(s.peer.active).toBe(survivor.link);
    expect(loser.conn.closeCode).toBe(APP_DUPLICATE);
    expect(survivor.conn.closes).toEqual([]);
  });

  it('old one silent for the whole probe: closed as dead, the new one takes over with its announced routes', () => {
    const { s, old, fresh } = duplicate(900n, false);
    // Even with the higher nonce: a dead connection does not compete.
    s.clock.advance(PROBE_MS - 1);
    expect(old.conn.closes).toEqual([]);
    expect(s.peer.active).toBe(old.link);
    s.clock.advance(1);
    expect(old.conn.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'no answer to a liveness probe' }]);
    expect(old.link.session?.state).toBe('closed');
    expect(s.peer.active).toBe(fresh.link);
    expect(fresh.conn.closes).toEqual([]);
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.2.0/24']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(fresh.conn)).toHaveLength(1);
    // The peer never went down.
    expect(wentDown(s)).toBe(false);
    expect(s.lines.some((l) => l.includes('did not answer a probe'))).toBe(true);
    // The probe pinged once; the checks only read the packet count.
    expect(old.conn.pings).toBe(1);
  });

  it('an answer late in the probe still counts', () => {
    const { s, old, fresh } = duplicate(100n, false);
    s.clock.advance(1000);
    old.conn.received++;
    s.clock.advance(250 + DRAIN_MS);
    // Alive: the tie-break ran (fresh has the lower nonce), not the dead-peer path.
    expect(old.conn.closeCode).toBe(APP_DUPLICATE);
    expect(s.peer.active).toBe(fresh.link);
  });

  it('waits 250 ms + 4 RTT, at most 2 s', () => {
    for (const [rtt, deadline] of [
      [100, 650],
      [1000, 2000],
    ] as const) {
      const s = setup({ nonces: [500n, 9n] });
      const old = activeOutbound(s);
      old.conn.rtt = rtt;
      const fresh = s.open('inbound');
      fresh.hello(900n);
      s.clock.advance(deadline - 1);
      expect(old.conn.closes, `rtt ${rtt}`).toEqual([]);
      s.clock.advance(1);
      expect(old.conn.closeCode, `rtt ${rtt}`).toBe(APP_DEAD_PEER);
      expect(s.peer.active).toBe(fresh.link);
    }
  });

  it('an old connection that closed during the probe counts as silent at the next check', () => {
    const { s, old, fresh } = duplicate(900n, false);
    s.clock.advance(200);
    old.conn.closedByPeer = true;
    s.clock.advance(50);
    expect(s.peer.active).toBe(fresh.link);
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.2.0/24']);
  });

  it('a new connection whose session ended during the probe is dropped from the contest', () => {
    const { s, old, fresh } = duplicate(100n, true);
    fresh.receive(goodbyeBytes());
    s.clock.advance(PROBE_MS);
    expect(s.peer.active).toBe(old.link);
    expect(old.conn.closes).toEqual([]);
  });
});

// PROTOCOL.md#v-relay: a connection through a relay (a virtual address) always loses to a direct
// one, whatever the nonces say; between two of the same kind the nonce tie-break stands.
describe('Connections: direct before relayed', () => {
  it('marks a connection to a virtual address as relayed', () => {
    const s = setup();
    expect(s.open('outbound', '0.0.0.7:1').link.relayed).toBe(true);
    expect(s.open('inbound', '[::ffff:0.0.0.8]:1').link.relayed).toBe(true);
    expect(s.open('inbound').link.relayed).toBe(false);
  });

  it('a direct connection takes over from a live relayed one even with the higher dialer nonce', () => {
    const s = setup({ nonces: [500n] });
    const relayed = s.open('outbound', '0.0.0.7:1');
    relayed.hello(1n);
    relayed.conn.answersPings = true;
    expect(s.peer.active).toBe(relayed.link);
    const direct = s.open('inbound', '198.51.100.9:51820');
    direct.hello(900n);
    s.clock.advance(PROBE_MS);
    expect(s.peer.active).toBe(direct.link);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(direct.conn)).toHaveLength(1);
    s.clock.advance(DRAIN_MS);
    expect(relayed.conn.closeCode).toBe(APP_DUPLICATE);
    expect(direct.conn.closes).toEqual([]);
    expect(wentDown(s)).toBe(false);
  });

  it('a relayed connection does not take over from a live direct one even with the lower dialer nonce', () => {
    const s = setup({ nonces: [500n] });
    const direct = activeOutbound(s);
    direct.conn.answersPings = true;
    const relayed = s.open('inbound', '0.0.0.7:1');
    relayed.hello(1n);
    s.clock.advance(PROBE_MS + DRAIN_MS);
    expect(s.peer.active).toBe(direct.link);
    expect(relayed.conn.closeCode).toBe(APP_DUPLICATE);
  });

  it('a relayed connection takes over from a direct one that no longer answers', () => {
    const s = setup({ nonces: [500n] });
    const direct = activeOutbound(s);
    const relayed = s.open('inbound', '0.0.0.7:1');
    relayed.hello(900n);
    s.clock.advance(PROBE_MS);
    expect(s.peer.active).toBe(relayed.link);
    expect(direct.conn.closeCode).toBe(APP_DEAD_PEER);
    expect(wentDown(s)).toBe(false);
  });
});

describe('Connections: the active session ends', () => {
  it('a successor past its Hello takes over: its routes replace the old ones, traffic moves, the peer stays up', () => {
    const s = setup({ nonces: [500n, 9n] });
    const old = activeOutbound(s);
    old.conn.answersPings = true;
    const fresh = s.open('inbound');
    fresh.hello(900n);
    fresh.announce('corp', [s.host, '192.168.2.0/24']);
    // The peer closed our active one as its duplicate before the probe here finished.
    s.peerClosed(old, { errorCode: APP_DUPLICATE, reason: 'duplicate connection' });
    expect(s.peer.active).toBe(fresh.link);
    expect(s.peer.handover).toBeNull();
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.2.0/24']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(fresh.conn)).toHaveLength(1);
    expect(s.manager.calls).toEqual(['connected']);
    expect(s.lines.some((l) => l.includes('continuing on the other connection (inbound)'))).toBe(true);
    expect(s.connections.connectionCount()).toBe(1);
    // The probe's verdict finds the survivor already active and does nothing.
    s.clock.advance(PROBE_MS);
    expect(fresh.conn.closes).toEqual([]);
    expect(s.peer.active).toBe(fresh.link);
  });

  it('a successor still awaiting its Hello: handover, no sender until that Hello', () => {
    const s = setup({ nonces: [500n, 9n] });
    const old = activeOutbound(s);
    expect(sendThrough(s.peer)).toBe(true);
    const fresh = s.open('inbound');
    s.peerClosed(old, { errorCode: APP_DUPLICATE, reason: 'duplicate connection' });
    expect(s.peer.active).toBeNull();
    expect(s.peer.handover).toBe(fresh.link);
    expect(s.peer.sender).toBeNull();
    // The old sender's raw stream is ended.
    expect(old.conn.opened[0]?.ended).toBe(true);
    // Routes stay for the successor (no flap), and the peer is not down.
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.1.0/24']);
    expect(s.manager.calls).toEqual(['connected']);

    fresh.hello(900n);
    expect(s.peer.active).toBe(fresh.link);
    expect(s.peer.handover).toBeNull();
    // No probe and no tie-break: it was the designated successor.
    expect(fresh.conn.closes).toEqual([]);
    expect(old.conn.pings + fresh.conn.pings).toBe(0);
    expect(s.manager.calls).toEqual(['connected', 'connected']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(fresh.conn)).toHaveLength(1);
    fresh.announce('corp', [s.host, '192.168.2.0/24']);
    expect(s.routeList()).toContain('corp 192.168.2.0/24');
  });

  it('a handover link that closes before its Hello takes the peer down', () => {
    const s = setup();
    const old = activeOutbound(s);
    const fresh = s.open('inbound');
    s.peerClosed(old, { errorCode: APP_DUPLICATE });
    s.peerClosed(fresh, { isApp: false, timedOut: true });
    expect(s.peer.handover).toBeNull();
    expect(s.peer.active).toBeNull();
    expect(s.routeList()).toEqual([]);
    expect(s.manager.calls).toEqual(['connected', 'disconnected: peer closed: idle timeout']);
  });

  it('no successor: routes removed, sender closed, the manager told why', () => {
    const s = setup();
    const d = activeOutbound(s);
    expect(sendThrough(s.peer)).toBe(true);
    const heardAt = s.clock.now();
    s.clock.advance(5000);
    s.peerClosed(d, { isApp: false, timedOut: true });
    expect(s.routeList()).toEqual([]);
    expect(s.peer.active).toBeNull();
    expect(s.peer.sender).toBeNull();
    expect(d.conn.opened[0]?.ended).toBe(true);
    expect(s.peer.lastSeen).toBe(heardAt);
    expect(s.manager.calls).toEqual(['connected', 'disconnected: peer closed: idle timeout']);
    expect(s.lines.some((l) => l.includes('disconnected from alice') && l.includes('peer closed: idle timeout; removed 2 route(s)'))).toBe(true);
    expect(s.connections.connectionCount()).toBe(0);
    expect(s.peer.links.size).toBe(0);
  });

  it('describes the close: our own, by application code and reason, or a transport error', () => {
    const cases: Array<[Partial<QuicCloseInfo>, string]> = [
      [{ local: true, errorCode: APP_SHUTDOWN, reason: 'shutting down' }, 'shutting down'],
      [{ errorCode: APP_GOODBYE, reason: 'removed from config' }, 'peer closed: goodbye (removed from config)'],
      [{ errorCode: 77, reason: '' }, 'peer closed: unknown application error 77'],
      [{ isApp: false, errorCode: 10, reason: '' }, 'peer closed: transport error 10'],
      [{ isApp: false, errorCode: 10, reason: 'protocol violation' }, 'peer closed: protocol violation'],
    ];
    for (const [info, expected] of cases) {
      const s = setup();
      const d = activeOutbound(s);
      s.connections.closed(d.conn.asQuic(), { local: false, errorCode: 0, reason: '', isApp: true, timedOut: false, ...info });
      expect(s.manager.calls.at(-1)).toBe(`disconnected: ${expected}`);
    }
  });

  it('an outbound connection that closes before the Hello exchange is a failed dial; an inbound one is not', () => {
    const s = setup();
    const out = s.open('outbound');
    s.peerClosed(out, { isApp: false, errorCode: 10, reason: '' });
    expect(s.manager.calls).toEqual(['dialFailed: transport error 10']);
    const inbound = s.open('inbound');
    s.peerClosed(inbound, { isApp: false, errorCode: 10, reason: '' });
    expect(s.manager.calls).toHaveLength(1);
  });

  it('forgets an unknown peer with its last connection, keeps a configured one', () => {
    const s = setup();
    const stranger = s.peers.unknown('c'.repeat(64), 'carol');
    const a = openLink(s.connections, stranger, 'inbound');
    const b = openLink(s.connections, stranger, 'inbound');
    a.hello(1n);
    s.peerClosed(a);
    expect(s.peers.withFingerprint('c'.repeat(64))).toBe(stranger);
    s.peerClosed(b);
    expect(s.peers.withFingerprint('c'.repeat(64))).toBeUndefined();
    const d = activeOutbound(s);
    s.peerClosed(d);
    expect(s.peers.byConfigName('alice')).toBe(s.peer);
  });
});

describe('Connections.tick', () => {
  it('sends Keepalive when due and declares a session silent past deadAfterMs dead', () => {
    const s = setup();
    const d = activeOutbound(s);
    s.clock.advance(DEFAULT_TIMING.keepaliveMs - 1);
    s.connections.tick();
    expect(controlTypes(d.control)).toEqual(['hello', 'capabilities', 'announce']);
    s.clock.advance(1);
    s.connections.tick();
    expect(controlTypes(d.control)).toEqual(['hello', 'capabilities', 'announce', 'keepalive']);
    s.clock.advance(DEFAULT_TIMING.deadAfterMs - DEFAULT_TIMING.keepaliveMs);
    s.connections.tick();
    // Silent for exactly deadAfterMs: not yet dead (a second Keepalive went out).
    expect(d.conn.closes).toEqual([]);
    expect(controlTypes(d.control)).toEqual(['hello', 'capabilities', 'announce', 'keepalive', 'keepalive']);
    s.clock.advance(1);
    s.connections.tick();
    expect(d.conn.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'liveness timeout' }]);
    expect(s.routeList()).toEqual([]);
    expect(s.peer.active).toBeNull();
    expect(s.manager.calls).toEqual(['connected', 'disconnected: liveness timeout']);
    expect(s.lines.some((l) => l.includes('silent for over 30s; declaring it dead'))).toBe(true);
    // Once dead it is left alone.
    s.clock.advance(DEFAULT_TIMING.keepaliveMs);
    s.connections.tick();
    expect(controlTypes(d.control)).toEqual(['hello', 'capabilities', 'announce', 'keepalive', 'keepalive']);
    expect(d.conn.closes).toHaveLength(1);
  });

  it('any control message keeps the peer alive, and the active one’s last message is its lastSeen', () => {
    const s = setup();
    const d = activeOutbound(s);
    s.clock.advance(20_000);
    d.receive(keepaliveBytes());
    const heard = s.clock.now();
    s.clock.advance(DEFAULT_TIMING.deadAfterMs);
    s.connections.tick();
    expect(d.conn.closes).toEqual([]);
    expect(s.peer.lastSeen).toBe(heard);
    s.clock.advance(1);
    s.connections.tick();
    expect(d.conn.closeCode).toBe(APP_DEAD_PEER);
  });

  it('closes a connection whose peer never sent Hello; for our dial that is a failed attempt', () => {
    const s = setup();
    const d = s.open('outbound');
    s.clock.advance(DEFAULT_TIMING.deadAfterMs + 1);
    s.connections.tick();
    expect(d.conn.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'liveness timeout' }]);
    expect(s.manager.calls).toEqual([]);
    s.connections.closed(d.conn.asQuic(), { local: true, errorCode: APP_DEAD_PEER, reason: 'liveness timeout', isApp: true, timedOut: false });
    expect(s.manager.calls).toEqual(['dialFailed: peer silent too long (liveness timeout)']);
  });

  it('a silent connection that is not the active one dies without taking the peer down', () => {
    // An original peer's passive connection stays open beside the active one: the case where a
    // non-active session lives long enough to time out.
    const s = setup({ original: true });
    const out = activeOutbound(s);
    out.conn.answersPings = true;
    const passive = s.open('inbound');
    passive.hello(1n);
    for (let t = 0; t < 30; t++) {
      s.clock.advance(1000);
      out.receive(keepaliveBytes());
      s.connections.tick();
    }
    expect(passive.conn.closes).toEqual([]);
    s.clock.advance(1000);
    out.receive(keepaliveBytes());
    s.connections.tick();
    expect(passive.conn.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'liveness timeout' }]);
    expect(out.conn.closes).toEqual([]);
    expect(s.peer.active).toBe(out.link);
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.1.0/24']);
    expect(s.manager.calls).toEqual(['connected']);
  });
});

describe('Connections: Goodbye', () => {
  it('from the peer: its routes go at once and the connection is closed with code 1', () => {
    const s = setup();
    const d = activeOutbound(s);
    sendThrough(s.peer);
    d.receive(goodbyeBytes());
    expect(s.routeList()).toEqual([]);
    expect(d.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'goodbye' }]);
    expect(s.peer.active).toBeNull();
    expect(s.peer.sender).toBeNull();
    expect(s.manager.calls).toEqual(['connected', 'disconnected: peer said goodbye']);
    // The close that follows finds the session already gone.
    s.connections.closed(d.conn.asQuic(), { local: true, errorCode: APP_GOODBYE, reason: 'goodbye', isApp: true, timedOut: false });
    expect(s.manager.calls).toHaveLength(2);
  });

  it('dropPeer says Goodbye on the control stream before it closes the connection', async () => {
    const s = setup();
    const d = activeOutbound(s);
    const done = s.connections.dropPeer(s.peer, 'removed from config');
    expect(controlTypes(d.control)).toEqual(['hello', 'capabilities', 'announce', 'goodbye']);
    expect(d.conn.closes).toEqual([]);
    // The session is over at once: routes gone, peer down.
    expect(s.routeList()).toEqual([]);
    expect(s.peer.active).toBeNull();
    expect(s.manager.calls).toEqual(['connected', 'disconnected: removed from config']);
    await done;
    expect(d.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'removed from config' }]);
    // Exactly one Goodbye.
    expect(controlTypes(d.control)).toEqual(['hello', 'capabilities', 'announce', 'goodbye']);
  });

  it('dropPeer lets no other connection take over', async () => {
    const s = setup({ nonces: [500n, 9n] });
    const old = activeOutbound(s);
    old.conn.answersPings = true;
    const fresh = s.open('inbound');
    fresh.hello(900n);
    fresh.announce('corp', [s.host]);
    const done = s.connections.dropPeer(s.peer, 'removed from config');
    expect(s.peer.active).toBeNull();
    expect(s.routeList()).toEqual([]);
    expect(controlTypes(fresh.control).at(-1)).toBe('goodbye');
    await done;
    expect(old.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'removed from config' }]);
    expect(fresh.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'removed from config' }]);
    s.clock.advance(PROBE_MS);
    expect(s.peer.active).toBeNull();
  });

  it('closeAll says Goodbye to everyone and closes with the given code', async () => {
    const s = setup();
    const d = activeOutbound(s);
    const pending = s.open('inbound');
    await s.connections.closeAll(APP_SHUTDOWN, 'shutting down');
    expect(controlTypes(d.control).at(-1)).toBe('goodbye');
    expect(controlTypes(pending.control).at(-1)).toBe('goodbye');
    expect(d.conn.closes).toEqual([{ code: APP_SHUTDOWN, reason: 'shutting down' }]);
    expect(pending.conn.closes).toEqual([{ code: APP_SHUTDOWN, reason: 'shutting down' }]);
  });
});

describe('Connections.acceptStream', () => {
  it('hands every stream of an ordinary peer to the data plane untouched', () => {
    const s = setup();
    const d = activeOutbound(s);
    const stream = new FakeStream(1);
    s.connections.acceptStream(d.link, stream.asQuic());
    expect(s.data.map((e) => e.stream)).toEqual([stream]);
    // Even one that starts like a control message: only an original peer's are read as control.
    stream.onData(goodbyeBytes());
    expect(s.data[0]!.chunks).toEqual([goodbyeBytes()]);
    expect(s.routeList()).toHaveLength(2);
    expect(d.conn.closes).toEqual([]);
  });
});

describe('Connections with an original VibePN peer', () => {
  it('sends the highest Hello nonce and a Keepalive after the announcements, in both directions', () => {
    const s = setup({ original: true, nonces: [5n, 6n] });
    for (const direction of ['outbound', 'inbound'] as const) {
      const d = s.open(direction);
      const sent = controlSent(d.control);
      expect(sent.map((m) => m.type), direction).toEqual(['hello', 'announce', 'keepalive']);
      expect(sent[0]).toEqual({ type: 'hello', nonce: MAX_NONCE });
    }
    // No random nonce was drawn.
    expect(s.nonces).toEqual([5n, 6n]);
  });

  it('keeps an inbound connection passive while our outbound one is active: no tie-break', async () => {
    const s = setup({ original: true });
    const out = activeOutbound(s);
    out.conn.answersPings = true;
    const inbound = s.open('inbound');
    inbound.hello(1n);
    inbound.announce('corp', [s.host, '192.168.2.0/24']);
    expect(out.conn.pings).toBe(1);
    s.clock.advance(PROBE_MS * 2);
    expect(inbound.conn.closes).toEqual([]);
    expect(out.conn.closes).toEqual([]);
    expect(s.peer.active).toBe(out.link);
    expect(await counterValue(s.metrics, 'vibepn_peer_handshakes_rejected_total', { reason: 'duplicate' })).toBe(0);
    // Its announcements are kept, not applied.
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.1.0/24']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(out.conn)).toHaveLength(1);
  });

  it('closes our silent outbound connection, lets the passive one carry the routes, and redials', () => {
    const s = setup({ original: true });
    const out = activeOutbound(s);
    const inbound = s.open('inbound');
    inbound.hello(1n);
    inbound.announce('corp', [s.host, '192.168.2.0/24']);
    s.clock.advance(PROBE_MS - 1);
    expect(out.conn.closes).toEqual([]);
    s.clock.advance(1);
    expect(out.conn.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'no answer to a liveness probe' }]);
    expect(s.peer.active).toBe(inbound.link);
    expect(s.routeList()).toEqual([`corp ${s.host}`, 'corp 192.168.2.0/24']);
    // Data on a connection the original dialed would be lost: no sender, and the peer is dialed.
    expect(s.peer.sender).toBeNull();
    expect(s.manager.calls).toEqual(['connected', 'retryNow']);
  });

  it('sends data only on a connection we dialed, and counts only that one as connected', () => {
    const s = setup({ original: true });
    const inbound = s.open('inbound');
    inbound.hello(1n);
    inbound.announce('corp', [s.host]);
    expect(s.peer.active).toBe(inbound.link);
    expect(s.routeList()).toEqual([`corp ${s.host}`]);
    expect(s.peer.sender).toBeNull();
    expect(s.manager.calls).toEqual(['retryNow']);

    const out = s.open('outbound');
    out.hello(2n);
    expect(s.peer.active).toBe(out.link);
    expect(s.manager.calls).toEqual(['retryNow', 'connected']);
    expect(sendThrough(s.peer)).toBe(true);
    expect(framesOn(out.conn)).toHaveLength(1);
    // The connection it dialed stays open.
    expect(inbound.conn.closes).toEqual([]);
    expect(inbound.conn.pings + out.conn.pings).toBe(0);
  });

  it('reads a stream starting with 0x00 as control messages for the session, any other as data', () => {
    const s = setup({ original: true });
    const d = activeOutbound(s);

    const side = new FakeStream(5);
    s.connections.acceptStream(d.link, side.asQuic());
    side.onData(new Uint8Array(0)); // nothing to judge yet
    side.onData(concatBytes([announceBytes('corp', ['192.168.3.0/24']), helloBytes(3n)]));
    expect(s.routeList()).toContain('corp 192.168.3.0/24');
    expect(s.data).toEqual([]);
    // A Hello there means nothing: no violation.
    expect(d.conn.closes).toEqual([]);
    expect(d.link.session?.state).toBe('open');
    // Split across chunks.
    const withdraw = withdrawBytes('corp', '192.168.3.0/24');
    side.onData(withdraw.subarray(0, 3));
    side.onData(withdraw.subarray(3));
    expect(s.routeList()).not.toContain('corp 192.168.3.0/24');

    const frame = encodeFrame('corp', new Uint8Array([0x45, 0, 0, 20]));
    const raw = new FakeStream(9);
    s.connections.acceptStream(d.link, raw.asQuic());
    raw.onData(frame);
    expect(s.data.map((e) => e.stream)).toEqual([raw]);
    // The data plane gets the first chunk too.
    expect(s.data[0]!.chunks).toEqual([frame]);
  });

  it('takes a Goodbye on a separate stream like one on the control stream', () => {
    const s = setup({ original: true });
    const d = activeOutbound(s);
    const side = new FakeStream(5);
    s.connections.acceptStream(d.link, side.asQuic());
    side.onData(goodbyeBytes());
    expect(s.routeList()).toEqual([]);
    expect(d.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'goodbye' }]);
    expect(s.manager.calls).toEqual(['connected', 'disconnected: peer said goodbye']);
  });

  it('resets a separate stream with a malformed control message, and keeps the connection', async () => {
    const s = setup({ original: true });
    const d = activeOutbound(s);
    const side = new FakeStream(5);
    s.connections.acceptStream(d.link, side.asQuic());
    side.onData(new Uint8Array([0x00, 0x00]));
    expect(side.resetCode).toBe(APP_PROTOCOL_VIOLATION);
    expect(d.conn.closes).toEqual([]);
    expect(d.link.session?.state).toBe('open');
    expect(await counterValue(s.metrics, 'vibepn_peer_protocol_violations_total')).toBe(0);
    // The other end finishing its side of the stream is answered by finishing ours.
    const ended = new FakeStream(13);
    s.connections.acceptStream(d.link, ended.asQuic());
    ended.onEnd();
    expect(ended.ended).toBe(true);
  });

  it('hands separate-stream messages from a passive connection to the active session', () => {
    const s = setup({ original: true });
    const out = activeOutbound(s);
    out.conn.answersPings = true;
    const inbound = s.open('inbound');
    inbound.hello(1n);
    const side = new FakeStream(4);
    s.connections.acceptStream(inbound.link, side.asQuic());
    side.onData(announceBytes('corp', ['192.168.4.0/24']));
    expect(s.routeList()).toContain('corp 192.168.4.0/24');
    expect(out.link.session?.announced.get('corp')?.has('192.168.4.0/24')).toBe(true);
  });

  it('retries soon when the original closes our dial as the loser of its tie-break; a vibepn peer doing so is an ordinary failed dial', () => {
    for (const original of [true, false]) {
      const s = setup({ original });
      const out = s.open('outbound');
      s.peerClosed(out, { reason: 'duplicate connection (loser)' });
      expect(s.manager.calls, `original ${original}`).toEqual([`${original ? 'dialLostLottery' : 'dialFailed'}: no error (duplicate connection (loser))`]);
    }
  });
});
