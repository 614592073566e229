// The daemon: the composition root. It creates the identity, trust store, QUIC endpoint, peers,
// route owner, data plane, control socket and metrics, wires them together, starts and stops
// them, and applies reloads (apply-reload.ts). Every mechanism lives in its own folder; nothing
// is global, so tests run several daemons in one process, on real or in-memory transports and a
// real or fake clock.

import { randomBytes } from 'node:crypto';
import { systemClock, type Clock, type Cancel } from '../clock/clock.js';
import { resolveNetworkAddress } from '../config/address.js';
import { checkPeersAgainstIdentity, ConfigError, loadConfigAsync } from '../config/load.js';
import type { Config, NetworkConfig, PeerConfig } from '../config/types.js';
import { ControlSocketServer } from '../control/socket.js';
import { loadIdentity, type Identity } from '../crypto/identity.js';
import { TrustStore } from '../crypto/trust.js';
import { DataPlane } from '../forward/dataplane.js';
import { shortFingerprint, type Logger } from '../log/logger.js';
import type { ForwardCounters } from '../metrics/forward-counters.js';
import { Metrics } from '../metrics/metrics.js';
import { MetricsServer } from '../metrics/server.js';
import { formatPrefix } from '../netgraph/addr.js';
import { formatHostPort } from '../netgraph/hostport.js';
import { Routes } from '../netgraph/routes.js';
import { Connections } from '../peer/connections.js';
import { PeerManager } from '../peer/manager.js';
import type { Peer } from '../peer/peer.js';
import { PeerMap } from '../peer/peers.js';
import type { Session } from '../peer/session.js';
import { randomNonce } from '../peer/tiebreak.js';
import { DEFAULT_TIMING, type DaemonTiming } from '../peer/timing.js';
import { QuicEndpoint, type QuicEndpointOptions } from '../quic/endpoint.js';
import { APP_SHUTDOWN } from '../quic/errors.js';
import type { TunFactory } from '../tun/types.js';
import { announcementsFor } from './announce.js';
import { applyReload } from './apply-reload.js';
import { ControlApi } from './control-api.js';

export { DEFAULT_TIMING, type DaemonTiming } from '../peer/timing.js';

/** Creates the daemon's one QUIC endpoint (PROTOCOL.md section 1); tests pass an in-memory one. */
export type EndpointFactory = (options: QuicEndpointOptions) => Promise<QuicEndpoint>;

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  /** Creates TUN devices; absent means a control-plane-only daemon (no interfaces, no forwarding). */
  tunFactory?: TunFactory;
  timing?: Partial<DaemonTiming>;
  /** Reads the config again on reload; defaults to loading config.path without blocking. */
  loadConfig?: (path: string) => Config | Promise<Config>;
  /** Called when a client asked the daemon to shut down (`vpnctl goodbye`). */
  onShutdownRequested?: () => void;
  /** Hello nonces; random by default. Tests inject fixed ones to force a tie-break outcome. */
  nonce?: () => bigint;
  /** Process-wide metrics (GC, event loop); off for tests that run many daemons in one process. */
  processMetrics?: boolean;
  clock?: Clock;
  endpointFactory?: EndpointFactory;
}

/** A learned route as text, for tests and diagnostics. */
export interface RouteEntry {
  network: string;
  prefix: string;
  peer: string;
  metric: number;
}

