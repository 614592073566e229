// Handshakes: dialing and accepting connections, admission by certificate, first use recorded
// before the peer is let in. Real identities and a real TrustStore on an in-memory known-peers
// file; fake QUIC connections; a FakeClock for the handshake timeout and the redial schedule.
import { CAPABILITY_TCP_SUPER_SEGMENTS } from '../../../src/control/messages.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { resolveNetworkAddress } from '../../../src/config/address.js';
import type { PeerConfig } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer } from '../../../src/config/write.js';
import type { GeneratedIdentity } from '../../../src/crypto/identity.js';
import { announcementsFor } from '../../../src/daemon/announce.js';
import { encodeFrame } from '../../../src/forward/frame.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { formatPrefix, hostPrefix } from '../../../src/netgraph/addr.js';
import { formatHostPort, type HostPort } from '../../../src/netgraph/hostport.js';
import { Routes } from '../../../src/netgraph/routes.js';
import { Connections } from '../../../src/peer/connections.js';
import { Handshakes } from '../../../src/peer/handshake.js';
import { MAX_HELD_BYTES } from '../../../src/peer/held-streams.js';
import { MAX_HELD_STRANGERS, type InviteRedeemer } from '../../../src/peer/redemption.js';
import { PeerManager } from '../../../src/peer/manager.js';
import type { Peer } from '../../../src/peer/peer.js';
import { PeerMap } from '../../../src/peer/peers.js';
import { DEFAULT_TIMING } from '../../../src/peer/timing.js';
import { APP_NO_ERROR, APP_PROTOCOL_VIOLATION, APP_UNTRUSTED } from '../../../src/quic/errors.js';
import type { QuicStream } from '../../../src/quic/stream.js';
import { concatBytes, nextTurn } from '../../helpers/unit-fakes.js';
import {
  FakeQuicConnection,
  MemoryKnownPeers,
  announceBytes,
  certDer,
  controlSent,
  controlTypes,
  counterValue,
  helloBytes,
} from '../../helpers/unit-peer-fakes.js';
import { distinctIdentities } from '../../helpers/identities.js';
/** What a current vibepn node offers after Hello (daemon.offload on). */
const CAPABILITIES = [CAPABILITY_TCP_SUPER_SEGMENTS];


let self: GeneratedIdentity;
let alice: GeneratedIdentity;
let bob: GeneratedIdentity;
/** Another key whose certificate also says CN=alice. */
let impostor: GeneratedIdentity;
let carol: GeneratedIdentity;

beforeAll(async () => {
  [self, alice, bob, impostor, carol] = await distinctIdentities(['self', 'alice', 'bob', 'alice', 'carol']);
});

const ALICE_AT = '192.0.2.10:51820';
const HANDSHAKE_MS = DEFAULT_TIMING.handshakeTimeoutMs;

interface DataStream {
  peer: Peer;
  stream: QuicStream;
  chunks: Uint8Array[];
}

