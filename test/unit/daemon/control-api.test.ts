import { beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { deriveAutoAddress } from '../../../src/config/address.js';
import type { Config } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer } from '../../../src/config/write.js';
import { CONTROL_COMMANDS } from '../../../src/control/api.js';
import { generateIdentity } from '../../../src/crypto/identity.js';
import type { TrustStore } from '../../../src/crypto/trust.js';
import { ControlApi, type ControlActions, type ControlState } from '../../../src/daemon/control-api.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { formatIp, hostPrefix, formatPrefix } from '../../../src/netgraph/addr.js';
import { Routes } from '../../../src/netgraph/routes.js';
import { PeerManager } from '../../../src/peer/manager.js';
import type { Peer } from '../../../src/peer/peer.js';
import { PeerMap } from '../../../src/peer/peers.js';
import type { Session } from '../../../src/peer/session.js';
import type { QuicConnection } from '../../../src/quic/connection.js';
import { nextTurn } from '../../helpers/unit-fakes.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const FP_S = '5'.repeat(64);
const FP_GONE = '6'.repeat(64);

let selfFingerprint: string;

beforeAll(async () => {
  selfFingerprint = (await generateIdentity('self', { now: new Date('2026-01-01T00:00:00Z') })).fingerprint;
});

function connect(peer: Peer, session: Partial<Session>): void {
  const at = new FakeClock().now();
  const full = {
    peerFingerprint: peer.fingerprint,
    direction: 'outbound',
    remoteAddress: '192.0.2.1:51820',
    connectedAt: at,
    lastReceivedAt: at,
    ...session,
  } as Session;
  // The connection reports where the peer is now; here, where the session started.
  const [host, port] = full.remoteAddress.split(/:(?=\d+$)/);
  const conn = {
    remoteEndpoint: () => ({ host: host!, port: Number(port) }),
    stats: () => ({ bytesReceived: 1000, bytesSent: 2000, rttMs: 1.5 }),
  } as unknown as QuicConnection;
  const link = { conn, peer, session: full, control: null, relayed: false };
  peer.links.add(link);
  peer.active = link;
}

interface Setup {
  api: ControlApi;
  state: ControlState;
  clock: FakeClock;
  peers: PeerMap;
  routes: Routes<Peer>;
  config: Config;
  shutdowns: number[];
  trustFails: { value: boolean };
  alice: Peer;
  bob: Peer;
  carol: Peer;
  stranger: Peer;
}

