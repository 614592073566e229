// The running node: the config and trust store it runs with, its peers, routes and data plane,
// and the few operations that apply config to them. Start-up and reload (apply-reload.ts) both
// go through addNetwork/addPeer/removeNetwork/removePeer; the control API reads it as it is.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import { resolveNetworkAddress } from '../config/address.js';
import { CAPABILITY_NAT_TRAVERSAL, CAPABILITY_RELAY, CAPABILITY_ROSTER, CAPABILITY_TCP_SUPER_SEGMENTS } from '../control/messages.js';
import type { Config, NetworkConfig, PeerConfig } from '../config/types.js';
import type { Identity } from '../crypto/identity.js';
import type { TrustStore } from '../crypto/trust.js';
import type { DataPlane } from '../forward/dataplane.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { HostPort } from '../netgraph/hostport.js';
import type { Routes } from '../netgraph/routes.js';
import { Connections } from '../peer/connections.js';
import { Handshakes } from '../peer/handshake.js';
import { Introductions } from '../peer/introductions.js';
import { PeerManager } from '../peer/manager.js';
import { PathFinder } from '../peer/path-finder.js';
import type { InviteRedeemer } from '../peer/redemption.js';
import type { RosterMessage } from '../peer/session.js';
import type { Link, Peer } from '../peer/peer.js';
import { RelayForwarder, type RelayPeer } from '../relay/forwarder.js';
import type { VirtualPaths } from '../relay/relayed-socket.js';
import { VIRTUAL_PORT } from '../quic/virtual-path.js';
import type { PeerMap } from '../peer/peers.js';
import { randomNonce } from '../peer/tiebreak.js';
import type { DaemonTiming } from '../peer/timing.js';
import type { QuicConnection } from '../quic/connection.js';
import { announcementsFor } from './announce.js';
import type { ReloadTarget } from './apply-reload.js';
import type { ControlState } from './control-api.js';
import { AddressWatch, systemAddresses, type LocalAddresses } from './local-addresses.js';

export interface NodeParts {
  identity: Identity;
  config: Config;
  trust: TrustStore;
  clock: Clock;
  timing: DaemonTiming;
  metrics: Metrics;
  log: Logger;
  peers: PeerMap;
  routes: Routes<Peer>;
  dataPlane: DataPlane<Peer>;
  nonce?: () => bigint;
  /** This host's addresses, watched for roaming; the OS's by default. */
  localAddresses?: LocalAddresses;
  /** Opens a QUIC connection from the daemon's one endpoint. */
  dial(to: HostPort): QuicConnection;
  /** The endpoint's virtual paths through relays (src/relay/relayed-socket.ts). */
  virtualPaths: VirtualPaths;
  /** Signed rosters and invites (src/daemon/membership-wiring.ts); absent in tests of other parts. */
  membership?: NodeMembership;
}

/** What the node's sessions and handshakes hand to membership, and what they ask of it. */
export interface NodeMembership {
  capabilitiesHeard(link: Link): void;
  roster(link: Link, msg: RosterMessage): void;
  tick(): void;
  readonly redeemer: InviteRedeemer;
  preamble(peer: Peer): Uint8Array | null;
  refusalHeard(code: string): void;
}

export class Node implements ReloadTarget, ControlState {
  config: Config;
  trust: TrustStore;
  readonly connections: Connections;
  readonly handshakes: Handshakes;
  readonly peers: PeerMap;
  readonly routes: Routes<Peer>;
  readonly log: Logger;
  readonly clock: Clock;
  readonly startedAt: number;
  port = 0;
  private readonly addresses: AddressWatch;
  private readonly introductions: Introductions;
  private readonly relayViews = new WeakMap<Link, RelayPeer>();

