// Node: the running node built on fakes (FakeClock, MemoryTun, fake QUIC connections, an
// in-memory known-peers file): adding peers and networks, what counts as connected for an
// original peer's redial schedule, and the once-a-second tick (liveness, roaming).
import { beforeAll, describe, expect, it } from 'vitest';
import { deriveAutoAddress } from '../../../src/config/address.js';
import type { Config, PeerConfig } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer } from '../../../src/config/write.js';
import type { GeneratedIdentity } from '../../../src/crypto/identity.js';
import type { TrustStore } from '../../../src/crypto/trust.js';
import { formatIp } from '../../../src/netgraph/addr.js';
import type { Peer } from '../../../src/peer/peer.js';
import { DEFAULT_TIMING } from '../../../src/peer/timing.js';
import { APP_DEAD_PEER, APP_GOODBYE } from '../../../src/quic/errors.js';
import { nextTurn } from '../../helpers/unit-fakes.js';
import { MemoryKnownPeers, controlTypes, fakeNode, openLink, type DrivenLink } from '../../helpers/unit-peer-fakes.js';
import { distinctIdentities } from '../../helpers/identities.js';


let self: GeneratedIdentity;
let alice: GeneratedIdentity;
let bob: GeneratedIdentity;
let carol: GeneratedIdentity;
let dave: GeneratedIdentity;

beforeAll(async () => {
  [self, alice, bob, carol, dave] = await distinctIdentities(['self', 'alice', 'bob', 'carol', 'dave']);
});

const KNOWN = '/virtual/vibepn/known_peers.json';