function setup(actions: Partial<ControlActions> = {}): Setup {
  const clock = new FakeClock();
  const config = newConfig('/etc/vibepn/config.toml', {
    homeDir: '/home/test',
    daemon: { listen: '[::]:51820' },
    peers: [
      newPeer('alice', ['corp'], { address: '192.0.2.1:51820', fingerprint: FP_A }),
      newPeer('bob', ['corp'], { address: 'bob.example:51820' }),
      newPeer('carol', ['corp'], { address: '[2001:db8::3]:51820' }),
    ],
    networks: [newNetwork('corp', '10.42.0.0/24'), newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.5', export: false })],
  });
  const peers = new PeerMap();
  const alice = peers.addConfigured(config.peers[0]!, undefined);
  const bob = peers.addConfigured(config.peers[1]!, FP_B);
  const carol = peers.addConfigured(config.peers[2]!, undefined);
  const stranger = peers.unknown(FP_S, 'stranger');
  peers.unknown(FP_GONE, 'gone'); // admitted once, not connected now
  const { logger } = memoryLogger();
  const routes = new Routes<Peer>({ knownPeers: () => peers.withKeys(), metrics: { routeRejected: () => {} }, logger, onChange: () => {} });
  const corp = config.networks.get('corp')!;
  routes.addNetwork('corp', corp.prefix, deriveAutoAddress('corp', corp.prefix, selfFingerprint));
  routes.addNetwork('lab', config.networks.get('lab')!.prefix, new Uint8Array([10, 43, 0, 5]));
  const trustFails = { value: false };
  const shutdowns: number[] = [];
  const state: ControlState = {
    relayOf: () => undefined,
    name: 'self',
    fingerprint: selfFingerprint,
    startedAt: clock.now(),
    port: 51820,
    clock,
    config,
    trust: {
      get: (name: string) => {
        if (trustFails.value) throw new Error('known_peers.json: unexpected token');
        return name === 'bob' ? FP_B : undefined;
      },
    } as unknown as TrustStore,
    peers,
    routes,
    connections: { connectionCount: () => 2 },
    interfaceName: (network) => (network === 'corp' ? 'vpn-corp' : undefined),
  };
  const api = new ControlApi(state, {
    reload: actions.reload ?? (async () => 'no changes'),
    shutdown: actions.shutdown ?? (() => shutdowns.push(clock.now())),
  });
  return { api, state, clock, peers, routes, config, shutdowns, trustFails, alice, bob, carol, stranger };
}

describe('ControlApi status', () => {
  it('reports identity, uptime, listen address, counts and networks', () => {
    const s = setup();
    connect(s.alice, {});
    connect(s.stranger, {});
    s.routes.announce(s.alice, 'corp', [{ prefix: formatPrefix(hostPrefix(s.alice.autoAddressIn('corp', s.config.networks.get('corp')!.prefix))), metric: 1 }]);
    s.clock.advance(90_400);
    const corp = s.config.networks.get('corp')!;
    expect(s.api.status()).toEqual({
      name: 'self',
      uptime_s: 90,
      fingerprint: selfFingerprint,
      listen: '[::]:51820',
      port: 51820,
      peers_connected: 2,
      peers_configured: 3,
      connections: 2,
      routes: 1,
      networks: [
        { name: 'corp', interface: 'vpn-corp', address: formatIp(deriveAutoAddress('corp', corp.prefix, selfFingerprint)), prefix: '10.42.0.0/24', export: true },
        { name: 'lab', interface: '', address: '10.43.0.5', prefix: '10.43.0.0/24', export: false },
      ],
    });
  });

  it('rounds uptime to the nearest second', () => {
    const s = setup();
    s.clock.advance(1499);
    expect(s.api.status().uptime_s).toBe(1);
    s.clock.advance(1);
    expect(s.api.status().uptime_s).toBe(2);
  });
});

describe('ControlApi peers', () => {
  it('lists configured peers in config order, then connected unknown peers', () => {
    const s = setup();
    connect(s.stranger, { remoteAddress: '198.51.100.9:40000', direction: 'inbound' });
    expect(s.api.peers().map((r) => r.name)).toEqual(['alice', 'bob', 'carol', 'stranger']);
  });

  it('describes a connected peer from its session', () => {
    const s = setup();
    const { logger } = memoryLogger();
    s.alice.manager = new PeerManager('alice', { dial: () => {}, isConnected: () => true, clock: s.clock, logger });
    s.alice.manager.dialFailed('duplicate connection');
    const since = s.clock.now();
    s.clock.advance(5000);
    connect(s.alice, { connectedAt: since, lastReceivedAt: s.clock.now(), direction: 'inbound', remoteAddress: '192.0.2.1:40001' });
    expect(s.api.peers()[0]).toEqual({
      name: 'alice',
      fingerprint: FP_A,
      address: '192.0.2.1:51820',
      connected: true,
      last_seen: new Date(s.clock.now()).toISOString(),
      direction: 'inbound',
      remote: '192.0.2.1:40001',
      connected_since: new Date(since).toISOString(),
      last_error: null,
      trust: 'pinned',
      path: 'direct',
      via: null,
      addresses: [expect.stringMatching(/^10\.42\.0\.\d+$/)],
      rx_bytes: 1000,
      tx_bytes: 2000,
      rtt_ms: 1.5,
    });
  });

  it('describes a disconnected peer from what was last known', () => {
    const s = setup();
    const { logger } = memoryLogger();
    s.bob.manager = new PeerManager('bob', { dial: () => {}, isConnected: () => false, clock: s.clock, logger });
    s.bob.manager.start();
    s.bob.manager.dialFailed('liveness timeout');
    s.bob.lastSeen = s.clock.now() - 42_000;
    const [, bob, carol] = s.api.peers();
    expect(bob).toEqual({
      name: 'bob',
      fingerprint: FP_B,
      address: 'bob.example:51820',
      connected: false,
      last_seen: new Date(s.clock.now() - 42_000).toISOString(),
      direction: null,
      remote: null,
      connected_since: null,
      last_error: 'liveness timeout',
      trust: 'learned',
      path: null,
      via: null,
      addresses: [expect.stringMatching(/^10\.42\.0\.\d+$/)],
      rx_bytes: null,
      tx_bytes: null,
      rtt_ms: null,
    });
    expect(carol).toMatchObject({ name: 'carol', fingerprint: '', address: '[2001:db8::3]:51820', connected: false, last_seen: null, last_error: null });
  });

  it('says how each peer is trusted: pinned, learned, unlearned, unknown', () => {
    const s = setup();
    connect(s.stranger, {});
    expect(Object.fromEntries(s.api.peers().map((r) => [r.name, r.trust]))).toEqual({
      alice: 'pinned',
      bob: 'learned',
      carol: 'unlearned',
      stranger: 'unknown',
    });
    expect(s.api.peers()[3]).toMatchObject({ fingerprint: FP_S, address: '', connected: true });
  });

  it('reports unlearned rather than failing when the known-peers file cannot be read', () => {
    const s = setup();
    s.trustFails.value = true;
    expect(s.api.peers().map((r) => r.trust)).toEqual(['pinned', 'unlearned', 'unlearned']);
  });
});

describe('ControlApi routes', () => {
  it('lists every route with network, prefix, peer fingerprint and name, and metric', () => {
    const s = setup();
    const corp = s.config.networks.get('corp')!;
    const aliceRoute = formatPrefix(hostPrefix(s.alice.autoAddressIn('corp', corp.prefix)));
    const strangerRoute = formatPrefix(hostPrefix(s.stranger.autoAddressIn('lab', s.config.networks.get('lab')!.prefix)));
    s.routes.announce(s.alice, 'corp', [{ prefix: aliceRoute, metric: 3 }]);
    s.routes.announce(s.stranger, 'lab', [{ prefix: strangerRoute, metric: 1 }]);
    expect(s.api.routes()).toEqual([
      { network: 'corp', prefix: aliceRoute, peer: FP_A, peer_name: 'alice', metric: 3 },
      { network: 'lab', prefix: strangerRoute, peer: FP_S, peer_name: 'stranger', metric: 1 },
    ]);
  });
});

describe('ControlApi.handle', () => {
  it('dispatches status, peers and routes', async () => {
    const s = setup();
    expect(await s.api.handle({ cmd: 'status' })).toEqual({ ...s.api.status(), health: await s.api.health() });
    expect(await s.api.handle({ cmd: 'peers' })).toEqual(s.api.peers());
    expect(await s.api.handle({ cmd: 'routes' })).toEqual([]);
  });

  it('refuses an unknown command, listing the commands', async () => {
    const s = setup();
    await expect(s.api.handle({ cmd: 'bogus' })).rejects.toThrow(`unknown command 'bogus' (commands: ${CONTROL_COMMANDS.join(', ')})`);
    await expect(s.api.handle({ cmd: 'bogus' })).rejects.toThrow('commands: status, peers, routes, reload, goodbye');
  });

  it('answers reload with what the reload changed, and passes its failure on', async () => {
    let calls = 0;
    const ok = setup({
      reload: async () => {
        calls++;
        return 'peers added: erin';
      },
    });
    expect(await ok.api.handle({ cmd: 'reload' })).toBe('peers added: erin');
    expect(calls).toBe(1);
    const failing = setup({
      reload: async () => {
        throw new Error('config.toml: line 3: bad value');
      },
    });
    await expect(failing.api.handle({ cmd: 'reload' })).rejects.toThrow('line 3: bad value');
  });

  it('answers goodbye first and shuts down only after the answer', async () => {
    const s = setup();
    const answer = await s.api.handle({ cmd: 'goodbye' });
    expect(answer).toBe('shutting down');
    expect(s.shutdowns).toEqual([]);
    await nextTurn();
    expect(s.shutdowns).toHaveLength(1);
  });
});