  constructor(private readonly parts: NodeParts) {
    this.addresses = new AddressWatch(parts.localAddresses ?? systemAddresses, (name) => parts.dataPlane.ownsInterface(name));
    this.config = parts.config;
    this.trust = parts.trust;
    this.peers = parts.peers;
    this.routes = parts.routes;
    this.log = parts.log;
    this.clock = parts.clock;
    this.startedAt = parts.clock.now();
    const { identity, timing, metrics, dataPlane } = parts;
    const acceptStream = (peer: Peer, stream: Parameters<DataPlane<Peer>['acceptStream']>[1]): void => dataPlane.acceptStream(peer, stream);
    this.connections = new Connections({
      peers: this.peers,
      localFingerprint: identity.fingerprint,
      localName: identity.name,
      clock: parts.clock,
      timing,
      metrics,
      logger: parts.log,
      nonce: parts.nonce ?? (() => randomNonce(randomBytes)),
      announcementsFor: (peer) => announcementsFor(this.config, peer.config, identity.fingerprint),
      routes: this.routes,
      acceptStream,
      // Offloads are fixed at start (the TUNs are opened one way or the other); relay follows reloads.
      capabilities: () => [
        ...(parts.config.daemon.offload ? [CAPABILITY_TCP_SUPER_SEGMENTS] : []),
        CAPABILITY_NAT_TRAVERSAL,
        ...(this.config.daemon.relay ? [CAPABILITY_RELAY] : []),
        CAPABILITY_ROSTER,
      ],
      capabilitiesHeard: (link) => parts.membership?.capabilitiesHeard(link),
      roster: (link, msg) => parts.membership?.roster(link, msg),
      refusalHeard: (code) => parts.membership?.refusalHeard(code),
      datagram: (link, data) => forwarder.receive(this.relayView(link), data),
      introduce: (link, fingerprint) => this.introductions.requested(link, fingerprint),
      endpoint: (link, fingerprint, address) => {
        const target = this.peers.withFingerprint(fingerprint);
        if (target?.pathFinder) target.pathFinder.endpoint(link.peer, address);
        else this.log.child('peer/paths').debug(`${link.peer.label} sent the address of ${fingerprint.slice(0, 8)}…, not a peer we look for; ignored`);
      },
    });
    this.introductions = new Introductions({ peers: this.peers, clock: parts.clock, logger: parts.log.child('peer/paths') });
    const forwarder = new RelayForwarder({
      enabled: () => this.config.daemon.relay,
      peer: (fingerprint) => {
        const link = this.peers.withFingerprint(fingerprint)?.active;
        return link ? this.relayView(link) : null;
      },
      paths: parts.virtualPaths,
      counters: metrics.relay,
    });
    this.handshakes = new Handshakes({
      dial: parts.dial,
      peers: this.peers,
      config: () => this.config,
      trust: () => this.trust,
      localFingerprint: identity.fingerprint,
      localName: identity.name,
      clock: parts.clock,
      timing,
      metrics,
      logger: parts.log,
      connections: this.connections,
      redeemer: parts.membership?.redeemer,
      preamble: (peer) => parts.membership?.preamble(peer) ?? null,
    });
  }

  get name(): string {
    return this.parts.identity.name;
  }

  get fingerprint(): string {
    return this.parts.identity.fingerprint;
  }

  get localFingerprint(): string {
    return this.parts.identity.fingerprint;
  }

  interfaceName(network: string): string | undefined {
    return this.parts.dataPlane.interfaceName(network);
  }

  addNetwork(net: NetworkConfig): void {
    const address = resolveNetworkAddress(net, this.fingerprint);
    const table = this.routes.addNetwork(net.name, net.prefix, address);
    this.parts.metrics.declareNetwork(net.name);
    this.parts.dataPlane.addNetwork(net, address, table);
  }

  removeNetwork(name: string): void {
    this.parts.dataPlane.removeNetwork(name);
    this.routes.removeNetwork(name);
  }

