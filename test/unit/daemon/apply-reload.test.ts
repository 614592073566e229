// applyReload on a real Node built on fakes (FakeClock, MemoryTun, fake QUIC connections, an
// in-memory known-peers file): what each kind of change does to peers, sessions, interfaces,
// routes and the running config, and the summary it returns.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Config, NetworkConfig, PeerConfig } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer, type NewConfigOptions } from '../../../src/config/write.js';
import type { ControlMessage } from '../../../src/control/messages.js';
import type { GeneratedIdentity } from '../../../src/crypto/identity.js';
import { ownHostRoute } from '../../../src/daemon/announce.js';
import { applyReload } from '../../../src/daemon/apply-reload.js';
import { formatPrefix, hostPrefix } from '../../../src/netgraph/addr.js';
import type { Peer } from '../../../src/peer/peer.js';
import { APP_GOODBYE } from '../../../src/quic/errors.js';
import { nextTurn } from '../../helpers/unit-fakes.js';
import { MemoryKnownPeers, certDer, controlSent, fakeNode, openLink, type DrivenLink } from '../../helpers/unit-peer-fakes.js';
import { distinctIdentities } from '../../helpers/identities.js';


let self: GeneratedIdentity;
let alice: GeneratedIdentity;
let bob: GeneratedIdentity;
let carol: GeneratedIdentity;
let dave: GeneratedIdentity;

beforeAll(async () => {
  [self, alice, bob, carol, dave] = await distinctIdentities(['self', 'alice', 'bob', 'carol', 'dave']);
});

const FILE = '/etc/vibepn/config.toml';
const KNOWN = '/virtual/vibepn/known_peers.json';

const corp = (options: Parameters<typeof newNetwork>[2] = {}) => newNetwork('corp', '10.42.0.0/24', { interface: 'vpn-corp', ...options });
const lab = (options: Parameters<typeof newNetwork>[2] = {}) => newNetwork('lab', '10.43.0.0/24', { interface: 'vpn-lab', ...options });
const dmz = () => newNetwork('dmz', '10.45.0.0/24', { interface: 'vpn-dmz' });
const alicePeer = (options: Parameters<typeof newPeer>[2] = {}, networks = ['corp', 'lab']) =>
  newPeer('alice', networks, { address: '192.0.2.10:51820', fingerprint: alice.fingerprint, ...options });
/** Unpinned: its key is in the known-peers file. */
const bobPeer = (networks = ['corp']) => newPeer('bob', networks, { address: '192.0.2.11:51820' });

interface Shape {
  peers?: PeerConfig[];
  networks?: NetworkConfig[];
  options?: NewConfigOptions;
}

function cfg(shape: Shape = {}): Config {
  const options = shape.options ?? {};
  return newConfig(FILE, {
    homeDir: '/home/test',
    knownPeers: KNOWN,
    ...options,
    daemon: { listen: '0.0.0.0:51820', controlSocket: '/run/vibepn.sock', metricsListen: ':9000', ...options.daemon },
    peers: shape.peers ?? [alicePeer(), bobPeer()],
    networks: shape.networks ?? [corp(), lab()],
  });
}

function peerNamed(f: { peers: { byConfigName(name: string): Peer | undefined } }, name: string): Peer {
  const peer = f.peers.byConfigName(name);
  if (!peer) throw new Error(`no peer ${name}`);
  return peer;
}

/** A peer's host route in a network of `config`. */
function hostIn(config: Config, peer: Peer, network: string): string {
  return formatPrefix(hostPrefix(peer.autoAddressIn(network, config.networks.get(network)!.prefix)));
}

/** Control messages `d` was sent after `mark()` was taken. */
function marker(d: DrivenLink): () => ControlMessage[] {
  const at = controlSent(d.control).length;
  return () => controlSent(d.control).slice(at);
}

/**
 * A running node: alice (pinned, corp + lab) connected on our dial and announcing her host
 * routes; bob (unpinned, learned, corp) connected on his dial.
 */
