// The daemon: the composition root (Nebula's main.go + control.go). It creates the identity,
// trust store, QUIC endpoint, peers, route owner, data plane, control socket and metrics, wires
// them into a Node, starts and stops them, and hands reloads to apply-reload.ts. Every mechanism
// lives in its own folder; nothing is global, so tests run several daemons in one process, on
// real or in-memory transports and a real or fake clock.

import { systemClock, type Clock, type Cancel } from '../clock/clock.js';
import { checkPeersAgainstIdentity, ConfigError, loadConfigAsync } from '../config/load.js';
import type { Config } from '../config/types.js';
import { ControlSocketServer } from '../control/socket.js';
import { groupId, kernelCallerUid } from '../control/caller.js';
import { readFile } from 'node:fs/promises';
import { loadIdentity } from '../crypto/identity.js';
import { TrustStore } from '../crypto/trust.js';
import { DataPlane } from '../forward/dataplane.js';
import { shortFingerprint, type Logger } from '../log/logger.js';
import type { ForwardCounters } from '../metrics/forward-counters.js';
import { Metrics } from '../metrics/metrics.js';
import { MetricsServer } from '../metrics/server.js';
import { formatPrefix } from '../netgraph/addr.js';
import { formatHostPort } from '../netgraph/hostport.js';
import { Routes } from '../netgraph/routes.js';
import type { Peer } from '../peer/peer.js';
import { PeerMap } from '../peer/peers.js';
import type { Session } from '../peer/session.js';
import { DEFAULT_TIMING, type DaemonTiming } from '../peer/timing.js';
import { QuicEndpoint, type QuicEndpointOptions } from '../quic/endpoint.js';
import { VirtualPaths } from '../relay/relayed-socket.js';
import { APP_SHUTDOWN } from '../quic/errors.js';
import type { TunFactory } from '../tun/types.js';
import { applyReload } from './apply-reload.js';
import { ControlApi } from './control-api.js';
import type { LocalAddresses } from './local-addresses.js';
import { MembershipWiring } from './membership-wiring.js';
import { Node } from './node.js';

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
  /** This host's addresses, watched for roaming; the OS's by default. */
  localAddresses?: LocalAddresses;
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
  private readonly clock: Clock;
  private readonly timing: DaemonTiming;
  private readonly log: Logger;
  private readonly peers = new PeerMap();
  private readonly routes: Routes<Peer>;
  private readonly dataPlane: DataPlane<Peer>;
  private node: Node | null = null;
  private endpoint: QuicEndpoint | null = null;
  /** The latest reload, when it was refused: `vpnctl status` shows it until one succeeds. */
  private refusedReload: { at: number; error: string } | null = null;
  private controlSocket: ControlSocketServer | null = null;
  private metricsServer: MetricsServer | null = null;
  private cancelTicker: Cancel | null = null;
  private stopping: Promise<void> | null = null;
  private running = false;
  private membership: MembershipWiring | null = null;
  /** Reloads and roster changes, one at a time, each on the state the one before left. */
  private applying: Promise<unknown> = Promise.resolve();
  private rosterApplyQueued: Promise<void> | null = null;
  private rosterApplyCauses: string[] = [];

  constructor(private readonly options: DaemonOptions) {
    this.log = options.logger;
    this.log.setLevel(options.config.daemon.logLevel);
    this.clock = options.clock ?? systemClock;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
    const forwarding = { tunFactory: options.tunFactory, offload: options.config.daemon.offload };
    this.dataPlane = new DataPlane({ metrics: this.metrics, logger: this.log.child('forward'), ...forwarding });
    this.routes = new Routes<Peer>({
      knownPeers: () => this.peers.withKeys(),
      metrics: this.metrics,
      logger: this.log.child('netgraph'),
      onChange: (network) => this.dataPlane.routesChanged(network),
      now: () => this.clock.now(),
    });
    this.metrics.observe({
      peers: () => ({ connected: this.peers.connectedCount(), configured: this.currentConfig.peers.length }),
      routeCounts: () => this.routes.counts(),
      // Configured peers first, so that they keep their own series when unknown ones are many.
      peerTraffic: () =>
        [...this.peers.configured(), ...this.peers.unknowns()].flatMap((peer) => {
          const stats = peer.active?.conn.stats();
          return stats ? [{ peer: peer.name, rx: stats.bytesReceived, tx: stats.bytesSent }] : [];
        }),
    });
  }

  get fingerprint(): string {
    return this.started.fingerprint;
  }

  /** The bound UDP port (useful with listen port 0). */
  get port(): number {
    return this.endpoint?.port ?? 0;
  }

  get metricsPort(): number | null {
    return this.metricsServer?.port ?? null;
  }

  get currentConfig(): Config {
    return this.node?.config ?? this.options.config;
  }

  async start(): Promise<void> {
    const { config } = this.options;
    const identity = loadIdentity(config.identity.cert, config.identity.key, config.identity.fingerprint);
    refuseSelfPeers(config, identity.fingerprint);
    const trust = new TrustStore(config.identity.knownPeers);
    await trust.reload(); // a corrupt known-peers file is a start-up error, not a surprise at first handshake
    const virtualPaths = new VirtualPaths();
    const membership = new MembershipWiring({
      config,
      identity,
      clock: this.clock,
      logger: this.log,
      counters: this.metrics.membership,
      peers: this.peers,
      apply: (cause) => this.queueRosterApply(cause),
    });
    this.membership = membership;
    // The file's peers and the rosters' members: what the node runs (src/membership/roster-peers.ts).
    const effective = await membership.start();
    const node = new Node({
      identity,
      config: effective,
      membership,
      trust,
      clock: this.clock,
      timing: this.timing,
      metrics: this.metrics,
      log: this.log,
      peers: this.peers,
      routes: this.routes,
      dataPlane: this.dataPlane,
      nonce: this.options.nonce,
      localAddresses: this.options.localAddresses,
      dial: (to) => this.endpoint!.connect(to),
      virtualPaths,
    });
    this.node = node;
    try {
      for (const net of config.networks.values()) node.addNetwork(net);
      for (const peer of effective.peers) node.addPeer(peer);
      this.endpoint = await (this.options.endpointFactory ?? QuicEndpoint.listen)({
        listen: config.daemon.listen,
        certPem: identity.certPem,
        keyPem: identity.keyPem,
        idleTimeoutMs: this.timing.idleTimeoutMs,
        logger: this.log.child('quic'),
        wrapSocket: (socket) => virtualPaths.wrap(socket),
      });
      node.port = this.endpoint.port;
      this.endpoint.onConnection = (conn) => node.handshakes.accept(conn);
      if (config.daemon.metricsListen !== null) {
        this.metricsServer = new MetricsServer(config.daemon.metricsListen, this.metrics, () => this.running || 'daemon is starting or stopping', this.log.child('metrics'));
        await this.metricsServer.start();
      }
      const api = new ControlApi(node, {
        reload: () => this.reload(),
        refusedReload: () => this.refusedReload,
        noTun: this.options.tunFactory === undefined,
        membership: { members: (network) => membership.members(network), revoke: (name, network) => membership.revoke(name, network) },
        shutdown: () => (this.options.onShutdownRequested ? this.options.onShutdownRequested() : void this.stop('vpnctl goodbye')),
      });
      this.controlSocket = new ControlSocketServer(
        config.daemon.controlSocket,
        (request) => api.handle(request),
        this.log.child('control/socket'),
        config.daemon.socketGroup ? { gid: await socketGroupId(config.daemon.socketGroup), callerUid: kernelCallerUid(), daemonUid: process.getuid?.() ?? 0 } : null,
      );
      await this.controlSocket.start();
    } catch (error) {
      await this.teardown();
      throw error;
    }
    for (const peer of this.peers.configured()) peer.manager?.start();
    this.cancelTicker = this.clock.every(this.timing.tickMs, () => node.tick());
    this.running = true;
    const listen = formatHostPort(config.daemon.listen.host, config.daemon.listen.port);
    this.log.child('daemon').info(
      `${identity.name} (${shortFingerprint(identity.fingerprint)}) listening on udp ${listen} (port ${this.port}), ` +
        `${config.networks.size} network(s), ${effective.peers.length} peer(s); control socket ${config.daemon.controlSocket}`,
    );
  }

  /** Re-reads the config and applies the difference; an invalid file is refused and the old config keeps running. */
  async reload(): Promise<string> {
    const node = this.started;
    return this.serialized(async () => {
      try {
        const next = await (this.options.loadConfig ?? loadConfigAsync)(node.config.path);
        refuseSelfPeers(next, node.fingerprint);
        const effective = await this.membership!.reload(next);
        const summary = await applyReload(effective, node);
        this.refusedReload = null;
        return summary;
      } catch (error) {
        this.log.child('daemon').error(`reload refused, keeping the running config: ${(error as Error).message}`);
        this.refusedReload = { at: this.clock.now(), error: (error as Error).message };
        throw error;
      }
    });
  }

  /**
   * A roster changed. One apply waiting in the queue covers every change made before it starts
   * (it reads the rosters then), so a burst of records (a new member's first sync) costs one.
   */
  private queueRosterApply(cause: string): Promise<void> {
    if (this.rosterApplyQueued) {
      this.rosterApplyCauses.push(cause);
      return this.rosterApplyQueued;
    }
    this.rosterApplyCauses = [cause];
    const queued = this.serialized(() => {
      this.rosterApplyQueued = null;
      return this.applyRoster(this.rosterApplyCauses.join(', '));
    });
    this.rosterApplyQueued = queued;
    return queued;
  }

  /** The node runs the file's peers and the rosters' members as they are now. */
  private async applyRoster(cause: string): Promise<void> {
    if (!this.node || this.stopping) return;
    try {
      await applyReload(this.membership!.membership.effective(), this.node, cause);
    } catch (error) {
      this.log.child('membership').error(`${cause}: not applied: ${(error as Error).message}`);
    }
  }

  private serialized<T>(op: () => Promise<T>): Promise<T> {
    const result = this.applying.then(op);
    this.applying = result.catch(() => undefined);
    return result;
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
    return this.started.connections.connectionCount();
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

  // ---- shutdown ---------------------------------------------------------------------------
  private get started(): Node {
    if (!this.node) throw new Error('the daemon has not been started');
    return this.node;
  }

  private async shutdown(reason: string): Promise<void> {
    this.running = false;
    this.log.child('daemon').info(`shutting down (${reason}): saying goodbye to ${this.peers.connectedCount()} peer(s)`);
    for (const peer of this.peers.configured()) peer.manager?.stop();
    if (this.node) await this.node.connections.closeAll(APP_SHUTDOWN, 'shutting down');
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

/** A [[peers]] entry with this node's own fingerprint would make it dial itself forever. */
function refuseSelfPeers(config: Config, fingerprint: string): void {
  const problems = checkPeersAgainstIdentity(config, fingerprint);
  if (problems.length > 0) throw new ConfigError(problems);
}

/** daemon.socket_group's gid, or a start-up error that names the fix. */
async function socketGroupId(group: string): Promise<number> {
  let etcGroup = '';
  try {
    etcGroup = await readFile('/etc/group', 'utf8');
  } catch {
    // No group file: only a number can name the group.
  }
  const gid = groupId(group, etcGroup);
  if (gid === null) throw new Error(`daemon.socket_group: there is no group '${group}' on this machine (create it with \`groupadd ${group}\`, or set socket_group = "" to keep the control socket root-only)`);
  return gid;
}