async function setup(peerConfigs: PeerConfig[], options: { acceptUnknown?: boolean; known?: Record<string, string>; redeemer?: InviteRedeemer } = {}) {
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger();
  const metrics = new Metrics({ processMetrics: false });
  const peers = new PeerMap();
  const config = newConfig('/etc/vibepn/config.toml', {
    homeDir: '/home/test',
    daemon: { acceptUnknownPeers: options.acceptUnknown ?? false },
    peers: peerConfigs,
    networks: [newNetwork('corp', '10.42.0.0/24')],
  });
  const file = new MemoryKnownPeers();
  if (options.known) file.text = JSON.stringify(options.known);
  const trust = await file.store();
  const routes = new Routes<Peer>({ knownPeers: () => peers.withKeys(), metrics, logger, onChange: () => {}, now: () => clock.now() });
  const corp = config.networks.get('corp')!;
  routes.addNetwork('corp', corp.prefix, resolveNetworkAddress(corp, self.fingerprint));
  const data: DataStream[] = [];
  const connections = new Connections({
    peers,
    localFingerprint: self.fingerprint,
    localName: 'self',
    clock,
    timing: DEFAULT_TIMING,
    metrics,
    logger,
    nonce: () => 77n,
    announcementsFor: (peer) => announcementsFor(config, peer.config, self.fingerprint),
    routes,
    capabilities: () => CAPABILITIES,
    acceptStream: (peer, stream) => {
      const entry: DataStream = { peer, stream, chunks: [] };
      stream.onData = (chunk) => entry.chunks.push(chunk.slice());
      data.push(entry);
    },
  });
  const dials: Array<{ to: HostPort; conn: FakeQuicConnection }> = [];
  const dialer = { error: null as Error | null };
  const handshakes = new Handshakes({
    dial: (to) => {
      if (dialer.error) throw dialer.error;
      const conn = new FakeQuicConnection('outbound', formatHostPort(to.host, to.port));
      dials.push({ to, conn });
      return conn.asQuic();
    },
    peers,
    config: () => config,
    trust: () => trust,
    localFingerprint: self.fingerprint,
    localName: 'self',
    clock,
    timing: { handshakeTimeoutMs: HANDSHAKE_MS },
    metrics,
    logger,
    connections,
    redeemer: options.redeemer,
  });
  for (const peerConfig of config.peers) {
    const peer = peers.addConfigured(peerConfig, trust.get(peerConfig.name));
    if (!peerConfig.address) continue;
    peer.manager = new PeerManager(peerConfig.name, {
      dial: () => handshakes.dial(peer),
      isConnected: () => peer.connected,
      clock,
      logger,
      // No jitter: redials at 1 s, 2 s, 4 s…
      backoff: { random: () => 0.5 },
    });
  }
  const inbound = (from: string, identity: GeneratedIdentity): FakeQuicConnection => {
    const conn = new FakeQuicConnection('inbound', from, certDer(identity));
    handshakes.accept(conn.asQuic());
    return conn;
  };
  const failures = (reason: string) => counterValue(metrics, 'vibepn_peer_connection_failures_total', { reason });
  const rejected = (reason: string) => counterValue(metrics, 'vibepn_peer_handshakes_rejected_total', { reason });
  return { clock, lines, metrics, peers, config, file, trust, routes, connections, handshakes, dials, dialer, data, inbound, failures, rejected };
}

type Setup = Awaited<ReturnType<typeof setup>>;

function peerNamed(s: Setup, name: string): Peer {
  const peer = s.peers.byConfigName(name);
  if (!peer) throw new Error(`no peer ${name}`);
  return peer;
}

/** Starts alice's manager (it dials at once) and returns that dial's connection. */
function dialAlice(s: Setup): FakeQuicConnection {
  const before = s.dials.length;
  peerNamed(s, 'alice').manager!.start();
  expect(s.dials).toHaveLength(before + 1);
  return s.dials.at(-1)!.conn;
}

const hostRoute = (s: Setup, peer: Peer) => formatPrefix(hostPrefix(peer.autoAddressIn('corp', s.config.networks.get('corp')!.prefix)));

