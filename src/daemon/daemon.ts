// The daemon: composes identity, trust store, QUIC endpoint, peer sessions and managers, route
// tables, data plane, control socket and metrics. Everything it uses is created here or passed
// in; nothing is global, so tests run several daemons in one process.

import { randomBytes } from 'node:crypto';
import { loadConfig } from '../config/load.js';
import type { Config, NetworkConfig, PeerConfig } from '../config/types.js';
import { resolveNetworkAddress } from '../config/address.js';
import { loadIdentity, type Identity } from '../crypto/identity.js';
import { TrustStore } from '../crypto/trust.js';
import { ControlSocketServer, type ControlRequest } from '../control/socket.js';
import type { RouteAnnouncement } from '../control/messages.js';
import { shortFingerprint, type Logger } from '../log/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { MetricsServer } from '../metrics/server.js';
import { NetGraph } from '../netgraph/graph.js';
import { checkAnnouncedPrefix, type PolicyRefusal, type PolicyResult } from '../netgraph/policy.js';
import { formatPrefix, parseCidr, type Prefix } from '../netgraph/addr.js';
import { admitInbound, admitOutbound, type Admission } from '../peer/admission.js';
import { PeerManager } from '../peer/manager.js';
import { PeerRegistry } from '../peer/registry.js';
import { Session } from '../peer/session.js';
import { randomNonce } from '../peer/tiebreak.js';
import type { BackoffOptions } from '../peer/backoff.js';
import { QuicEndpoint } from '../quic/endpoint.js';
import type { QuicCloseInfo, QuicConnection } from '../quic/connection.js';
import type { QuicStream } from '../quic/stream.js';
import { APP_DEAD_PEER, APP_DUPLICATE, APP_GOODBYE, APP_NO_ERROR, APP_PROTOCOL_VIOLATION, APP_SHUTDOWN, APP_UNTRUSTED, describeAppError } from '../quic/errors.js';
import { DataPlane } from '../forward/dataplane.js';
import type { TunFactory } from '../tun/types.js';
import { announcementsFor, diffAnnouncements, ownHostRoute, peerInNetwork } from './announce.js';
import { describePlan, planReload } from './reload.js';
import type { RouteRejectReason } from '../metrics/metrics.js';
import type { ForwardCounters } from '../metrics/forward-counters.js';

export interface DaemonTiming {
  keepaliveMs: number;
  deadAfterMs: number;
  /** How often liveness is checked. */
  tickMs: number;
  /** QUIC idle timeout; longer than deadAfterMs so the protocol's own rule decides. */
  idleTimeoutMs: number;
  /**
   * A dial not established by then is abandoned and retried on the backoff schedule. Without it a
   * dead peer would hold each attempt until the idle timeout, far beyond the backoff's 1 s start.
   */
  handshakeTimeoutMs: number;
  backoff: BackoffOptions;
  healthyAfterMs: number;
}

export const DEFAULT_TIMING: DaemonTiming = {
  keepaliveMs: 10_000,
  deadAfterMs: 30_000,
  tickMs: 1000,
  idleTimeoutMs: 45_000,
  handshakeTimeoutMs: 5000,
  backoff: {},
  healthyAfterMs: 10_000,
};

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  /** Creates TUN devices; absent means a control-plane-only daemon (no interfaces, no forwarding). */
  tunFactory?: TunFactory;
  timing?: Partial<DaemonTiming>;
  /** Reads the config again on reload; defaults to loading config.path. */
  loadConfig?: (path: string) => Config;
  /** Called when a client asked the daemon to shut down (`vpnctl goodbye`). */
  onShutdownRequested?: () => void;
  /** Hello nonces; random by default. Tests inject fixed ones to force a tie-break outcome. */
  nonce?: () => bigint;
  /** Process-wide metrics (GC, event loop); off for tests that run many daemons in one process. */
  processMetrics?: boolean;
}

/** A live connection and, once its control stream exists, its session. */
interface Link {
  conn: QuicConnection;
  admission: Extract<Admission, { ok: true }>;
  session: Session | null;
  control: QuicStream | null;
}

