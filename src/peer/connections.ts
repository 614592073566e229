// The life of every admitted connection with a peer (handshake.ts lets them in): open the
// control session, settle duplicates with the tie-break, hand a peer over to its surviving
// connection, declare silent peers dead, say Goodbye, and close. Each Peer holds its own state;
// this file is the mechanism that moves it.

import type { Clock } from '../clock/clock.js';
import type { RouteAnnouncement } from '../control/messages.js';
import { PeerSender } from '../forward/send.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Routes } from '../netgraph/routes.js';
import type { QuicCloseInfo, QuicConnection } from '../quic/connection.js';
import type { QuicStream } from '../quic/stream.js';
import { isVirtualHost } from '../quic/virtual-path.js';
import type { ObservedEndpoint } from '../control/nat-messages.js';
import {
  APP_DEAD_PEER,
  APP_GOODBYE,
  APP_PROTOCOL_VIOLATION,
  APP_UNTRUSTED,
  describeAppError,
} from '../quic/errors.js';
import { describeRefusal, inviteRefusalCode } from './refusal.js';
import type { Link, Peer } from './peer.js';
import type { PeerMap } from './peers.js';
import { acceptOriginalStream } from './original-streams.js';
import { drainDuplicate, probeLink } from './link-checks.js';
import { Session, type RosterMessage } from './session.js';
import type { DaemonTiming } from './timing.js';

const MAX_NONCE = (1n << 64n) - 1n;
export interface ConnectionsDeps {
  peers: PeerMap;
  localFingerprint: string;
  /** This node's name (its certificate's CN), for the fixes messages name. */
  localName: string;
  clock: Clock;
  timing: DaemonTiming;
  metrics: Metrics;
  logger: Logger;
  nonce(): bigint;
  announcementsFor(peer: Peer): Map<string, RouteAnnouncement[]>;
  routes: Routes<Peer>;
  acceptStream(peer: Peer, stream: QuicStream): void;
  /** Capability tokens sent after each Hello (none to an original node), as they are now. */
  capabilities(): readonly string[];
  /** A DATAGRAM frame on an admitted connection (relayed packets, src/relay/forwarder.ts). */
  datagram?(link: Link, data: Uint8Array): void;
  /** N on a session: put the peer in touch with another one (src/peer/introductions.ts). */
  introduce?(link: Link, fingerprint: string): void;
  /** E on a session: where another peer is, as this one sees it. */
  endpoint?(link: Link, fingerprint: string, address: ObservedEndpoint | null): void;
  /** The peer's C arrived on a session (src/membership/gossip.ts starts on it). */
  capabilitiesHeard?(link: Link): void;
  /** D, Q or R on a session (src/membership/gossip.ts). */
  roster?(link: Link, msg: RosterMessage): void;
  /** An admin refused our invite with this code (`invite.exhausted`, …): counted. */
  refusalHeard?(code: string): void;
}

export class Connections {
  private readonly links = new Map<QuicConnection, Link>();

  constructor(private readonly deps: ConnectionsDeps) {}

  /** Checks liveness of every session: Keepalive when due, and a silent peer is declared dead. */
  tick(): void {
    for (const link of [...this.links.values()]) {
      const session = link.session;
      if (!session || session.state === 'closed') continue;
      if (session.tick()) {
        this.deps.logger.child('peer/liveness').warn(`${session.label} silent for over ${this.deps.timing.deadAfterMs / 1000}s; declaring it dead`);
        this.ended(link, 'liveness timeout');
        link.conn.close(APP_DEAD_PEER, 'liveness timeout');
      } else if (link.peer.active === link) {
        link.peer.lastSeen = session.lastReceivedAt;
      }
    }
  }

  /** Goodbye on every connection of `peer`, its session ended now (removed or replaced by reload). */
  dropPeer(peer: Peer, reason: string): Promise<void> {
    const links = [...peer.links];
    for (const link of links) {
      const session = link.session;
      if (!session || session.state === 'closed') continue;
      // Goodbye first: ending the session marks it closed, after which it sends nothing.
      session.goodbye();
      this.ended(link, reason, true);
    }
    return Promise.all(links.map((link) => this.goodbyeAndClose(link, APP_GOODBYE, reason))).then(() => undefined);
  }