describe('Handshakes.dial', () => {
  it('dials the configured address and gives up after handshakeTimeoutMs, reporting no answer', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
    const conn = dialAlice(s);
    expect(s.dials[0]!.to).toEqual({ host: '192.0.2.10', port: 51820 });
    expect(await counterValue(s.metrics, 'vibepn_peer_connection_attempts_total')).toBe(1);
    s.clock.advance(HANDSHAKE_MS - 1);
    expect(conn.closes).toEqual([]);
    s.clock.advance(1);
    expect(conn.closes).toEqual([{ code: APP_NO_ERROR, reason: 'handshake timed out' }]);
    conn.finishClose();
    const manager = peerNamed(s, 'alice').manager!;
    expect(manager.lastError).toBe('cannot connect to 192.0.2.10:51820: no answer within 5s');
    expect(manager.state).toBe('waiting');
    expect(await s.failures('timeout')).toBe(1);
    // Redialed on the backoff schedule.
    s.clock.advance(999);
    expect(s.dials).toHaveLength(1);
    s.clock.advance(1);
    expect(s.dials).toHaveLength(2);
  });

  it('cancels the handshake timer once the connection is established', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
    const conn = dialAlice(s);
    conn.certDer = certDer(alice);
    s.clock.advance(HANDSHAKE_MS - 1);
    conn.establish();
    s.clock.advance(HANDSHAKE_MS * 2);
    expect(conn.closes).toEqual([]);
    // The dialer opens the control stream and speaks first.
    expect(conn.opened).toHaveLength(1);
    expect(controlSent(conn.opened[0]!)[0]).toEqual({ type: 'hello', nonce: 77n });
    expect(await s.failures('timeout')).toBe(0);
  });

  it('counts each way a dial fails before the handshake by its reason', async () => {
    const cases: Array<[Parameters<FakeQuicConnection['finishClose']>[0], string, string]> = [
      [{ local: true, isApp: false, reason: 'cannot resolve alice.example: ENOTFOUND' }, 'dns', 'cannot resolve alice.example: ENOTFOUND'],
      [{ local: true, isApp: false, timedOut: true, reason: '' }, 'timeout', 'no answer within 5s'],
      [{ local: false, isApp: true, errorCode: APP_UNTRUSTED, reason: 'unknown_fingerprint' }, 'rejected', 'alice refused our certificate: alice has no peer entry for this node (on alice: vpnctl add-peer --name self --fingerprint SELF --networks corp)'],
      [{ local: false, isApp: false, errorCode: 0x128, reason: '' }, 'handshake', 'handshake failed'],
      [{ local: false, isApp: false, errorCode: 0x128, reason: 'TLS alert 40' }, 'handshake', 'TLS alert 40'],
    ];
    for (const [info, reason, why] of cases) {
      const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
      dialAlice(s).finishClose(info);
      expect(await s.failures(reason), reason).toBe(1);
      const expected = why.startsWith('alice refused') ? why.replace('SELF', self.fingerprint) : `cannot connect to 192.0.2.10:51820: ${why}`;
      expect(peerNamed(s, 'alice').manager!.lastError).toBe(expected);
      // A close before the handshake never reaches the connection registry.
      expect(s.connections.connectionCount()).toBe(0);
    }
  });

  it('treats a dial that throws as a failed attempt and redials', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
    s.dialer.error = new Error('endpoint closed');
    const manager = peerNamed(s, 'alice').manager!;
    manager.start();
    expect(manager.lastError).toBe('cannot dial 192.0.2.10:51820: endpoint closed');
    expect(manager.state).toBe('waiting');
    expect(await s.failures('error')).toBe(1);
    s.dialer.error = null;
    s.clock.advance(1000);
    expect(s.dials).toHaveLength(1);
  });

  it('never dials a peer without an address', async () => {
    const s = await setup([newPeer('bob', ['corp'], { fingerprint: bob.fingerprint })]);
    const peer = peerNamed(s, 'bob');
    expect(peer.manager).toBeNull();
    s.handshakes.dial(peer);
    expect(s.dials).toEqual([]);
    expect(await counterValue(s.metrics, 'vibepn_peer_connection_attempts_total')).toBe(0);
  });
});

describe('Handshakes: a refused dial', () => {
  it('another certificate than the pinned one: closed as untrusted, counted, shown and redialed', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
    const conn = dialAlice(s);
    conn.certDer = certDer(bob);
    conn.establish();
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'pin_mismatch' }]);
    expect(await s.failures('rejected')).toBe(1);
    expect(await s.rejected('pin_mismatch')).toBe(1);
    const peer = peerNamed(s, 'alice');
    expect(peer.manager!.lastError).toBe(
      `refused: peer alice presented certificate fingerprint ${bob.fingerprint}, but the config pins ${alice.fingerprint}; ` +
        'if alice really has a new key, update its fingerprint in the [[peers]] entry',
    );
    expect(peer.manager!.state).toBe('waiting');
    expect(peer.links.size).toBe(0);
    expect(conn.opened).toEqual([]);
    expect(s.lines.some((l) => l.includes('refused dialed alice at 192.0.2.10:51820: peer alice presented'))).toBe(true);
    // The close that follows changes nothing.
    conn.finishClose();
    expect(peer.manager!.lastError).toMatch(/^refused: /);
    expect(await s.failures('rejected')).toBe(1);
    s.clock.advance(1000);
    expect(s.dials).toHaveLength(2);
  });

  it('our own certificate at the peer’s address is refused, and nothing is learned', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    const conn = dialAlice(s);
    conn.certDer = certDer(self);
    conn.establish();
    await nextTurn();
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'cert_invalid' }]);
    expect(await s.rejected('cert_invalid')).toBe(1);
    expect(peerNamed(s, 'alice').manager!.lastError).toBe(
      "refused: alice's address leads back to this node (it answered with this node's own certificate); fix peers.address for alice",
    );
    expect(s.trust.get('alice')).toBeUndefined();
    expect(s.file.written).toEqual([]);
  });

  it('a key other than the one learned on first use is refused', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })], { known: { alice: alice.fingerprint } });
    const conn = dialAlice(s);
    conn.certDer = certDer(impostor);
    conn.establish();
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'tofu_mismatch' }]);
    expect(await s.rejected('tofu_mismatch')).toBe(1);
    expect(peerNamed(s, 'alice').manager!.lastError).toContain(`remembers ${alice.fingerprint} from first use`);
  });
});