  /** Adds a configured peer with what the trust store learned for it, and its redial schedule. */
  addPeer(config: PeerConfig): Peer {
    let learned: string | undefined;
    try {
      learned = this.trust.get(config.name);
    } catch {
      learned = undefined;
    }
    const peer = this.peers.addConfigured(config, learned);
    if (config.address) {
      const { timing } = this.parts;
      peer.manager = new PeerManager(config.name, {
        dial: () => this.handshakes.dial(peer),
        // An original node is connected for our purposes only over a connection we dialed.
        isConnected: () => (peer.original ? peer.active?.conn.direction === 'outbound' : peer.connected),
        clock: this.clock,
        logger: this.log.child('peer/manager'),
        backoff: timing.backoff,
        healthyAfterMs: timing.healthyAfterMs,
      });
    }
    // An original node takes no introductions and relays nothing; its address is all there is.
    if (!config.original) peer.pathFinder = this.pathFinderFor(peer);
    return peer;
  }

  private pathFinderFor(peer: Peer): PathFinder {
    return new PathFinder(peer, {
      clock: this.clock,
      logger: this.log.child('peer/paths'),
      introducers: () =>
        this.peers.configured().filter((p) => p !== peer && p.session?.state === 'open' && p.session.peerCapabilities.natTraversal && !p.active!.relayed),
      ask: (introducer) => introducer.session?.send({ type: 'introduce', fingerprint: peer.id }),
      dial: (path) => this.handshakes.dial(peer, path),
      relayOf: (link) => this.relayOf(link),
      relayAddress: (relay) => {
        const path = this.parts.virtualPaths.path(relay.id, peer.id);
        return path ? { host: path.host, port: VIRTUAL_PORT } : null;
      },
    });
  }

  /** How the relay code sees a link: its session, what the peer offered, its datagrams. */
  private relayView(link: Link): RelayPeer {
    let view = this.relayViews.get(link);
    if (!view) {
      view = {
        fingerprint: link.peer.id,
        get open() {
          return link.session?.state === 'open';
        },
        get natTraversal() {
          return link.session?.peerCapabilities.natTraversal ?? false;
        },
        get relays() {
          return link.session?.peerCapabilities.relay ?? false;
        },
        sendDatagram: (data) => link.conn.sendDatagram(data),
      };
      this.relayViews.set(link, view);
    }
    return view;
  }

  /** The relay carrying a relayed link, for `vpnctl peers`. */
  relayOf(link: Link): Peer | undefined {
    if (!link.relayed) return undefined;
    const path = this.parts.virtualPaths.pathOf(link.conn.remoteEndpoint().host);
    return path ? this.peers.withFingerprint(path.relay) : undefined;
  }

  /** Once a tick (1 s): liveness of every session, and whether this host moved. */
  tick(): void {
    if (this.addresses.changed()) {
      this.log.child('daemon').info('local addresses changed; re-establishing paths to peers');
      this.addressesChanged();
    }
    this.connections.tick();
    for (const peer of this.peers.configured()) peer.pathFinder?.tick();
    this.parts.membership?.tick();
  }

  /**
   * This host's addresses changed (DHCP renewal, a laptop on another network). A connection we
   * dialed follows us by QUIC migration once the peer hears from the new address, so it gets a
   * packet at once; one we accepted cannot migrate, so the peer is dialed from the new address
   * (the peer's liveness probe then retires the stale connection); peers that are down are
   * dialed now instead of at the end of their backoff.
   */
  private addressesChanged(): void {
    for (const peer of this.peers.configured()) {
      const link = peer.active;
      if (!link) peer.manager?.retryNow();
      else if (link.conn.direction === 'outbound') link.conn.ping();
      else if (peer.config?.address) this.handshakes.dial(peer);
    }
    for (const peer of this.peers.unknowns()) {
      if (peer.active?.conn.direction === 'outbound') peer.active.conn.ping();
    }
  }

  capabilitiesChanged(): void {
    this.connections.resendCapabilities();
  }

  /** Stops dialing a peer and says Goodbye on its connections. */
  removePeer(peer: Peer, reason: string): void {
    peer.manager?.stop();
    this.peers.remove(peer);
    void this.connections.dropPeer(peer, reason);
  }
}