  /** Goodbye to everyone and close every connection (shutdown). */
  closeAll(code: number, reason: string): Promise<void> {
    return Promise.all([...this.links.values()].map((link) => this.goodbyeAndClose(link, code, reason))).then(() => undefined);
  }

  /** What this node offers changed (a reload turned relay on or off): a new C replaces the old one. */
  resendCapabilities(): void {
    const tokens = [...this.deps.capabilities()];
    for (const link of this.links.values()) {
      if (link.session?.state === 'open' && !link.peer.original) link.session.send({ type: 'capabilities', tokens });
    }
  }

  /** Live connections that carry a session (duplicates included until the tie-break closes them). */
  connectionCount(): number {
    let count = 0;
    for (const link of this.links.values()) if (link.session && link.session.state !== 'closed') count++;
    return count;
  }

  /** Starts tracking an admitted connection. */
  register(peer: Peer, conn: QuicConnection): Link {
    const link: Link = { conn, peer, session: null, control: null, relayed: isVirtualHost(conn.remoteEndpoint().host) };
    this.links.set(conn, link);
    peer.links.add(link);
    const datagram = this.deps.datagram;
    if (datagram) conn.onDatagram = (data) => datagram(link, data);
    return link;
  }

  // ---- sessions ---------------------------------------------------------------------------

  /** The control stream exists (we opened it, or it is the first one the dialer opened). */
  openSession(link: Link, control: QuicStream): void {
    const { conn, peer } = link;
    const { deps } = this;
    link.control = control;
    const session = new Session({
      channel: {
        write: (bytes) => void control.write(bytes),
        close: (code, reason) => conn.close(code, reason),
      },
      events: {
        hello: () => this.hello(link),
        announce: (_s, network, routes) => {
          if (peer.active === link) deps.routes.announce(peer, network, routes);
        },
        withdraw: (_s, network, prefix) => {
          if (peer.active === link) deps.routes.withdraw(peer, network, prefix);
        },
        goodbye: () => this.goodbye(link),
        introduce: (_s, fingerprint) => deps.introduce?.(link, fingerprint),
        endpoint: (_s, fingerprint, address) => deps.endpoint?.(link, fingerprint, address),
        capabilities: () => deps.capabilitiesHeard?.(link),
        roster: (_s, msg) => deps.roster?.(link, msg),
        violation: (s, reason) => {
          deps.logger.child('control').warn(`protocol violation by ${s.label}: ${reason}; closing its connection`);
          conn.close(APP_PROTOCOL_VIOLATION, reason.slice(0, 200));
        },
      },
      direction: conn.direction,
      localFingerprint: deps.localFingerprint,
      peerFingerprint: peer.id,
      peerName: peer.name,
      remoteAddress: conn.remoteAddress,
      // The original's accept side keeps our new connection only if a fresh random number is below
      // the nonce we sent last: the highest nonce makes it keep ours every time.
      localNonce: peer.original ? MAX_NONCE : deps.nonce(),
      keepaliveAtStart: peer.original,
      capabilities: peer.original ? undefined : deps.capabilities(),
      keepAnnounced: (network, prefix) => deps.routes.remembers(network, prefix),
      logger: deps.logger.child('control'),
      metrics: deps.metrics,
      now: () => deps.clock.now(),
      keepaliveMs: deps.timing.keepaliveMs,
      deadAfterMs: deps.timing.deadAfterMs,
    });
    link.session = session;
    control.onData = (chunk) => session.receive(chunk);
    control.onEnd = () => session.receiveEnd();
    session.start(deps.announcementsFor(peer));
  }

  private hello(link: Link): void {
    const { peer } = link;
    peer.lastSeen = this.deps.clock.now();
    if (peer.original) return this.helloOriginal(link);
    const previous = peer.active;
    if (previous && previous !== link && peer.handover !== link) {
      // The tie-break may only choose between two live connections. A peer that restarted
      // left its old connection half-open here: it would win or lose against the new one by
      // chance, and a win would lock the peer out until the liveness timeout.
      probeLink(previous.conn, this.deps.clock, (alive) => {
        if (link.session?.state !== 'open' || peer.active === link) return;
        if (peer.active !== previous) return this.hello(link); // things moved on: judge again
        if (alive) return this.settle(link);
        this.deps.logger
          .child('peer/registry')
          .info(`${peer.label}: the old ${previous.conn.direction} connection did not answer a probe; taking the new ${link.conn.direction} one (the peer restarted?)`);
        this.ended(previous, 'no answer to a liveness probe');
        previous.conn.close(APP_DEAD_PEER, 'no answer to a liveness probe');
      });
      return;
    }
    this.settle(link);
  }