describe('Handshakes: first use on a dial', () => {
  it('learns the key before the session opens', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    const peer = peerNamed(s, 'alice');
    expect(peer.fingerprint).toBeNull();
    s.file.holdWrites();
    const conn = dialAlice(s);
    conn.certDer = certDer(alice);
    conn.establish();
    await nextTurn();
    // Not let in while the file is being written…
    expect(conn.opened).toEqual([]);
    expect(peer.links.size).toBe(0);
    expect(s.file.text).toBeNull();
    // …though a racing connection is already judged against the new entry.
    expect(s.trust.get('alice')).toBe(alice.fingerprint);
    s.file.releaseWrites();
    await nextTurn();
    expect(JSON.parse(s.file.text!)).toEqual({ alice: alice.fingerprint });
    expect(conn.opened).toHaveLength(1);
    expect(controlTypes(conn.opened[0]!)).toEqual(['hello', 'capabilities', 'announce']);
    expect(peer.fingerprint).toBe(alice.fingerprint);
    expect(s.peers.withFingerprint(alice.fingerprint)).toBe(peer);
    expect(s.lines.some((l) => l.includes(`trusting alice on first use: fingerprint ${alice.fingerprint} stored in ${s.file.path}`))).toBe(true);
    // The peer answers: connected.
    conn.opened[0]!.onData(helloBytes(5n));
    expect(peer.active?.conn).toBe(conn.asQuic());
    expect(peer.manager!.state).toBe('connected');
  });

  // An address from an introduction (or a relay's) is a third party's word: answering there must
  // never make a key trusted.
  it('learns nothing on a dial along a path other than the configured address', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    const peer = peerNamed(s, 'alice');
    const failed: string[] = [];
    s.handshakes.dial(peer, { address: { host: '198.51.100.9', port: 51820 }, shown: '198.51.100.9:51820 (introduced by h)', failed: (r) => failed.push(r) });
    const conn = s.dials.at(-1)!.conn;
    conn.certDer = certDer(alice);
    conn.establish();
    await nextTurn();
    expect(conn.closeCode).toBe(APP_UNTRUSTED);
    expect(conn.opened).toEqual([]);
    expect(s.trust.get('alice')).toBeUndefined();
    expect(peer.fingerprint).toBeNull();
    expect(failed).toEqual([expect.stringMatching(/^refused: alice has no pinned or learned fingerprint to check at 198\.51\.100\.9:51820 \(introduced by h\)/)]);
  });

  it('refuses the dial when the first use cannot be written', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    s.file.failWrites = new Error('ENOSPC: no space left on device');
    const conn = dialAlice(s);
    conn.certDer = certDer(alice);
    conn.establish();
    await nextTurn();
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'tofu_mismatch' }]);
    expect(conn.opened).toEqual([]);
    expect(s.trust.get('alice')).toBeUndefined();
    expect(await s.failures('rejected')).toBe(1);
    expect(await s.rejected('tofu_mismatch')).toBe(1);
    const manager = peerNamed(s, 'alice').manager!;
    expect(manager.lastError).toBe(`refused: cannot write known-peers file ${s.file.path}: ENOSPC: no space left on device`);
    expect(manager.state).toBe('waiting');
  });

  it('opens no session when the connection closed while the first use was written', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    s.file.holdWrites();
    const conn = dialAlice(s);
    conn.certDer = certDer(alice);
    conn.establish();
    conn.finishClose({ local: false, isApp: false, timedOut: true });
    s.file.releaseWrites();
    await nextTurn();
    expect(conn.opened).toEqual([]);
    expect(peerNamed(s, 'alice').links.size).toBe(0);
    expect(s.connections.connectionCount()).toBe(0);
  });
});