export class Daemon {
  readonly metrics: Metrics;
  private config: Config;
  private readonly clock: Clock;
  private readonly timing: DaemonTiming;
  private readonly log: Logger;
  private readonly peers = new PeerMap();
  private readonly routes: Routes<Peer>;
  private readonly dataPlane: DataPlane<Peer>;
  private identity!: Identity;
  private trust!: TrustStore;
  private endpoint: QuicEndpoint | null = null;
  private connections!: Connections;
  private controlSocket: ControlSocketServer | null = null;
  private metricsServer: MetricsServer | null = null;
  private cancelTicker: Cancel | null = null;
  private startedAt = 0;
  private stopping: Promise<void> | null = null;
  private running = false;

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.log.setLevel(this.config.daemon.logLevel);
    this.clock = options.clock ?? systemClock;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
    this.dataPlane = new DataPlane({ metrics: this.metrics, logger: this.log.child('forward'), tunFactory: options.tunFactory });
    this.routes = new Routes<Peer>({
      knownPeers: () => this.peers.withKeys(),
      metrics: this.metrics,
      logger: this.log.child('netgraph'),
      onChange: (network) => this.dataPlane.routesChanged(network),
    });
    this.metrics.observe({
      peers: () => ({ connected: this.peers.connectedCount(), configured: this.config.peers.length }),
      routeCounts: () => this.routes.counts(),
    });
  }

  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  /** The bound UDP port (useful with listen port 0). */
  get port(): number {
    return this.endpoint?.port ?? 0;
  }

  get metricsPort(): number | null {
    return this.metricsServer?.port ?? null;
  }

  get currentConfig(): Config {
    return this.config;
  }

  async start(): Promise<void> {
    this.startedAt = this.clock.now();
    const { config } = this;
    this.identity = loadIdentity(config.identity.cert, config.identity.key, config.identity.fingerprint);
    const selfPeers = checkPeersAgainstIdentity(config, this.identity.fingerprint);
    if (selfPeers.length > 0) throw new ConfigError(selfPeers);
    this.trust = new TrustStore(config.identity.knownPeers);
    this.trust.reload(); // a corrupt known-peers file is a start-up error, not a surprise at first handshake
    try {
      for (const net of config.networks.values()) this.addNetwork(net);
      for (const peer of config.peers) this.addPeer(peer);
      this.endpoint = await (this.options.endpointFactory ?? QuicEndpoint.listen)({
        listen: config.daemon.listen,
        certPem: this.identity.certPem,
        keyPem: this.identity.keyPem,
        idleTimeoutMs: this.timing.idleTimeoutMs,
        logger: this.log.child('quic'),
      });
      this.connections = this.newConnections(this.endpoint);
      this.endpoint.onConnection = (conn) => this.connections.accept(conn);
      if (config.daemon.metricsListen !== null) {
        this.metricsServer = new MetricsServer(config.daemon.metricsListen, this.metrics, () => this.running || 'daemon is starting or stopping', this.log.child('metrics'));
        await this.metricsServer.start();
      }
      const api = new ControlApi(this.controlState(), {
        reload: () => this.reload(),
        shutdown: () => (this.options.onShutdownRequested ? this.options.onShutdownRequested() : void this.stop('vpnctl goodbye')),
      });
      this.controlSocket = new ControlSocketServer(config.daemon.controlSocket, (request) => api.handle(request), this.log.child('control/socket'));
      await this.controlSocket.start();
    } catch (error) {
      await this.teardown();
      throw error;
    }
    for (const peer of this.peers.configured()) peer.manager?.start();
    this.cancelTicker = this.clock.every(this.timing.tickMs, () => this.connections.tick());
    this.running = true;
    const listen = formatHostPort(config.daemon.listen.host, config.daemon.listen.port);
    this.log.child('daemon').info(
      `${this.identity.name} (${shortFingerprint(this.identity.fingerprint)}) listening on udp ${listen} (port ${this.port}), ` +
        `${config.networks.size} network(s), ${config.peers.length} peer(s); control socket ${config.daemon.controlSocket}`,
    );
  }

  /** Re-reads the config and applies the difference; an invalid file is refused and the old config keeps running. */
  async reload(): Promise<string> {
    try {
      const next = await (this.options.loadConfig ?? loadConfigAsync)(this.config.path);
      const selfPeers = checkPeersAgainstIdentity(next, this.identity.fingerprint);
      if (selfPeers.length > 0) throw new ConfigError(selfPeers);
      return applyReload(next, this.reloadTarget());
    } catch (error) {
      this.log.child('daemon').error(`reload refused, keeping the running config: ${(error as Error).message}`);
      throw error;
    }
  }

  /** Goodbye to every peer, close everything, remove interfaces and the socket. Idempotent. */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  // ---- for tests and diagnostics ----------------------------------------------------------

  routeList(): RouteEntry[] {
    return this.routes.list().map((r) => ({ network: r.network, prefix: formatPrefix(r.prefix), peer: r.peer.id, metric: r.metric }));
  }

  /** Live connections that carry a session (duplicates included until the tie-break closes them). */
  connectionCount(): number {
    return this.connections.connectionCount();
  }

  /** The forwarding counters of one network (also exported as metrics). */
  dataPlaneCounters(network: string): ForwardCounters | undefined {
    return this.dataPlane.counters(network);
  }

  /** Routes this node put into a network's TUN for subnets other nodes export. */
  kernelRoutes(network: string): string[] {
    this.dataPlane.syncRoutes();
    return this.dataPlane.kernelRoutes(network);
  }

  /** The active session with a peer, if connected. */
  sessionWith(fingerprint: string): Session | undefined {
    return this.peers.withFingerprint(fingerprint)?.session ?? undefined;
  }

  // ---- composition ------------------------------------------------------------------------

  private newConnections(endpoint: QuicEndpoint): Connections {
    return new Connections({
      dial: (to) => endpoint.connect(to),
      peers: this.peers,
      config: () => this.config,
      trust: () => this.trust,
      localFingerprint: this.identity.fingerprint,
      clock: this.clock,
      timing: this.timing,
      metrics: this.metrics,
      logger: this.log,
      nonce: this.options.nonce ?? (() => randomNonce(randomBytes)),
      announcementsFor: (peer) => announcementsFor(this.config, peer.config, this.identity.fingerprint),
      routes: this.routes,
      acceptStream: (peer, stream) => this.dataPlane.acceptStream(peer, stream),
    });
  }

  private addNetwork(net: NetworkConfig): void {
    const address = resolveNetworkAddress(net, this.identity.fingerprint);
    const table = this.routes.addNetwork(net.name, net.prefix, address);
    this.metrics.declareNetwork(net.name);
    this.dataPlane.addNetwork(net, address, table);
  }

  private removeNetwork(name: string): void {
    this.dataPlane.removeNetwork(name);
    this.routes.removeNetwork(name);
  }

  private addPeer(config: PeerConfig): void {
    let learned: string | undefined;
    try {
      learned = this.trust.get(config.name);
    } catch {
      learned = undefined;
    }
    const peer = this.peers.addConfigured(config, learned);
    if (!config.address) return;
    peer.manager = new PeerManager(config.name, {
      dial: () => this.connections.dial(peer),
      isConnected: () => peer.connected,
      clock: this.clock,
      logger: this.log.child('peer/manager'),
      backoff: this.timing.backoff,
      healthyAfterMs: this.timing.healthyAfterMs,
    });
  }

  private removePeer(peer: Peer, reason: string): void {
    peer.manager?.stop();
    this.peers.remove(peer);
    void this.connections.dropPeer(peer, reason);
  }

  private controlState(): ConstructorParameters<typeof ControlApi>[0] {
    return {
      name: this.identity.name,
      fingerprint: this.identity.fingerprint,
      startedAt: this.startedAt,
      port: this.port,
      clock: this.clock,
      config: () => this.config,
      trust: () => this.trust,
      peers: this.peers,
      routes: this.routes,
      interfaceName: (network) => this.dataPlane.interfaceName(network),
    };
  }

  private reloadTarget(): Parameters<typeof applyReload>[1] {
    return {
      log: this.log,
      localFingerprint: this.identity.fingerprint,
      config: () => this.config,
      setConfig: (next) => (this.config = next),
      trust: () => this.trust,
      setTrust: (trust) => (this.trust = trust),
      peers: this.peers,
      routes: this.routes,
      addNetwork: (net) => this.addNetwork(net),
      removeNetwork: (name) => this.removeNetwork(name),
      addPeer: (peer) => {
        this.addPeer(peer);
        this.peers.byConfigName(peer.name)?.manager?.start();
      },
      removePeer: (peer, reason) => this.removePeer(peer, reason),
    };
  }

  // ---- shutdown ---------------------------------------------------------------------------

  private async shutdown(reason: string): Promise<void> {
    this.running = false;
    this.log.child('daemon').info(`shutting down (${reason}): saying goodbye to ${this.peers.connectedCount()} peer(s)`);
    for (const peer of this.peers.configured()) peer.manager?.stop();
    if (this.connections) await this.connections.closeAll(APP_SHUTDOWN, 'shutting down');
    await this.teardown();
  }

  private async teardown(): Promise<void> {
    this.cancelTicker?.();
    this.cancelTicker = null;
    if (this.endpoint) await this.endpoint.close().catch(() => undefined);
    await this.controlSocket?.close().catch(() => undefined);
    await this.metricsServer?.close().catch(() => undefined);
    this.dataPlane.close();
  }
}