  /**
   * An original VibePN node never accepts streams on connections it dialed, and its own
   * tie-break is incoherent (it redials every 2 s, and its accept side keeps a connection by
   * chance): no tie-break with it. Our outbound connection carries the session; a connection it
   * dialed stays open but passive, and only prompts a probe of ours (it may have restarted).
   */
  private helloOriginal(link: Link): void {
    const { peer } = link;
    const log = this.deps.logger.child('peer/original');
    const current = peer.active;
    if (current === link) return;
    if (current && current.session?.state === 'open' && link.conn.direction === 'inbound') {
      log.debug(`${peer.label}: keeping its connection from ${link.conn.remoteAddress} passive (original VibePN)`);
      probeLink(current.conn, this.deps.clock, (alive) => {
        if (alive || peer.active !== current) return;
        log.info(`${peer.label}: our ${current.conn.direction} connection did not answer a probe (the peer restarted?); redialing`);
        this.ended(current, 'no answer to a liveness probe');
        current.conn.close(APP_DEAD_PEER, 'no answer to a liveness probe');
      });
      return;
    }
    peer.active = link;
    if (peer.handover === link) peer.handover = null;
    if (link.session!.announced.size > 0) this.deps.routes.replace(peer, link.session!.announced);
    if (!current) log.info(`connected to ${peer.label} (${link.conn.direction}, ${link.conn.remoteAddress}; original VibePN)`);
    else log.info(`${peer.label}: continuing on the ${link.conn.direction} connection (original VibePN); the ${current.conn.direction} one stays open`);
    // Connected, for its redial schedule, only over a connection we dialed.
    if (link.conn.direction === 'outbound') peer.manager?.connected();
    this.carryTraffic(peer, link);
  }

  /** A stream the peer opened on an admitted connection: data, or an original node's side stream. */
  acceptStream(link: Link, stream: QuicStream): void {
    const { peer } = link;
    if (!peer.original) return this.deps.acceptStream(peer, stream);
    acceptOriginalStream(stream, {
      data: (data) => this.deps.acceptStream(peer, data),
      control: (msg) => (peer.session ?? link.session)?.receiveOutOfBand(msg),
      malformed: (error) => this.deps.logger.child('peer/original').debug(`${peer.label}: bad control message on a separate stream: ${error}`),
    });
  }

  /** The Hello exchange is done and the link is known to compete only with live ones. */
  private settle(link: Link): void {
    const { peer } = link;
    const session = link.session!;
    const log = this.deps.logger;
    const previous = peer.active;
    const handingOver = peer.handover === link;
    if (handingOver) peer.handover = null;
    const { winner, loser } = peer.offer(link);
    if (loser) {
      this.deps.metrics.handshakeRejected('duplicate');
      log.child('peer/registry').info(`duplicate connection with ${peer.label}: keeping the ${winner.conn.direction} one (lower dialer nonce)`);
      loser.session?.markClosed();
      drainDuplicate(loser.conn, this.deps.clock);
    }
    if (handingOver && winner === link) {
      // Usually nothing is recorded yet (its Announces follow the Hello) and the old routes simply
      // stay until they are re-announced.
      if (session.announced.size > 0) this.deps.routes.replace(peer, session.announced);
      log.child('peer/registry').info(`${peer.label}: continuing on the ${session.direction} connection`);
    } else if (winner === link && loser === previous && session.announced.size > 0) {
      // It won against a live connection after a probe, during which its announcements were only
      // remembered: only the survivor's announcements may stand.
      this.deps.routes.replace(peer, session.announced);
    }
    if (winner === link && previous !== link) {
      if (!previous && !handingOver) log.child('peer/manager').info(`connected to ${peer.label} (${session.direction}, ${session.remoteAddress})`);
      peer.manager?.connected();
      this.carryTraffic(peer, link);
    }
  }

  private goodbye(link: Link): void {
    this.deps.logger.child('peer/manager').info(`${link.peer.label} said goodbye`);
    // Routes go at once (PROTOCOL.md); the close that follows finds the session already gone.
    this.ended(link, 'peer said goodbye');
    link.conn.close(APP_GOODBYE, 'goodbye');
  }