function config(peers: PeerConfig[]): Config {
  return newConfig('/etc/vibepn/config.toml', {
    homeDir: '/home/test',
    knownPeers: KNOWN,
    peers,
    networks: [newNetwork('corp', '10.42.0.0/24', { interface: 'vpn-corp' }), newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.9' })],
  });
}

function peerNamed(node: { peers: { byConfigName(name: string): Peer | undefined } }, name: string): Peer {
  const peer = node.peers.byConfigName(name);
  if (!peer) throw new Error(`no peer ${name}`);
  return peer;
}

/** A link whose Hello arrived: active unless another one is. */
function connect(link: DrivenLink, nonce = 1n): DrivenLink {
  link.hello(nonce);
  return link;
}

describe('Node networks', () => {
  it('adds each network with its interface, address and route table; removes them again', async () => {
    const f = await fakeNode({ config: config([]), identity: self });
    const corpPrefix = f.node.config.networks.get('corp')!.prefix;
    const corpTun = f.tuns.devices.get('vpn-corp');
    expect(corpTun?.options.address).toEqual(deriveAutoAddress('corp', corpPrefix, self.fingerprint));
    expect(corpTun?.options.prefixLength).toBe(24);
    expect(f.node.interfaceName('corp')).toBe('vpn-corp');
    const labTun = f.tuns.created.find((t) => t.name === f.node.interfaceName('lab'));
    expect(labTun && formatIp(labTun.options.address)).toBe('10.43.0.9');
    expect(f.routes.table('corp')).toBeDefined();
    f.node.removeNetwork('lab');
    expect(labTun?.closed).toBe(true);
    expect(f.routes.table('lab')).toBeUndefined();
    expect(f.node.interfaceName('lab')).toBeUndefined();
    expect(f.routes.table('corp')).toBeDefined();
  });

  it('names itself after its identity', async () => {
    const f = await fakeNode({ config: config([]), identity: { ...self, name: 'hub' } });
    expect(f.node.name).toBe('hub');
    expect(f.node.fingerprint).toBe(self.fingerprint);
    expect(f.node.localFingerprint).toBe(self.fingerprint);
    expect(f.node.startedAt).toBe(f.clock.now());
  });
});

describe('Node.addPeer', () => {
  it('gives a redial manager only to a peer with an address, and does not dial yet', async () => {
    const f = await fakeNode({
      config: config([
        newPeer('alice', ['corp'], { address: '192.0.2.10:51820', fingerprint: alice.fingerprint }),
        newPeer('bob', ['corp'], { fingerprint: bob.fingerprint }),
      ]),
      identity: self,
    });
    const a = peerNamed(f, 'alice');
    expect(a.manager?.name).toBe('alice');
    expect(a.manager?.state).toBe('waiting');
    expect(peerNamed(f, 'bob').manager).toBeNull();
    expect(f.dials).toEqual([]);
    // Its manager dials through the handshakes, at the configured address.
    a.manager!.start();
    expect(f.dials.map((d) => d.to)).toEqual([{ host: '192.0.2.10', port: 51820 }]);
  });

  it('takes the key the known-peers file learned for an unpinned peer; a pin wins', async () => {
    const file = new MemoryKnownPeers(KNOWN);
    file.text = JSON.stringify({ alice: alice.fingerprint, bob: carol.fingerprint });
    const f = await fakeNode({
      config: config([
        newPeer('alice', ['corp'], { address: '192.0.2.10:51820' }),
        newPeer('bob', ['corp'], { address: '192.0.2.11:51820', fingerprint: bob.fingerprint }),
        newPeer('carol', ['corp'], { address: '192.0.2.12:51820' }),
      ]),
      identity: self,
      file,
    });
    expect(peerNamed(f, 'alice').fingerprint).toBe(alice.fingerprint);
    expect(f.peers.withFingerprint(alice.fingerprint)).toBe(peerNamed(f, 'alice'));
    expect(peerNamed(f, 'bob').fingerprint).toBe(bob.fingerprint);
    expect(peerNamed(f, 'carol').fingerprint).toBeNull();
  });

  it('adds the peer without a key when the trust store cannot be read', async () => {
    const f = await fakeNode({ config: config([]), identity: self });
    f.node.trust = {
      get: () => {
        throw new Error('known-peers file is corrupt');
      },
    } as unknown as TrustStore;
    const peer = f.node.addPeer(newPeer('dave', ['corp'], { address: '192.0.2.13:51820' }));
    expect(peer.fingerprint).toBeNull();
    expect(peer.manager).not.toBeNull();
    expect(f.peers.byConfigName('dave')).toBe(peer);
  });
});

describe('Node: what counts as connected for the redial schedule', () => {
  /** What alice's manager does when told a dial failed: 'connected' if it thinks she is connected. */
  async function afterFailedDial(original: boolean, direction: 'inbound' | 'outbound' | null): Promise<string> {
    const f = await fakeNode({
      config: config([newPeer('alice', ['corp'], { address: '192.0.2.10:51820', fingerprint: alice.fingerprint, ...(original ? { original: true } : {}) })]),
      identity: self,
    });
    const peer = peerNamed(f, 'alice');
    if (direction) connect(openLink(f.node.connections, peer, direction));
    expect(peer.connected).toBe(direction !== null);
    peer.manager!.dialFailed('lost a race');
    return peer.manager!.state;
  }

  it('an ordinary peer: any active link', async () => {
    expect(await afterFailedDial(false, null)).toBe('waiting');
    expect(await afterFailedDial(false, 'inbound')).toBe('connected');
    expect(await afterFailedDial(false, 'outbound')).toBe('connected');
  });

  it('an original peer: only an active link we dialed', async () => {
    expect(await afterFailedDial(true, null)).toBe('waiting');
    expect(await afterFailedDial(true, 'inbound')).toBe('waiting');
    expect(await afterFailedDial(true, 'outbound')).toBe('connected');
  });

  it('an original peer active only on its own connection is dialed at once', async () => {
    const f = await fakeNode({
      config: config([newPeer('alice', ['corp'], { address: '192.0.2.10:51820', fingerprint: alice.fingerprint, original: true })]),
      identity: self,
    });
    const peer = peerNamed(f, 'alice');
    connect(openLink(f.node.connections, peer, 'inbound'));
    expect(peer.active?.conn.direction).toBe('inbound');
    expect(f.dials).toHaveLength(1);
    expect(peer.manager!.state).toBe('dialing');
  });
});

describe('Node.tick', () => {
  async function mesh() {
    const f = await fakeNode({
      config: config([
        newPeer('alice', ['corp'], { address: '192.0.2.10:51820', fingerprint: alice.fingerprint }),
        newPeer('bob', ['corp'], { address: '192.0.2.11:51820', fingerprint: bob.fingerprint }),
        newPeer('carol', ['corp'], { address: '192.0.2.12:51820', fingerprint: carol.fingerprint }),
        newPeer('dave', ['corp'], { fingerprint: dave.fingerprint }),
      ]),
      identity: self,
    });
    const connections = f.node.connections;
    // alice: we dialed her. bob: he dialed us. dave: inbound only, dialed us.
    const a = connect(openLink(connections, peerNamed(f, 'alice'), 'outbound'));
    const b = connect(openLink(connections, peerNamed(f, 'bob'), 'inbound'));
    const d = connect(openLink(connections, peerNamed(f, 'dave'), 'inbound'));
    // carol is down: her dial failed and her manager waits out the backoff.
    const carolManager = peerNamed(f, 'carol').manager!;
    carolManager.start();
    f.dials[0]!.conn.finishClose({ local: true, isApp: false, reason: 'cannot resolve carol: ENOTFOUND' });
    expect(carolManager.state).toBe('waiting');
    // An unknown peer on a connection we dialed (admitted by accept_unknown_peers).
    const stranger = f.peers.unknown('e'.repeat(64), 'eve');
    const e = connect(openLink(connections, stranger, 'outbound'));
    f.dials.length = 0;
    return { f, a, b, d, e, carolManager };
  }

  it('does nothing for peers while the host’s addresses stay the same', async () => {
    const { f, a, b, d, e } = await mesh();
    f.node.tick();
    f.addresses.list = [...f.addresses.list].reverse(); // same set, another order
    f.node.tick();
    expect(a.conn.pings + b.conn.pings + d.conn.pings + e.conn.pings).toBe(0);
    expect(f.dials).toEqual([]);
  });

  it('after the addresses changed: pings links we dialed, redials peers on links they dialed, retries peers that are down', async () => {
    const { f, a, b, d, e, carolManager } = await mesh();
    f.addresses.list = [{ interface: 'wlan0', address: '198.51.100.23' }];
    f.node.tick();
    expect(a.conn.pings).toBe(1);
    expect(e.conn.pings).toBe(1);
    // bob's connection came in and cannot follow us: he is dialed from the new address.
    expect(b.conn.pings).toBe(0);
    // carol is dialed now, not at the end of her backoff (the clock did not move).
    expect(f.dials.map((x) => x.to.host).sort()).toEqual(['192.0.2.11', '192.0.2.12']);
    expect(carolManager.state).toBe('dialing');
    // dave has no address: nothing to dial.
    expect(d.conn.pings).toBe(0);
    expect(f.lines.some((l) => l.includes('local addresses changed; re-establishing paths to peers'))).toBe(true);
    // Once per change.
    f.node.tick();
    expect(a.conn.pings).toBe(1);
    expect(f.dials).toHaveLength(2);
  });

  it('ignores address changes on its own TUN interfaces', async () => {
    const { f, a, b } = await mesh();
    f.addresses.list = [...f.addresses.list, { interface: 'vpn-corp', address: '10.42.0.77' }];
    f.node.tick();
    expect(a.conn.pings + b.conn.pings).toBe(0);
    expect(f.dials).toEqual([]);
  });

  it('checks liveness: a session silent past deadAfterMs is closed', async () => {
    const { f, a } = await mesh();
    f.clock.advance(DEFAULT_TIMING.deadAfterMs);
    f.node.tick();
    expect(a.conn.closes).toEqual([]);
    expect(controlTypes(a.control)).toContain('keepalive');
    f.clock.advance(1);
    f.node.tick();
    expect(a.conn.closes).toEqual([{ code: APP_DEAD_PEER, reason: 'liveness timeout' }]);
    expect(peerNamed(f, 'alice').connected).toBe(false);
  });
});

describe('Node.removePeer', () => {
  it('stops its redials, forgets it and says Goodbye on its connections', async () => {
    const f = await fakeNode({
      config: config([newPeer('alice', ['corp'], { address: '192.0.2.10:51820', fingerprint: alice.fingerprint })]),
      identity: self,
    });
    const peer = peerNamed(f, 'alice');
    const link = connect(openLink(f.node.connections, peer, 'outbound'));
    f.node.removePeer(peer, 'removed from config');
    expect(peer.manager!.state).toBe('stopped');
    expect(f.peers.byConfigName('alice')).toBeUndefined();
    expect(f.peers.withFingerprint(alice.fingerprint)).toBeUndefined();
    expect(controlTypes(link.control).at(-1)).toBe('goodbye');
    await nextTurn();
    await nextTurn();
    expect(link.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'removed from config' }]);
    // Stopped for good: no redial after its session ended.
    f.clock.advance(60_000);
    expect(f.dials).toEqual([]);
  });
});