const ROUTE_REJECT: Record<PolicyRefusal, RouteRejectReason> = {
  'unknown-network': 'unknown_network',
  'peer-not-in-network': 'peer_not_in_network',
  'bad-prefix': 'bad_prefix',
  'outside-policy': 'outside_policy',
};

export class Daemon {
  readonly metrics: Metrics;
  readonly graph = new NetGraph();
  private config: Config;
  private identity!: Identity;
  private trust!: TrustStore;
  private endpoint!: QuicEndpoint;
  private dataPlane!: DataPlane;
  private controlSocket: ControlSocketServer | null = null;
  private metricsServer: MetricsServer | null = null;
  private readonly registry = new PeerRegistry<Session>();
  private readonly links = new Set<Link>();
  private readonly linkBySession = new Map<Session, Link>();
  private readonly managers = new Map<string, PeerManager>();
  /** Peers whose active session ended while another connection with them awaited its Hello. */
  private readonly handovers = new Map<string, Session>();
  /** Last time each peer (by fingerprint) sent anything, kept after disconnect for `vpnctl peers`. */
  private readonly lastSeen = new Map<string, number>();
  private readonly timing: DaemonTiming;
  private readonly log: Logger;
  private ticker: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private stopping: Promise<void> | null = null;
  private running = false;

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.log.setLevel(this.config.daemon.logLevel);
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
  }

  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  /** The bound UDP port (useful with listen port 0). */
  get port(): number {
    return this.endpoint.port;
  }

  get metricsPort(): number | null {
    return this.metricsServer?.port ?? null;
  }

  get currentConfig(): Config {
    return this.config;
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    const { config } = this;
    this.identity = loadIdentity(config.identity.cert, config.identity.key, config.identity.fingerprint);
    this.trust = new TrustStore(config.identity.knownPeers);
    this.trust.load(); // a corrupt known-peers file is a start-up error, not a surprise at first handshake
    this.dataPlane = new DataPlane({
      graph: this.graph,
      metrics: this.metrics,
      logger: this.log.child('forward'),
      tunFactory: this.options.tunFactory,
      peerStream: (fingerprint) => this.dataStreamFor(fingerprint),
    });
    try {
      for (const net of config.networks.values()) this.addNetwork(net);
      this.endpoint = await QuicEndpoint.listen({
        listen: config.daemon.listen,
        certPem: this.identity.certPem,
        keyPem: this.identity.keyPem,
        idleTimeoutMs: this.timing.idleTimeoutMs,
        logger: this.log.child('quic'),
      });
      this.endpoint.onConnection = (conn) => this.acceptInbound(conn);
      if (config.daemon.metricsListen !== '') {
        this.metricsServer = new MetricsServer(
          config.daemon.metricsListen,
          this.metrics,
          () => (this.running ? true : 'daemon is starting or stopping'),
          this.log.child('metrics'),
        );
        await this.metricsServer.start();
      }
      this.controlSocket = new ControlSocketServer(config.daemon.controlSocket, (req) => this.handleControl(req), this.log.child('control/socket'));
      await this.controlSocket.start();
    } catch (error) {
      await this.teardown();
      throw error;
    }
    for (const peer of config.peers) this.startManager(peer);
    this.ticker = setInterval(() => this.tick(), this.timing.tickMs);
    this.ticker.unref();
    this.running = true;
    this.updatePeerMetrics();
    this.log.child('daemon').info(
      `${this.identity.name} (${shortFingerprint(this.identity.fingerprint)}) listening on udp ${config.daemon.listen} (port ${this.port}), ` +
        `${config.networks.size} network(s), ${config.peers.length} peer(s); control socket ${config.daemon.controlSocket}`,
    );
  }

  // ---- networks -------------------------------------------------------------------------

  private addNetwork(net: NetworkConfig): void {
    this.graph.ensure(net.name);
    this.metrics.declareNetwork(net.name);
    this.dataPlane.addNetwork(net, resolveNetworkAddress(net, this.identity.fingerprint));
  }

  private removeNetwork(name: string): void {
    this.dataPlane.removeNetwork(name);
    this.graph.drop(name);
    this.metrics.setRoutes(name, 0);
  }

  // ---- connections ----------------------------------------------------------------------

  private startManager(peer: PeerConfig): void {
    if (peer.address === '') return;
    const manager = new PeerManager(peer, {
      dial: (p) => this.dial(p),
      isConnected: (p) => this.isPeerConnected(p),
      logger: this.log.child('peer/manager'),
      backoff: this.timing.backoff,
      healthyAfterMs: this.timing.healthyAfterMs,
    });
    this.managers.set(peer.name, manager);
    manager.start();
  }

  private isPeerConnected(peer: PeerConfig): boolean {
    for (const session of this.registry.sessions()) if (this.linkBySession.get(session)?.admission.peer?.name === peer.name) return true;
    return false;
  }

  private dial(peer: PeerConfig): void {
    const log = this.log.child('peer/manager');
    this.metrics.connectionAttempt();
    let conn: QuicConnection;
    try {
      conn = this.endpoint.connect(peer.address);
    } catch (error) {
      this.metrics.connectionFailure('error');
      this.managers.get(peer.name)?.dialFailed(`cannot dial ${peer.address}: ${(error as Error).message}`);
      return;
    }
    let established = false;
    let handshakeTimedOut = false;
    const handshakeTimer = setTimeout(() => {
      handshakeTimedOut = true;
      conn.close(APP_NO_ERROR, 'handshake timed out');
    }, this.timing.handshakeTimeoutMs);
    handshakeTimer.unref();
    conn.onEstablished = () => {
      established = true;
      clearTimeout(handshakeTimer);
      const admission = admitOutbound(peer, conn.peerCertDer(), this.trust);
      if (!admission.ok) {
        this.refuse(conn, admission, `dialed ${peer.name} at ${peer.address}`);
        return;
      }
      if (admission.how === 'first-use') log.warn(`trusting ${peer.name} on first use: fingerprint ${admission.fingerprint} stored in ${this.trust.path}`);
      const link: Link = { conn, admission, session: null, control: null };
      this.links.add(link);
      this.openSession(link, conn.openStream());
    };
    conn.onClose = (info) => {
      clearTimeout(handshakeTimer);
      if (established) {
        this.connectionClosed(conn, info);
        return;
      }
      const noAnswer = handshakeTimedOut || info.timedOut;
      this.metrics.connectionFailure(noAnswer ? 'timeout' : info.isApp ? 'rejected' : 'handshake');
      const why = noAnswer ? `no answer within ${this.timing.handshakeTimeoutMs / 1000}s` : info.reason || 'handshake failed';
      this.managers.get(peer.name)?.dialFailed(`cannot connect to ${peer.address}: ${why}`);
    };
  }

  private acceptInbound(conn: QuicConnection): void {
    const admission = admitInbound(conn.peerCertDer(), this.config.peers, this.trust, this.config.daemon.acceptUnknownPeers);
    if (!admission.ok) {
      this.refuse(conn, admission, `inbound from ${conn.remoteAddress}`);
      return;
    }
    const log = this.log.child('peer/accept');
    if (admission.how === 'first-use') log.warn(`trusting ${admission.name} on first use: fingerprint ${admission.fingerprint} stored in ${this.trust.path}`);
    if (admission.how === 'unknown-accepted') log.warn(`accepting unknown peer ${admission.name} (${shortFingerprint(admission.fingerprint)}) from ${conn.remoteAddress}: accept_unknown_peers is on`);
    const link: Link = { conn, admission, session: null, control: null };
    this.links.add(link);
    conn.onStream = (stream) => {
      // PROTOCOL.md section 3: the first stream the dialer opens is the control stream.
      if (!link.control) this.openSession(link, stream);
      else this.dataPlane.acceptStream(admission.fingerprint, stream);
    };
    conn.onClose = (info) => this.connectionClosed(conn, info);
  }

  private refuse(conn: QuicConnection, refusal: Extract<Admission, { ok: false }>, what: string): void {
    this.metrics.handshakeRejected(refusal.reason);
    this.log.child('peer/trust').warn(`refused ${what}: ${refusal.message}`);
    conn.close(APP_UNTRUSTED, refusal.reason);
  }

  private openSession(link: Link, control: QuicStream): void {
    const { conn, admission } = link;
    link.control = control;
    const session = new Session({
      channel: {
        write: (bytes) => void control.write(bytes),
        close: (code, reason) => conn.close(code, reason),
      },
      events: {
        hello: (s) => this.sessionHello(s),
        announce: (s, network, routes) => this.sessionAnnounce(s, network, routes),
        withdraw: (s, network, prefix) => this.sessionWithdraw(s, network, prefix),
        goodbye: (s) => this.sessionGoodbye(s),
        violation: (s, reason) => {
          this.log.child('control').warn(`protocol violation by ${s.label}: ${reason}; closing its connection`);
          conn.close(APP_PROTOCOL_VIOLATION, reason.slice(0, 200));
        },
      },
      direction: conn.direction,
      localFingerprint: this.identity.fingerprint,
      peerFingerprint: admission.fingerprint,
      peerName: admission.name,
      remoteAddress: conn.remoteAddress,
      localNonce: this.options.nonce ? this.options.nonce() : randomNonce(randomBytes),
      logger: this.log.child('control'),
      metrics: this.metrics,
      now: () => Date.now(),
      keepaliveMs: this.timing.keepaliveMs,
      deadAfterMs: this.timing.deadAfterMs,
    });
    link.session = session;
    this.linkBySession.set(session, link);
    control.onData = (chunk) => session.receive(chunk);
    control.onEnd = () => session.receiveEnd();
    if (conn.direction === 'outbound') {
      conn.onStream = (stream) => this.dataPlane.acceptStream(admission.fingerprint, stream);
    }
    session.start(announcementsFor(this.config, admission.peer, this.identity.fingerprint));
  }

  private sessionHello(session: Session): void {
    const link = this.linkBySession.get(session)!;
    this.lastSeen.set(session.peerFingerprint, Date.now());
    const previous = this.registry.get(session.peerFingerprint);
    const handingOver = this.handovers.get(session.peerFingerprint) === session;
    if (handingOver) this.handovers.delete(session.peerFingerprint);
    const { winner, loser } = this.registry.offer(session);
    if (loser) {
      this.metrics.handshakeRejected('duplicate');
      this.log.child('peer/registry').info(`duplicate connection with ${session.label}: keeping the ${winner.direction} one (lower dialer nonce)`);
      loser.markClosed();
      this.linkBySession.get(loser)?.conn.close(APP_DUPLICATE, 'duplicate connection');
    }
    if (handingOver && winner === session) {
      // Usually nothing is recorded yet (its Announces follow the Hello) and the old routes simply
      // stay until they are re-announced.
      if (session.announced.size > 0) this.replayAnnouncements(session);
      this.log.child('peer/registry').info(`${session.label}: continuing on the ${session.direction} connection`);
    }
    if (winner === session && previous !== session) {
      if (!previous && !handingOver) this.log.child('peer/manager').info(`connected to ${session.label} (${session.direction}, ${session.remoteAddress})`);
      if (link.admission.peer) this.managers.get(link.admission.peer.name)?.connected();
      this.dataPlane.peerUp(session.peerFingerprint);
      this.updatePeerMetrics();
    }
  }

  private sessionAnnounce(session: Session, network: string, routes: RouteAnnouncement[]): void {
    if (!this.registry.isActive(session)) return;
    const link = this.linkBySession.get(session)!;
    const net = this.config.networks.get(network);
    const table = this.graph.table(network);
    const log = this.log.child('netgraph');
    for (const route of routes) {
      const verdict = this.checkRoute(network, link.admission.peer, route.prefix);
      if (!verdict.ok) {
        this.metrics.routeRejected(net ? network : '', ROUTE_REJECT[verdict.reason]);
        log.warn(`rejected route ${route.prefix} in ${network} from ${session.label}: ${verdict.message}`);
        continue;
      }
      if (net && formatPrefix(verdict.prefix) === ownHostRoute(net, this.identity.fingerprint)) {
        // Two nodes with the same overlay address: most likely both derived it with "auto" and
        // the hashes collided in a small prefix. Routing to it cannot work for both.
        this.metrics.routeRejected(network, 'conflict');
        log.error(
          `${session.label} announces ${route.prefix} in ${network}, which is this node's own address; ` +
            `set a static networks.${network}.address on one of the two nodes`,
        );
        continue;
      }
      if (table!.add(verdict.prefix, session.peerFingerprint, route.metric)) {
        log.debug(`route ${formatPrefix(verdict.prefix)} in ${network} via ${session.label} metric ${route.metric}`);
        this.dataPlane.routeAdded(network, verdict.prefix, session.peerFingerprint);
      }
    }
    this.metrics.setRoutes(network, this.graph.routeCount(network));
  }

  private sessionWithdraw(session: Session, network: string, prefixText: string): void {
    if (!this.registry.isActive(session)) return;
    const table = this.graph.table(network);
    const parsed = parseCidr(prefixText, true);
    if (!table || !parsed.ok) return;
    if (table.withdraw(parsed.prefix, session.peerFingerprint)) {
      this.log.child('netgraph').debug(`route ${prefixText} in ${network} withdrawn by ${session.label}`);
      this.dataPlane.routeRemoved(network, parsed.prefix, session.peerFingerprint);
      this.metrics.setRoutes(network, this.graph.routeCount(network));
    }
  }

  private sessionGoodbye(session: Session): void {
    this.log.child('peer/manager').info(`${session.label} said goodbye`);
    const link = this.linkBySession.get(session);
    // Routes go at once (PROTOCOL.md); the close that follows finds the session already gone.
    this.sessionEnded(session, 'peer said goodbye');
    link?.conn.close(APP_GOODBYE, 'goodbye');
  }

  private connectionClosed(conn: QuicConnection, info: QuicCloseInfo): void {
    const described = describeAppError(info.errorCode);
    const reason = info.timedOut
      ? 'idle timeout'
      : info.isApp
        ? described + (info.reason && info.reason !== described ? ` (${info.reason})` : '')
        : info.reason || `transport error ${info.errorCode}`;
    for (const link of this.links) {
      if (link.conn !== conn) continue;
      this.links.delete(link);
      if (link.session) {
        const why = info.local ? reason : `peer closed: ${reason}`;
        this.sessionEnded(link.session, why);
        this.linkBySession.delete(link.session);
      }
      if (!link.session || link.session.peerNonce === null) {
        // Closed before the Hello exchange finished: for the dialer this was a failed attempt.
        if (link.admission.peer && conn.direction === 'outbound') this.managers.get(link.admission.peer.name)?.dialFailed(reason);
      }
    }
  }

  /**
   * The session is over: if it was the peer's active one, the peer is down and its routes go —
   * unless another connection with the same peer is alive. That happens when both sides dialed at
   * once and the other side closed our active connection as the duplicate before we read the
   * Hello on the surviving one: the survivor takes over and the routes stay, instead of flapping.
   */
  private sessionEnded(session: Session, reason: string): void {
    session.markClosed();
    const fingerprint = session.peerFingerprint;
    const wasActive = this.registry.remove(session);
    const waitingHandover = this.handovers.get(fingerprint);
    if (!wasActive && waitingHandover !== session) return;
    if (waitingHandover === session) this.handovers.delete(fingerprint);
    const successor = this.liveSessionWith(fingerprint);
    if (successor) {
      if (successor.state === 'open') {
        this.registry.offer(successor);
        this.replayAnnouncements(successor);
        this.log.child('peer/registry').info(`${session.label}: ${reason}; continuing on the other connection (${successor.direction})`);
      } else {
        // Its Hello is on the way; sessionHello finishes the switch.
        this.handovers.set(fingerprint, successor);
      }
      return;
    }
    this.lastSeen.set(fingerprint, session.lastReceivedAt);
    const removed = this.graph.removePeer(fingerprint);
    for (const r of removed) this.dataPlane.routeRemoved(r.network, r.prefix, fingerprint);
    for (const network of new Set(removed.map((r) => r.network))) this.metrics.setRoutes(network, this.graph.routeCount(network));
    this.dataPlane.peerDown(fingerprint);
    this.log.child('peer/manager').info(`disconnected from ${session.label}: ${reason}${removed.length ? `; removed ${removed.length} route(s)` : ''}`);
    const link = this.linkBySession.get(session);
    if (link?.admission.peer) this.managers.get(link.admission.peer.name)?.disconnected(reason);
    this.updatePeerMetrics();
  }

  /** Another session with this peer whose connection is still up, preferring one past Hello. */
  private liveSessionWith(fingerprint: string): Session | undefined {
    let waiting: Session | undefined;
    for (const link of this.links) {
      const s = link.session;
      if (!s || s.state === 'closed' || s.peerFingerprint !== fingerprint) continue;
      if (s.state === 'open') return s;
      waiting = s;
    }
    return waiting;
  }

  /** Applies what a session was told while it was not the active one, after the peer's old routes. */
  private replayAnnouncements(session: Session): void {
    const removed = this.graph.removePeer(session.peerFingerprint);
    for (const r of removed) this.dataPlane.routeRemoved(r.network, r.prefix, session.peerFingerprint);
    for (const [network, routes] of session.announced) {
      this.sessionAnnounce(
        session,
        network,
        [...routes].map(([prefix, metric]) => ({ prefix, metric })),
      );
    }
    for (const network of new Set(removed.map((r) => r.network))) this.metrics.setRoutes(network, this.graph.routeCount(network));
  }

  /** The raw stream that carries data to a peer, from its active session's connection. */
  private dataStreamFor(fingerprint: string): QuicConnection | null {
    const session = this.registry.get(fingerprint);
    return session ? (this.linkBySession.get(session)?.conn ?? null) : null;
  }

  private tick(): void {
    for (const link of this.links) {
      const session = link.session;
      if (!session || session.state === 'closed') continue;
      if (session.tick()) {
        this.log.child('peer/liveness').warn(`${session.label} silent for over ${this.timing.deadAfterMs / 1000}s; declaring it dead`);
        this.sessionEnded(session, 'liveness timeout');
        link.conn.close(APP_DEAD_PEER, 'liveness timeout');
      } else if (this.registry.isActive(session)) {
        this.lastSeen.set(session.peerFingerprint, session.lastReceivedAt);
      }
    }
  }

  private updatePeerMetrics(): void {
    this.metrics.setPeers(this.registry.size, this.config.peers.length);
  }

  // ---- reload -----------------------------------------------------------------------------

  async reload(): Promise<string> {
    const log = this.log.child('daemon');
    const next = (this.options.loadConfig ?? loadConfig)(this.config.path); // throws ConfigError: the old config keeps running
    const plan = planReload(this.config, next);
    if (next.identity.knownPeers !== this.config.identity.knownPeers) this.trust = new TrustStore(next.identity.knownPeers);
    const before = new Map<Session, Map<string, RouteAnnouncement[]>>();
    for (const session of this.registry.sessions()) {
      before.set(session, announcementsFor(this.config, this.linkBySession.get(session)!.admission.peer, this.identity.fingerprint));
    }

    const previous = this.config;
    this.config = next;
    this.log.setLevel(next.daemon.logLevel);

    for (const peer of [...plan.peersRemoved, ...plan.peersReplaced]) {
      this.managers.get(peer.name)?.stop();
      this.managers.delete(peer.name);
      for (const link of [...this.links]) {
        if (link.admission.peer?.name !== peer.name) continue;
        // Goodbye first: ending the session marks it closed, after which it sends nothing.
        link.session?.goodbye();
        if (link.session) this.sessionEnded(link.session, 'removed from config');
        void this.goodbyeAndClose(link, APP_GOODBYE, 'removed from config');
      }
    }
    // Sessions of peers that stay keep running, but their admission must point at the new config.
    for (const link of this.links) {
      if (!link.admission.peer) continue;
      const updated = next.peers.find((p) => p.name === link.admission.peer!.name);
      if (updated) link.admission = { ...link.admission, peer: updated };
    }
    for (const net of [...plan.networksRemoved, ...plan.networksRebuilt]) this.removeNetwork(net.name);
    for (const net of [...plan.networksAdded, ...plan.networksRebuilt]) this.addNetwork(net);
    this.revalidateRoutes();

    for (const [session, old] of before) {
      if (!this.registry.isActive(session)) continue;
      const link = this.linkBySession.get(session)!;
      const diff = diffAnnouncements(old, announcementsFor(next, link.admission.peer, this.identity.fingerprint));
      for (const w of diff.withdraw) session.withdraw(w.network, w.prefix);
      for (const [network, routes] of diff.announce) session.announce(network, routes);
    }
    for (const peer of [...plan.peersAdded, ...plan.peersReplaced]) this.startManager(peer);
    this.updatePeerMetrics();
    const summary = describePlan(plan);
    log.info(`reloaded ${previous.path}: ${summary}`);
    if (plan.needsRestart.length) log.warn(`reload: ${plan.needsRestart.join(', ')} changed; restart the daemon to apply`);
    return summary;
  }

  /**
   * PROTOCOL.md route policy under the current config. `peer` is undefined when the route's peer
   * has no session any more, null for an unknown peer admitted by accept_unknown_peers.
   */
  private checkRoute(network: string, peer: PeerConfig | null | undefined, announced: string): PolicyResult {
    const net = this.config.networks.get(network);
    return checkAnnouncedPrefix({
      networkExists: net !== undefined && this.graph.table(network) !== undefined,
      peerAllowedOnNetwork: peer !== undefined && peerInNetwork(peer, network),
      networkPrefix: net ? parsePrefixText(net.prefix) : ZERO_PREFIX,
      allowedRoutes: (peer?.allowedRoutes ?? []).map(parsePrefixText),
      announced,
    });
  }

  /** After a reload, drops learned routes the new config no longer allows. */
  private revalidateRoutes(): void {
    for (const route of this.graph.routes()) {
      const session = this.registry.get(route.peer);
      const peer = session ? this.linkBySession.get(session)?.admission.peer : undefined;
      const verdict = this.checkRoute(route.network, peer, route.prefix);
      if (verdict.ok) continue;
      const prefix = parsePrefixText(route.prefix);
      this.graph.table(route.network)?.withdraw(prefix, route.peer);
      this.dataPlane.routeRemoved(route.network, prefix, route.peer);
      this.metrics.setRoutes(route.network, this.graph.routeCount(route.network));
      this.log.child('netgraph').info(`reload: dropped route ${route.prefix} in ${route.network}: ${verdict.message}`);
    }
  }

  // ---- control socket ---------------------------------------------------------------------

  private async handleControl(request: ControlRequest): Promise<unknown> {
    switch (request.cmd) {
      case 'status':
        return this.status();
      case 'peers':
        return this.peers();
      case 'routes':
        return this.routes();
      case 'reload':
        return await this.reload();
      case 'goodbye':
        // Answer first, then shut down: the client should hear that it worked.
        setImmediate(() => (this.options.onShutdownRequested ? this.options.onShutdownRequested() : void this.stop('vpnctl goodbye')));
        return 'shutting down';
      default:
        throw new Error(`unknown command '${request.cmd}' (commands: status, peers, routes, reload, goodbye)`);
    }
  }

  status(): object {
    return {
      name: this.identity.name,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      fingerprint: this.identity.fingerprint,
      listen: this.config.daemon.listen,
      port: this.port,
      peers_connected: this.registry.size,
      peers_configured: this.config.peers.length,
      routes: this.graph.routes().length,
      networks: [...this.config.networks.values()].map((net) => ({
        name: net.name,
        interface: this.dataPlane.interfaceName(net.name) ?? '',
        address: resolveNetworkAddress(net, this.identity.fingerprint),
        prefix: net.prefix,
        export: net.export,
      })),
    };
  }

  peers(): object[] {
    const rows: object[] = [];
    const seen = new Set<string>();
    const activeByName = new Map<string, Session>();
    for (const session of this.registry.sessions()) activeByName.set(session.peerName, session);
    for (const peer of this.config.peers) {
      const session = activeByName.get(peer.name);
      const fingerprint = session?.peerFingerprint ?? peer.fingerprint ?? this.safeTrustGet(peer.name) ?? '';
      seen.add(fingerprint);
      rows.push(this.peerRow(peer.name, fingerprint, peer.address, session, this.managers.get(peer.name)?.lastError ?? null));
    }
    for (const session of this.registry.sessions()) {
      if (!seen.has(session.peerFingerprint)) rows.push(this.peerRow(session.peerName, session.peerFingerprint, '', session, null));
    }
    return rows;
  }

  private peerRow(name: string, fingerprint: string, address: string, session: Session | undefined, lastError: string | null): object {
    const seenAt = session ? session.lastReceivedAt : this.lastSeen.get(fingerprint);
    return {
      name,
      fingerprint,
      address,
      connected: Boolean(session),
      last_seen: seenAt ? new Date(seenAt).toISOString() : null,
      direction: session?.direction ?? null,
      remote: session?.remoteAddress ?? null,
      connected_since: session ? new Date(session.connectedAt).toISOString() : null,
      last_error: session ? null : lastError,
    };
  }

  private safeTrustGet(name: string): string | undefined {
    try {
      return this.trust.get(name);
    } catch {
      return undefined;
    }
  }

  routes(): object[] {
    const names = new Map<string, string>();
    for (const session of this.registry.sessions()) names.set(session.peerFingerprint, session.peerName);
    return this.graph.routes().map((r) => ({ ...r, peer_name: names.get(r.peer) ?? null }));
  }

  /** Live connections that carry a session (duplicates included until the tie-break closes them). */
  connectionCount(): number {
    let count = 0;
    for (const link of this.links) if (link.session && link.session.state !== 'closed') count++;
    return count;
  }

  /** The forwarding counters of one network (also exported as metrics). */
  dataPlaneCounters(network: string): ForwardCounters | undefined {
    return this.dataPlane.counters(network);
  }

  /** The active session with a peer, if connected. */
  sessionWith(fingerprint: string): Session | undefined {
    return this.registry.get(fingerprint);
  }

  // ---- shutdown ---------------------------------------------------------------------------

  /** Goodbye to every peer, close everything, remove interfaces and the socket. Idempotent. */
  stop(reason = 'shutdown'): Promise<void> {
    if (!this.stopping) this.stopping = this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    this.running = false;
    this.log.child('daemon').info(`shutting down (${reason}): saying goodbye to ${this.registry.size} peer(s)`);
    for (const manager of this.managers.values()) manager.stop();
    await Promise.all([...this.links].map((link) => this.goodbyeAndClose(link, APP_SHUTDOWN, 'shutting down')));
    await this.teardown();
  }

  /**
   * Goodbye goes on the control stream before the connection closes (PROTOCOL.md). quiche drops
   * stream data still unsent at close(), so the close waits until the control stream's queue has
   * gone to quiche and one more event-loop turn has put it on the wire — bounded, so shutdown
   * stays within its 3 s.
   */
  private goodbyeAndClose(link: Link, code: number, reason: string): Promise<void> {
    const session = link.session;
    if (session && session.state !== 'closed') session.goodbye();
    session?.markClosed();
    const deadline = Date.now() + 250;
    return new Promise((resolve) => {
      const check = (): void => {
        if (link.control && link.control.bufferedBytes > 0 && Date.now() < deadline) {
          setTimeout(check, 5);
          return;
        }
        setImmediate(() => {
          link.conn.close(code, reason);
          resolve();
        });
      };
      setImmediate(check);
    });
  }

  private async teardown(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    for (const link of this.links) link.conn.close(APP_SHUTDOWN, 'shutting down');
    // Give the Goodbyes and CLOSE frames a moment on the wire, bounded so exit stays within 3 s.
    if (this.endpoint) await this.endpoint.close().catch(() => undefined);
    await this.controlSocket?.close().catch(() => undefined);
    await this.metricsServer?.close().catch(() => undefined);
    this.dataPlane?.close();
  }
}

const ZERO_PREFIX: Prefix = { family: 4, bytes: new Uint8Array(4), length: 0 };

function parsePrefixText(text: string): Prefix {
  const parsed = parseCidr(text, true);
  if (!parsed.ok) throw new Error(`internal: config prefix '${text}' did not parse: ${parsed.error}`);
  return parsed.prefix;
}