  /** The connection is gone, whoever closed it. */
  closed(conn: QuicConnection, info: QuicCloseInfo): void {
    const link = this.links.get(conn);
    if (!link) return;
    this.links.delete(conn);
    const { peer } = link;
    peer.links.delete(link);
    const reason = describeClose(info);
    if (link.session) this.ended(link, info.local ? reason : `peer closed: ${reason}`);
    // Closed before the Hello exchange finished: for the dialer this was a failed attempt.
    if ((!link.session || link.session.peerNonce === null) && conn.direction === 'outbound') {
      if (peer.original && !info.local && info.isApp && info.reason.startsWith('duplicate connection')) peer.manager?.dialLostLottery(reason);
      else if (!info.local && info.isApp && info.errorCode === APP_UNTRUSTED) peer.manager?.dialFailed(this.refusal(peer, info.reason));
      else peer.manager?.dialFailed(reason);
    }
    if (peer.config === null && peer.links.size === 0) this.deps.peers.remove(peer);
  }

  private refusal(peer: Peer, reason: string): string {
    const code = inviteRefusalCode(reason);
    if (code) this.deps.refusalHeard?.(code);
    return describeRefusal(peer.name, reason, { name: this.deps.localName, fingerprint: this.deps.localFingerprint }, peer.config?.networks ?? []);
  }

  /**
   * The session is over: if it was the peer's active one, the peer is down and its routes go —
   * unless another connection with the same peer is alive. That happens when both sides dialed at
   * once and the other side closed our active connection as the duplicate before we read the
   * Hello on the surviving one: the survivor takes over and the routes stay, instead of flapping.
   * `final` (reload removed the peer): no successor may take over.
   */
  private ended(link: Link, reason: string, final = false): void {
    const session = link.session!;
    session.markClosed();
    const { peer } = link;
    const wasActive = peer.active === link;
    if (wasActive) peer.active = null;
    const waitingHandover = peer.handover === link;
    if (waitingHandover) peer.handover = null;
    if (!wasActive && !waitingHandover) return;
    const successor = final ? undefined : peer.successor();
    const log = this.deps.logger;
    if (successor?.session?.state === 'open') {
      peer.offer(successor);
      this.deps.routes.replace(peer, successor.session.announced);
      this.carryTraffic(peer, successor);
      log.child('peer/registry').info(`${session.label}: ${reason}; continuing on the other connection (${successor.session.direction})`);
      return;
    }
    if (successor) {
      // Its Hello is on the way; hello() finishes the switch. Until then packets have nowhere to go.
      peer.handover = successor;
      this.stopTraffic(peer);
      return;
    }
    peer.lastSeen = session.lastReceivedAt;
    const removed = this.deps.routes.removePeer(peer);
    this.stopTraffic(peer);
    log.child('peer/manager').info(`disconnected from ${session.label}: ${reason}${removed ? `; removed ${removed} route(s)` : ''}`);
    peer.manager?.disconnected(reason);
  }

  private carryTraffic(peer: Peer, link: Link): void {
    if (peer.original && link.conn.direction === 'inbound') {
      // Whatever we send on a connection an original node dialed is lost: dial it instead.
      this.stopTraffic(peer);
      peer.manager?.retryNow();
      return;
    }
    const capabilities = link.session!.peerCapabilities;
    if (peer.sender) peer.sender.retarget(link.conn, capabilities);
    else peer.sender = new PeerSender(link.conn, capabilities);
  }

  private stopTraffic(peer: Peer): void {
    peer.sender?.close();
    peer.sender = null;
  }

  /**
   * Goodbye goes on the control stream before the connection closes (PROTOCOL.md). quiche drops
   * stream data still unsent at close(), so the close waits until the control stream's queue has
   * gone to quiche and one more event-loop turn has put it on the wire — bounded, so shutdown
   * stays within its 3 s. These waits are for I/O, not protocol time, so they use the event loop
   * rather than the injected clock.
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
}

function describeClose(info: QuicCloseInfo): string {
  if (info.timedOut) return 'idle timeout';
  if (!info.isApp) return info.reason || `transport error ${info.errorCode}`;
  const described = describeAppError(info.errorCode);
  return described + (info.reason && info.reason !== described ? ` (${info.reason})` : '');
}