describe('Handshakes.accept', () => {
  it('refuses a stranger claiming an unpinned peer’s name from another IP', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    const conn = s.inbound('203.0.113.5:40000', impostor);
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'unknown_fingerprint' }]);
    expect(await s.rejected('unknown_fingerprint')).toBe(1);
    // Inbound refusals are not failed dials.
    expect(await s.failures('rejected')).toBe(0);
    await nextTurn();
    expect(s.trust.get('alice')).toBeUndefined();
    expect(s.file.written).toEqual([]);
    expect(
      s.lines.some((l) =>
        l.includes(
          `refused inbound from 203.0.113.5:40000: certificate ${impostor.fingerprint} claims the name 'alice', but alice is not pinned and the connection came from 203.0.113.5 (its address is 192.0.2.10:51820)`,
        ),
      ),
    ).toBe(true);
    // Its streams go nowhere; its close is harmless.
    conn.peerStream(helloBytes(1n));
    conn.finishClose();
    expect(s.connections.connectionCount()).toBe(0);
    expect(peerNamed(s, 'alice').manager!.lastError).toBeNull();
  });

  it('learns an unpinned peer dialing from its configured IP, holding its early streams until then', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    const peer = peerNamed(s, 'alice');
    s.file.holdWrites();
    const conn = s.inbound('192.0.2.10:40000', alice);
    // The dialer speaks first: control stream (Hello, Announce) and a raw stream, before the write.
    const host = formatPrefix(hostPrefix(peer.autoAddressIn('corp', s.config.networks.get('corp')!.prefix)));
    const control = conn.peerStream(concatBytes([helloBytes(9n), announceBytes('corp', [host])]));
    const frame = encodeFrame('corp', new Uint8Array([0x45, 0, 0, 20]));
    const raw = conn.peerStream(frame);
    await nextTurn();
    expect(peer.links.size).toBe(0);
    expect(control.writes).toEqual([]);
    expect(s.data).toEqual([]);
    expect(s.routes.list()).toEqual([]);

    s.file.releaseWrites();
    await nextTurn();
    expect(JSON.parse(s.file.text!)).toEqual({ alice: alice.fingerprint });
    expect(peer.fingerprint).toBe(alice.fingerprint);
    // The held bytes were replayed: the first stream became the control stream, the next one data.
    const link = [...peer.links][0]!;
    expect(link.control).toBe(control.asQuic());
    expect(peer.active).toBe(link);
    expect(link.session?.peerNonce).toBe(9n);
    expect(controlTypes(control)).toEqual(['hello', 'capabilities', 'announce']);
    expect(s.routes.list().map((r) => formatPrefix(r.prefix))).toEqual([host]);
    expect(s.data.map((e) => e.stream)).toEqual([raw.asQuic()]);
    expect(s.data[0]!.chunks).toEqual([frame]);
    // A connection it dialed counts as connected for the redial schedule too.
    expect(peer.manager!.state).toBe('connected');
    // Streams after admission go straight to the data plane.
    conn.peerStream(frame);
    expect(s.data).toHaveLength(2);
  });

  it('cuts a peer that sends more than 256 KiB before its first use is recorded', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    s.file.holdWrites();
    const conn = s.inbound('192.0.2.10:40000', alice);
    const stream = conn.peerStream(new Uint8Array(MAX_HELD_BYTES));
    expect(conn.closes).toEqual([]);
    stream.onData(new Uint8Array(1));
    expect(conn.closes).toEqual([{ code: APP_PROTOCOL_VIOLATION, reason: 'too much data before admission' }]);
    s.file.releaseWrites();
    await nextTurn();
    expect(peerNamed(s, 'alice').links.size).toBe(0);
  });

  it('refuses an inbound first use that cannot be written', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })]);
    s.file.failWrites = new Error('EROFS: read-only file system');
    const conn = s.inbound('192.0.2.10:40000', alice);
    await nextTurn();
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'tofu_mismatch' }]);
    expect(await s.rejected('tofu_mismatch')).toBe(1);
    expect(await s.failures('rejected')).toBe(0);
    expect(s.trust.get('alice')).toBeUndefined();
    expect(peerNamed(s, 'alice').links.size).toBe(0);
  });

  it('admits a pinned peer from anywhere at once; its first stream is the control stream', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
    const peer = peerNamed(s, 'alice');
    const conn = s.inbound('198.51.100.1:4000', alice);
    expect(conn.closes).toEqual([]);
    expect(peer.links.size).toBe(1);
    const control = conn.peerStream(helloBytes(3n));
    expect(controlTypes(control)).toEqual(['hello', 'capabilities', 'announce']);
    expect(peer.active?.control).toBe(control.asQuic());
    conn.peerStream(encodeFrame('corp', new Uint8Array([0x45])));
    expect(s.data).toHaveLength(1);
    expect(s.file.written).toEqual([]);
  });

  it('admits a peer learned earlier from anywhere, without writing again', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })], { known: { alice: alice.fingerprint } });
    const conn = s.inbound('198.51.100.1:4000', alice);
    expect(conn.closes).toEqual([]);
    expect(peerNamed(s, 'alice').links.size).toBe(1);
    await nextTurn();
    expect(s.file.written).toEqual([]);
  });

  it('with accept_unknown_peers, admits an unknown peer under its certificate’s name, until its last connection closes', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })], { acceptUnknown: true });
    const conn = s.inbound('198.51.100.7:4000', carol);
    expect(conn.closes).toEqual([]);
    expect(s.lines.some((l) => l.includes(`accepting unknown peer carol (${carol.fingerprint.slice(0, 8)}…) from 198.51.100.7:4000`))).toBe(true);
    const [stranger] = s.peers.unknowns();
    expect(stranger?.name).toBe('carol');
    expect(stranger?.fingerprint).toBe(carol.fingerprint);
    expect(stranger?.config).toBeNull();
    // It takes part in every network.
    const control = conn.peerStream(helloBytes(1n));
    control.onData(announceBytes('corp', [hostRoute(s, stranger!)]));
    expect(s.routes.list().map((r) => r.peer)).toEqual([stranger]);
    expect(controlSent(control)[2]).toMatchObject({ type: 'announce', network: 'corp' });
    // Nothing is written for an unknown peer.
    expect(s.file.written).toEqual([]);
    conn.finishClose({ local: false, isApp: true, errorCode: 1 });
    expect(s.peers.withFingerprint(carol.fingerprint)).toBeUndefined();
    expect(s.routes.list()).toEqual([]);
  });

  it('with accept_unknown_peers, a stranger claiming a configured name is admitted under another name', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT })], { acceptUnknown: true });
    const conn = s.inbound('203.0.113.5:40000', impostor);
    expect(conn.closes).toEqual([]);
    const [stranger] = s.peers.unknowns();
    expect(stranger?.name).toBe(`unknown-${impostor.fingerprint.slice(0, 8)}`);
    expect(peerNamed(s, 'alice').links.size).toBe(0);
    await nextTurn();
    expect(s.trust.get('alice')).toBeUndefined();
  });

  it('without accept_unknown_peers, refuses a certificate that belongs to no configured peer', async () => {
    const s = await setup([newPeer('alice', ['corp'], { address: ALICE_AT, fingerprint: alice.fingerprint })]);
    const conn = s.inbound('198.51.100.7:4000', carol);
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'unknown_fingerprint' }]);
    expect(s.peers.unknowns()).toEqual([]);
    expect(s.lines.some((l) => l.includes(`certificate ${carol.fingerprint} (CN 'carol') belongs to no configured peer`))).toBe(true);
  });
});