async function running(shape: Shape = {}, known: Record<string, string> = { bob: bob.fingerprint }, connect = true) {
  const file = new MemoryKnownPeers(KNOWN);
  file.text = JSON.stringify(known);
  const config = cfg(shape);
  const f = await fakeNode({ config, identity: self, file });
  const alicePeerObj = connect ? f.peers.byConfigName('alice') : undefined;
  const bobPeerObj = connect ? f.peers.byConfigName('bob') : undefined;
  let a: DrivenLink | null = null;
  let b: DrivenLink | null = null;
  if (alicePeerObj) {
    a = openLink(f.node.connections, alicePeerObj, 'outbound');
    a.hello(1n);
    for (const net of alicePeerObj.config!.networks) if (config.networks.has(net)) a.announce(net, [hostIn(config, alicePeerObj, net)]);
  }
  if (bobPeerObj) {
    b = openLink(f.node.connections, bobPeerObj, 'inbound');
    b.hello(2n);
    b.announce('corp', [hostIn(config, bobPeerObj, 'corp')]);
  }
  const routeList = () => f.routes.list().map((r) => `${r.network} ${formatPrefix(r.prefix)} ${r.peer.name}`).sort();
  return { f, config, a: a!, b: b!, routeList };
}

describe('applyReload: no changes', () => {
  it('says so and leaves every session alone', async () => {
    const { f, config, a, b, routeList } = await running();
    const [sentA, sentB] = [marker(a), marker(b)];
    const before = routeList();
    expect(await applyReload(cfg(), f.node)).toBe('no changes');
    expect(sentA()).toEqual([]);
    expect(sentB()).toEqual([]);
    expect(a.conn.closes).toEqual([]);
    expect(b.conn.closes).toEqual([]);
    expect(routeList()).toEqual(before);
    expect(f.node.config).not.toBe(config);
    expect(f.lines.some((l) => l.includes(`reloaded ${FILE}: no changes`))).toBe(true);
  });
});

describe('applyReload: peers', () => {
  it('says Goodbye to a removed peer and drops its routes, and dials an added one', async () => {
    const { f, a, b, routeList } = await running();
    const oldBob = peerNamed(f, 'bob');
    const sentA = marker(a);
    const sentB = marker(b);
    const next = cfg({ peers: [alicePeer(), newPeer('carol', ['corp'], { address: '192.0.2.12:51820', fingerprint: carol.fingerprint })] });
    expect(await applyReload(next, f.node)).toBe('peers added: carol; peers removed: bob');

    expect(sentB()).toEqual([{ type: 'goodbye' }]);
    expect(routeList().some((r) => r.endsWith(' bob'))).toBe(false);
    expect(f.peers.byConfigName('bob')).toBeUndefined();
    expect(oldBob.manager?.state).toBe('stopped');
    await nextTurn();
    await nextTurn();
    expect(b.conn.closes).toEqual([{ code: APP_GOODBYE, reason: 'removed from config' }]);

    const newCarol = peerNamed(f, 'carol');
    expect(newCarol.manager?.state).toBe('dialing');
    expect(f.dials.map((d) => d.to)).toEqual([{ host: '192.0.2.12', port: 51820 }]);

    // alice is not concerned.
    expect(sentA()).toEqual([]);
    expect(a.conn.closes).toEqual([]);
    expect(peerNamed(f, 'alice').active).toBe(a.link);
  });

  it('drops and redials, as a new peer, one whose address or pin changed', async () => {
    const { f, a, routeList } = await running();
    const oldAlice = peerNamed(f, 'alice');
    const sentA = marker(a);
    const next = cfg({ peers: [alicePeer({ address: '192.0.2.99:51820' }), bobPeer()] });
    expect(await applyReload(next, f.node)).toBe('peers reconnected: alice');
    expect(sentA()).toEqual([{ type: 'goodbye' }]);
    expect(oldAlice.manager?.state).toBe('stopped');
    const newAlice = peerNamed(f, 'alice');
    expect(newAlice).not.toBe(oldAlice);
    expect(newAlice.config).toBe(next.peers[0]);
    expect(newAlice.fingerprint).toBe(alice.fingerprint);
    expect(f.peers.withFingerprint(alice.fingerprint)).toBe(newAlice);
    expect(f.dials.map((d) => d.to)).toEqual([{ host: '192.0.2.99', port: 51820 }]);
    expect(routeList().some((r) => r.endsWith(' alice'))).toBe(false);
  });

  it('treats a change of `original` as a reconnect', async () => {
    const { f, a } = await running();
    const sentA = marker(a);
    expect(await applyReload(cfg({ peers: [alicePeer({ original: true }), bobPeer()] }), f.node)).toBe('peers reconnected: alice');
    expect(sentA()).toEqual([{ type: 'goodbye' }]);
    expect(peerNamed(f, 'alice').original).toBe(true);
  });

  it('keeps an updated peer’s session and judges again everything it announced', async () => {
    const { f, config, a, routeList } = await running();
    const peer = peerNamed(f, 'alice');
    // Outside alice's allowed routes at first: refused, but remembered by the session.
    a.announce('corp', ['192.168.1.0/24']);
    expect(routeList()).not.toContain('corp 192.168.1.0/24 alice');
    const sentA = marker(a);

    const allowed = cfg({ peers: [alicePeer({ allowedRoutes: ['192.168.0.0/16'] }), bobPeer()] });
    expect(await applyReload(allowed, f.node)).toBe('peers updated: alice');
    expect(peerNamed(f, 'alice')).toBe(peer);
    expect(peer.config).toBe(allowed.peers[0]);
    expect(peer.active).toBe(a.link);
    expect(routeList()).toContain('corp 192.168.1.0/24 alice');
    expect(sentA()).toEqual([]);
    expect(a.conn.closes).toEqual([]);

    // Taken away again: the learned route is dropped.
    expect(await applyReload(cfg(), f.node)).toBe('peers updated: alice');
    expect(routeList()).not.toContain('corp 192.168.1.0/24 alice');
    expect(routeList()).toContain(`corp ${hostIn(config, peer, 'corp')} alice`);
    expect(f.lines.some((l) => l.includes('reload: dropped route 192.168.1.0/24 in corp'))).toBe(true);
  });

  it('tells an updated peer about networks it now shares or no longer shares', async () => {
    const { f, config, b, routeList } = await running();
    const sentB = marker(b);
    expect(await applyReload(cfg({ peers: [alicePeer(), bobPeer(['lab'])] }), f.node)).toBe('peers updated: bob');
    expect(sentB()).toEqual([
      { type: 'withdraw', network: 'corp', prefix: ownHostRoute(config.networks.get('corp')!, self.fingerprint) },
      { type: 'announce', network: 'lab', routes: [{ prefix: ownHostRoute(config.networks.get('lab')!, self.fingerprint), metric: 1 }] },
    ]);
    // Its corp routes no longer pass policy.
    expect(routeList().some((r) => r.startsWith('corp') && r.endsWith(' bob'))).toBe(false);
    expect(b.conn.closes).toEqual([]);
  });

  it('lets an unknown peer stay when accept_unknown_peers is turned off, and keeps it informed', async () => {
    const { f } = await running({ peers: [], options: { daemon: { acceptUnknownPeers: true } } });
    const eve = f.peers.unknown(dave.fingerprint, 'eve');
    const e = openLink(f.node.connections, eve, 'inbound');
    e.hello(3n);
    const sentE = marker(e);
    const next = cfg({ peers: [], networks: [corp({ routes: ['192.168.50.0/24'] }), lab()] });
    expect(await applyReload(next, f.node)).toBe('networks updated: corp; settings changed: daemon.accept_unknown_peers');
    expect(f.node.config.daemon.acceptUnknownPeers).toBe(false);
    expect(eve.active).toBe(e.link);
    expect(sentE()).toEqual([{ type: 'announce', network: 'corp', routes: [{ prefix: '192.168.50.0/24', metric: 1 }] }]);
  });
});