// On an admin node a stranger may be holding an invite (redemption.ts): it is held for its first
// control message, but never more than MAX_HELD_STRANGERS at once, and a revoked key is told why.
describe('Handshakes: strangers on an admin node', () => {
  const redeemer = (revoked: string | null = null): InviteRedeemer => ({
    active: true,
    revoked: () => revoked,
    redeem: () => new Promise(() => {}),
  });

  it(`holds at most ${MAX_HELD_STRANGERS} strangers at once; the next is refused at once, and room is made as held ones close`, async () => {
    const s = await setup([], { redeemer: redeemer() });
    const held = Array.from({ length: MAX_HELD_STRANGERS }, (_, i) => s.inbound(`192.0.2.${(i % 200) + 1}:4000${i % 10}`, carol));
    expect(held.every((c) => c.closes.length === 0)).toBe(true);
    const extra = s.inbound('198.51.100.1:40000', carol);
    expect(extra.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'unknown_fingerprint' }]);
    held[0]!.close(APP_NO_ERROR, 'gone');
    const next = s.inbound('198.51.100.2:40000', carol);
    expect(next.closes).toEqual([]);
    // Each held one is refused at the handshake deadline if it sends nothing.
    s.clock.advance(HANDSHAKE_MS + 1);
    expect(next.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'unknown_fingerprint' }]);
  });

  it('tells a revoked key member.revoked at once instead of holding it', async () => {
    const s = await setup([], { redeemer: redeemer('member.revoked this node\'s key was revoked from corp') });
    const conn = s.inbound('198.51.100.1:40000', carol);
    expect(conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: "member.revoked this node's key was revoked from corp" }]);
    expect(await s.rejected('unknown_fingerprint')).toBe(1);
  });
});