describe('applyReload: networks', () => {
  it('creates added networks and removes removed ones, announcing and withdrawing', async () => {
    const { f, config, a, b, routeList } = await running();
    const [sentA, sentB] = [marker(a), marker(b)];
    const labTun = f.tuns.devices.get('vpn-lab')!;
    const next = cfg({ peers: [alicePeer({}, ['corp', 'dmz']), bobPeer()], networks: [corp(), dmz()] });
    expect(await applyReload(next, f.node)).toBe('peers updated: alice; networks added: dmz; networks removed: lab');
    expect(labTun.closed).toBe(true);
    expect(f.tuns.devices.has('vpn-lab')).toBe(false);
    expect(f.tuns.devices.has('vpn-dmz')).toBe(true);
    expect(f.routes.table('lab')).toBeUndefined();
    expect(f.routes.table('dmz')).toBeDefined();
    expect(routeList().some((r) => r.startsWith('lab '))).toBe(false);
    expect(sentA()).toEqual([
      { type: 'withdraw', network: 'lab', prefix: ownHostRoute(config.networks.get('lab')!, self.fingerprint) },
      { type: 'announce', network: 'dmz', routes: [{ prefix: ownHostRoute(next.networks.get('dmz')!, self.fingerprint), metric: 1 }] },
    ]);
    // bob is in neither.
    expect(sentB()).toEqual([]);
    // A session announcing in the new network now lands in its table.
    a.announce('dmz', [hostIn(next, peerNamed(f, 'alice'), 'dmz')]);
    expect(f.routes.table('dmz')!.lookup(peerNamed(f, 'alice').autoAddressIn('dmz', next.networks.get('dmz')!.prefix))).toBe(peerNamed(f, 'alice'));
  });

  it('rebuilds a network whose MTU changed and applies its peers’ announced routes to the new table', async () => {
    const { f, config, a, b, routeList } = await running();
    const [sentA, sentB] = [marker(a), marker(b)];
    const oldTun = f.tuns.devices.get('vpn-corp')!;
    const oldTable = f.routes.table('corp');
    const before = routeList();
    expect(await applyReload(cfg({ networks: [corp({ mtu: 1400 }), lab()] }), f.node)).toBe('networks rebuilt: corp');
    expect(oldTun.closed).toBe(true);
    const newTun = f.tuns.devices.get('vpn-corp')!;
    // (Identity compared by hand: a MemoryTun holds a 1 MiB buffer that expect would format.)
    expect(newTun === oldTun).toBe(false);
    expect(newTun.options.mtu).toBe(1400);
    const table = f.routes.table('corp')!;
    expect(table === oldTable).toBe(false);
    expect(routeList()).toEqual(before);
    const prefix = config.networks.get('corp')!.prefix;
    expect(table.lookup(peerNamed(f, 'alice').autoAddressIn('corp', prefix))).toBe(peerNamed(f, 'alice'));
    expect(table.lookup(peerNamed(f, 'bob').autoAddressIn('corp', prefix))).toBe(peerNamed(f, 'bob'));
    // What we announce did not change; no session was touched.
    expect(sentA()).toEqual([]);
    expect(sentB()).toEqual([]);
    expect(a.conn.closes.concat(b.conn.closes)).toEqual([]);
  });

  it('moves our own host route when a network’s address changes', async () => {
    const { f, config, a, b } = await running();
    const [sentA, sentB] = [marker(a), marker(b)];
    const next = cfg({ networks: [corp({ address: '10.42.0.200' }), lab()] });
    expect(await applyReload(next, f.node)).toBe('networks rebuilt: corp');
    const change = [
      { type: 'withdraw', network: 'corp', prefix: ownHostRoute(config.networks.get('corp')!, self.fingerprint) },
      { type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.200/32', metric: 1 }] },
    ];
    expect(sentA()).toEqual(change);
    expect(sentB()).toEqual(change);
    expect(f.tuns.devices.get('vpn-corp')!.options.address).toEqual(new Uint8Array([10, 42, 0, 200]));
  });

  it('announces routes added to a network and withdraws removed ones, without rebuilding', async () => {
    const { f, config, a, b } = await running();
    const [sentA, sentB] = [marker(a), marker(b)];
    const tun = f.tuns.devices.get('vpn-corp');
    expect(await applyReload(cfg({ networks: [corp({ routes: ['192.168.50.0/24'] }), lab()] }), f.node)).toBe('networks updated: corp');
    const added = [{ type: 'announce', network: 'corp', routes: [{ prefix: '192.168.50.0/24', metric: 1 }] }];
    expect(sentA()).toEqual(added);
    expect(sentB()).toEqual(added);
    expect(f.tuns.devices.get('vpn-corp') === tun).toBe(true);

    expect(await applyReload(cfg(), f.node)).toBe('networks updated: corp');
    expect(sentA().slice(1)).toEqual([{ type: 'withdraw', network: 'corp', prefix: '192.168.50.0/24' }]);

    // No longer exported: our host route there is withdrawn.
    const sentAgain = marker(a);
    expect(await applyReload(cfg({ networks: [corp(), lab({ export: false })] }), f.node)).toBe('networks updated: lab');
    expect(sentAgain()).toEqual([{ type: 'withdraw', network: 'lab', prefix: ownHostRoute(config.networks.get('lab')!, self.fingerprint) }]);
  });

  // A session also remembers a few networks this node does not have yet, so a network added by
  // reload takes the routes a connected peer announced in it at session start.
  it('a network added on reload takes the routes a connected peer announced in it before', async () => {
    const { f, a } = await running({ peers: [alicePeer({}, ['corp']), bobPeer()], networks: [corp()] });
    const peer = peerNamed(f, 'alice');
    const next = cfg({ peers: [alicePeer({}, ['corp', 'dmz']), bobPeer()], networks: [corp(), dmz()] });
    // alice already has dmz and announced it at session start; we did not have it then.
    a.announce('dmz', [hostIn(next, peer, 'dmz')]);
    expect(await applyReload(next, f.node)).toBe('peers updated: alice; networks added: dmz');
    expect(f.routes.table('dmz')!.lookup(peer.autoAddressIn('dmz', next.networks.get('dmz')!.prefix))).toBe(peer);
  });
});

describe('applyReload: settings', () => {
  it('keeps running with the old restart-only settings, and keeps reporting them', async () => {
    const { f, config } = await running();
    const next = cfg({
      options: {
        cert: '/etc/vibepn/certs/new.crt',
        key: '/etc/vibepn/certs/new.key',
        fingerprint: self.fingerprint,
        daemon: { listen: '0.0.0.0:51999', controlSocket: '/run/other.sock', metricsListen: '', logLevel: 'debug' },
      },
    });
    const expected =
      'settings changed: daemon.log_level; ' +
      'needs restart to take effect: identity.cert, identity.key, identity.fingerprint, daemon.listen, daemon.control_socket, daemon.metrics_listen';
    expect(await applyReload(next, f.node)).toBe(expected);
    const running_ = f.node.config;
    expect(running_.identity.cert).toBe(config.identity.cert);
    expect(running_.identity.key).toBe(config.identity.key);
    expect(running_.identity.fingerprint).toBeUndefined();
    expect(running_.daemon.listen).toEqual(config.daemon.listen);
    expect(running_.daemon.controlSocket).toBe(config.daemon.controlSocket);
    expect(running_.daemon.metricsListen).toEqual(config.daemon.metricsListen);
    // Live settings do apply.
    expect(running_.daemon.logLevel).toBe('debug');
    expect(running_.identity.knownPeers).toBe(KNOWN);
    expect(
      f.lines.some((l) =>
        l.includes('WARN') && l.includes('reload: identity.cert, identity.key, identity.fingerprint, daemon.listen, daemon.control_socket, daemon.metrics_listen changed; restart the daemon to apply'),
      ),
    ).toBe(true);
    // The file still differs from what runs: the next reload says so again.
    expect(await applyReload(next, f.node)).toBe(
      'needs restart to take effect: identity.cert, identity.key, identity.fingerprint, daemon.listen, daemon.control_socket, daemon.metrics_listen',
    );
  });

  it('applies the log level to every component at once', async () => {
    const { f } = await running();
    expect(f.logger.level).toBe('debug');
    expect(await applyReload(cfg({ options: { daemon: { logLevel: 'warn' } } }), f.node)).toBe('settings changed: daemon.log_level');
    expect(f.logger.level).toBe('warn');
    const count = f.lines.length;
    f.node.log.child('peer/manager').info('not shown');
    f.node.log.child('netgraph').warn('shown');
    expect(f.lines.slice(count)).toHaveLength(1);
    expect(f.lines.at(-1)).toContain('shown');
  });

  it('reports several changes in the documented order and logs the summary', async () => {
    const { f } = await running();
    const next = cfg({
      peers: [alicePeer({}, ['corp', 'dmz']), newPeer('carol', ['corp'], { address: '192.0.2.12:51820', fingerprint: carol.fingerprint })],
      networks: [corp({ routes: ['192.168.50.0/24'] }), dmz()],
      options: { daemon: { logLevel: 'debug', acceptUnknownPeers: true } },
    });
    const summary = await applyReload(next, f.node);
    expect(summary).toBe(
      'peers added: carol; peers removed: bob; peers updated: alice; networks added: dmz; networks removed: lab; networks updated: corp; ' +
        'settings changed: daemon.log_level, daemon.accept_unknown_peers',
    );
    expect(f.lines.some((l) => l.includes(`reloaded ${FILE}: ${summary}`))).toBe(true);
  });
});

describe('applyReload: the known-peers file', () => {
  it('is read again: an unpinned peer that is not connected takes what it says now', async () => {
    const extra = [newPeer('carol', ['corp'], { address: '192.0.2.12:51820' }), newPeer('dave', ['corp'], { address: '192.0.2.13:51820' })];
    const shape = { peers: [alicePeer(), bobPeer(), ...extra] };
    const { f } = await running(shape, { bob: bob.fingerprint, carol: carol.fingerprint, dave: dave.fingerprint });
    expect(peerNamed(f, 'carol').fingerprint).toBe(carol.fingerprint);
    // Hand edits: carol has a new key, dave is forgotten, bob (connected) has a new key too.
    f.file.text = JSON.stringify({ bob: dave.fingerprint, carol: alice.fingerprint });
    expect(await applyReload(cfg(shape), f.node)).toBe('no changes');
    expect(f.node.trust.get('carol')).toBe(alice.fingerprint);
    expect(peerNamed(f, 'carol').fingerprint).toBe(alice.fingerprint);
    expect(f.peers.withFingerprint(carol.fingerprint)).toBeUndefined();
    expect(peerNamed(f, 'dave').fingerprint).toBeNull();
    expect(f.peers.withFingerprint(dave.fingerprint)).toBeUndefined();
    // A connected peer keeps the key its session runs with.
    expect(peerNamed(f, 'bob').fingerprint).toBe(bob.fingerprint);
    expect(peerNamed(f, 'bob').connected).toBe(true);
  });

  it('refuses the whole reload before changing anything when the file is corrupt', async () => {
    const { f, config, a, b } = await running();
    const [sentA, sentB] = [marker(a), marker(b)];
    const trust = f.node.trust;
    f.file.text = '{ "bob": ';
    const next = cfg({ peers: [alicePeer()], networks: [corp(), dmz()], options: { daemon: { logLevel: 'error' } } });
    await expect(applyReload(next, f.node)).rejects.toThrow(`known-peers file ${KNOWN} is corrupt`);
    expect(f.node.config).toBe(config);
    expect(f.node.trust).toBe(trust);
    expect(trust.get('bob')).toBe(bob.fingerprint);
    expect(f.logger.level).toBe('debug');
    expect(peerNamed(f, 'bob').active).toBe(b.link);
    expect(sentA()).toEqual([]);
    expect(sentB()).toEqual([]);
    expect(f.tuns.devices.has('vpn-dmz')).toBe(false);
    expect(f.tuns.devices.has('vpn-lab')).toBe(true);
  });

  it('reads a new known_peers path into a new store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vibepn-reload-'));
    const path = join(dir, 'known_peers.json');
    writeFileSync(path, JSON.stringify({ carol: carol.fingerprint }));
    const { f } = await running();
    const oldTrust = f.node.trust;
    const next = cfg({ options: { knownPeers: path } });
    expect(await applyReload(next, f.node)).toBe('settings changed: identity.known_peers');
    expect(f.node.trust).not.toBe(oldTrust);
    expect(f.node.trust.path).toBe(path);
    expect(f.node.trust.get('carol')).toBe(carol.fingerprint);
    expect(f.node.trust.get('bob')).toBeUndefined();

    const corrupt = join(dir, 'corrupt.json');
    writeFileSync(corrupt, '[]');
    const current = f.node.trust;
    await expect(applyReload(cfg({ options: { knownPeers: corrupt } }), f.node)).rejects.toThrow('is corrupt');
    expect(f.node.trust).toBe(current);
    expect(f.node.config.identity.knownPeers).toBe(path);
  });

  /**
   * alice is unpinned and not connected; a reload starts reading the known-peers file, and while
   * it reads, our dial to alice completes and her first use starts being written.
   */
  async function firstUseDuringReload(next: (c: Config) => Config) {
    const { f, config } = await running({ peers: [newPeer('alice', ['corp'], { address: '192.0.2.10:51820' })] }, {}, false);
    const peer = peerNamed(f, 'alice');
    peer.manager!.start();
    const conn = f.dials[0]!.conn;
    f.file.holdReads();
    f.file.holdWrites();
    const reloading = applyReload(next(config), f.node);
    await nextTurn();
    conn.certDer = certDer(alice);
    conn.establish();
    await nextTurn();
    f.file.releaseReads();
    const summary = await reloading;
    f.file.releaseWrites();
    await nextTurn();
    return { f, peer, conn, summary };
  }

  // A peer a reload removes while its first use is being written gets no session once the write
  // is done: its connection is closed with a Goodbye.
  it('a peer removed by a reload while its first use is written gets no session', async () => {
    const { f, conn, summary } = await firstUseDuringReload(() => cfg({ peers: [] }));
    expect(summary).toBe('peers removed: alice');
    expect(f.peers.withFingerprint(alice.fingerprint)).toBeUndefined();
    expect(conn.opened).toEqual([]);
  });

  // A first use learned while a reload reads the known-peers file is carried into what it read.
  it('a first use learned while a reload reads the file is not forgotten', async () => {
    const { f, summary } = await firstUseDuringReload((c) => c);
    expect(summary).toBe('no changes');
    expect(JSON.parse(f.file.text!)).toEqual({ alice: alice.fingerprint });
    expect(f.node.trust.get('alice')).toBe(alice.fingerprint);
  });
});
