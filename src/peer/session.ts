// One control session: the H/A/W/K/G conversation on the control stream of one QUIC connection
// (PROTOCOL.md section 4). It knows nothing of QUIC: it writes bytes to a ControlChannel and hands
// decoded, validated events to its owner, so it can be tested with two sessions wired together.

import { ControlDecoder } from '../control/decoder.js';
import { CAPABILITY_NAT_TRAVERSAL, CAPABILITY_RELAY, CAPABILITY_ROSTER, CAPABILITY_TCP_SUPER_SEGMENTS, encodeAnnouncements, encodeControlMessage, type ControlMessage, type RouteAnnouncement } from '../control/messages.js';
import { shortFingerprint, type Logger } from '../log/logger.js';
import type { ControlMessageType, Metrics } from '../metrics/metrics.js';
import type { ObservedEndpoint } from '../control/nat-messages.js';
import type { DialerFacts } from './tiebreak.js';

export interface ControlChannel {
  /** Queues bytes on the control stream. Control traffic is small; the transport bounds it. */
  write(bytes: Uint8Array): void;
  /** Closes the whole connection with an application error code. */
  close(code: number, reason: string): void;
}

export interface SessionEvents {
  /** The peer's Hello arrived: the dialer facts are known, the tie-break can run. */
  hello(session: Session): void;
  announce(session: Session, network: string, routes: RouteAnnouncement[]): void;
  withdraw(session: Session, network: string, prefix: string): void;
  goodbye(session: Session): void;
  /** N: the peer asks to be put in touch with another peer (only if we offered nat). */
  introduce?(session: Session, fingerprint: string): void;
  /** E: where another peer is, as the peer sees it (null: it has no session with it). */
  endpoint?(session: Session, fingerprint: string, address: ObservedEndpoint | null): void;
  /** A C arrived: what the peer accepts may have changed (roster gossip starts on it). */
  capabilities?(session: Session): void;
  /** D, Q, R: the roster conversation (PROTOCOL.md#v-roster; only if we offered roster). */
  roster?(session: Session, msg: RosterMessage): void;
  /** The peer broke the protocol; the owner closes the connection. */
  violation(session: Session, reason: string): void;
}

export type RosterMessage = Extract<ControlMessage, { type: 'digest' | 'fetch' | 'record' }>;

export interface SessionOptions {
  channel: ControlChannel;
  events: SessionEvents;
  direction: 'inbound' | 'outbound';
  localFingerprint: string;
  peerFingerprint: string;
  peerName: string;
  remoteAddress: string;
  localNonce: bigint;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  keepaliveMs: number;
  deadAfterMs: number;
  /**
   * Send a Keepalive right after Hello and the announcements: the original VibePN's liveness
   * watcher counts only Keepalives, and deletes a peer's routes 30 s after the previous one,
   * even just after a reconnect.
   */
  keepaliveAtStart?: boolean;
  /**
   * Capability tokens sent in a C message right after Hello (PROTOCOL.md#v-capabilities); none is
   * sent when absent, as to an original node, which would log every unknown type as a warning.
   */
  capabilities?: readonly string[];
  /**
   * Whether an announced route is worth remembering for a later takeover or reload, and where:
   * 'local' for a network of this node, 'foreign' for one it may add on reload (kept, but only a
   * few such networks and routes), 'drop' for a prefix that does not parse. Without a bound a peer
   * could grow this session as long as it likes.
   */
  keepAnnounced?(network: string, prefix: string): 'local' | 'foreign' | 'drop';
}

/** Routes remembered per network per session; a subnet router with more is not a real case. */
export const MAX_ANNOUNCED_PER_NETWORK = 4096;
/** Networks this node does not have (yet) whose routes a session remembers, and routes in each. */
export const MAX_FOREIGN_NETWORKS = 8;
export const MAX_ANNOUNCED_PER_FOREIGN_NETWORK = 256;

/** The peer capabilities that change what this node sends it. */
export interface PeerCapabilities {
  /** It takes TCP super-segment frames on raw streams (CAPABILITY_TCP_SUPER_SEGMENTS). */
  superSegments: boolean;
  /** It takes N/E messages and relayed packets (CAPABILITY_NAT_TRAVERSAL). */
  natTraversal: boolean;
  /** It forwards between two of its peers (CAPABILITY_RELAY). */
  relay: boolean;
  /** It keeps signed rosters and takes D/Q/R (CAPABILITY_ROSTER). */
  roster: boolean;
}

export type SessionState = 'awaiting-hello' | 'open' | 'closed';

export class Session {
  readonly direction: 'inbound' | 'outbound';
  readonly peerFingerprint: string;
  readonly peerName: string;
  readonly remoteAddress: string;
  readonly localNonce: bigint;
  readonly connectedAt: number;
  peerNonce: bigint | null = null;
  state: SessionState = 'awaiting-hello';
  /**
   * What the peer announced on this session, per network, as sent (policy not applied). Kept even
   * while another session with the same peer is the active one, so this one can take over.
   */
  readonly announced = new Map<string, Map<string, number>>();
  lastReceivedAt: number;
  /**
   * What the peer said it accepts (its latest C message). Read by the data sender on every packet
   * batch, so a C that arrives after traffic started takes effect at once.
   */
  readonly peerCapabilities: PeerCapabilities = { superSegments: false, natTraversal: false, relay: false, roster: false };
  private lastKeepaliveSentAt: number;
  private readonly decoder = new ControlDecoder();
  private overflowLogged = false;
  private foreignNetworks = 0;
  private readonly options: SessionOptions;

  constructor(options: SessionOptions) {
    this.options = options;
    this.direction = options.direction;
    this.peerFingerprint = options.peerFingerprint;
    this.peerName = options.peerName;
    this.remoteAddress = options.remoteAddress;
    this.localNonce = options.localNonce;
    this.connectedAt = options.now();
    this.lastReceivedAt = this.connectedAt;
    this.lastKeepaliveSentAt = this.connectedAt;
  }

  /** PROTOCOL.md: the dialer's nonce and fingerprint decide duplicate connections. */
  get dialer(): DialerFacts {
    return this.direction === 'outbound'
      ? { dialerNonce: this.localNonce, dialerFingerprint: this.options.localFingerprint }
      : { dialerNonce: this.peerNonce ?? 0n, dialerFingerprint: this.peerFingerprint };
  }

  get label(): string {
    return `${this.peerName} (${shortFingerprint(this.peerFingerprint)})`;
  }

  /** Sends our Hello and the initial announcements, one A per network. */
  start(announcements: Map<string, RouteAnnouncement[]>): void {
    this.send({ type: 'hello', nonce: this.localNonce });
    const capabilities = this.options.capabilities;
    if (capabilities !== undefined) this.send({ type: 'capabilities', tokens: [...capabilities] });
    for (const [network, routes] of announcements) this.announce(network, routes);
    if (this.options.keepaliveAtStart) this.send({ type: 'keepalive', time: BigInt(Math.floor(this.options.now() / 1000)) });
  }

  /**
   * A control message that came outside the control stream: the original VibePN sends its reload
   * announcements and Goodbye each on a new stream. Taken like one from the control stream once
   * the session is open; a Hello there means nothing.
   */
  receiveOutOfBand(msg: ControlMessage): void {
    if (this.state !== 'open' || msg.type === 'hello') return;
    this.handle(msg);
  }

  announce(network: string, routes: RouteAnnouncement[]): void {
    if (routes.length === 0 || this.state === 'closed') return;
    for (const bytes of encodeAnnouncements(network, routes)) {
      this.options.channel.write(bytes);
      this.options.metrics.controlMessage('announce', 'out');
    }
  }

  withdraw(network: string, prefix: string): void {
    this.send({ type: 'withdraw', network, prefix });
  }

  /** Goodbye goes on the control stream (PROTOCOL.md fix), then the owner closes the connection. */
  goodbye(): void {
    this.send({ type: 'goodbye' });
  }

  send(msg: ControlMessage): void {
    if (this.state === 'closed') return;
    this.options.channel.write(encodeControlMessage(msg));
    this.options.metrics.controlMessage(msg.type as ControlMessageType, 'out');
    if (msg.type === 'keepalive') this.lastKeepaliveSentAt = this.options.now();
  }

  /** Bytes from the control stream, in order. */
  receive(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    const error = this.decoder.push(chunk, (msg) => this.handle(msg));
    // A handler may have closed the session (Goodbye, duplicate) while decoding.
    if (error !== null && (this.state as SessionState) !== 'closed') this.violate(error);
  }

  /** The peer closed its side of the control stream. */
  receiveEnd(): void {
    if (this.state === 'closed') return;
    const error = this.decoder.end();
    this.violate(error ?? 'peer closed the control stream');
  }

  /**
   * Liveness, called about once a second: Keepalive every keepaliveMs, and true when the peer has
   * been silent past deadAfterMs (the owner then removes its routes and closes the connection).
   */
  tick(): boolean {
    if (this.state === 'closed') return false;
    const now = this.options.now();
    if (now - this.lastKeepaliveSentAt >= this.options.keepaliveMs) {
      this.send({ type: 'keepalive', time: BigInt(Math.floor(now / 1000)) });
    }
    return now - this.lastReceivedAt > this.options.deadAfterMs;
  }

  markClosed(): void {
    this.state = 'closed';
  }

  private handle(msg: ControlMessage): void {
    if (this.state === 'closed') return;
    this.lastReceivedAt = this.options.now();
    this.options.metrics.controlMessage(msg.type, 'in');
    // J comes before Hello by design (PROTOCOL.md#v-redeem); the admin read it before this session.
    if (msg.type === 'redeem') return;
    if (this.state === 'awaiting-hello' && msg.type !== 'hello') {
      this.violate(`expected Hello first, got ${msg.type}`);
      return;
    }
    switch (msg.type) {
      case 'hello':
        if (this.state !== 'awaiting-hello') {
          this.violate('second Hello on one session');
          return;
        }
        this.peerNonce = msg.nonce;
        this.state = 'open';
        this.options.events.hello(this);
        return;
      case 'announce': {
        this.remember(msg.network, msg.routes);
        this.options.events.announce(this, msg.network, msg.routes);
        return;
      }
      case 'withdraw':
        this.announced.get(msg.network)?.delete(msg.prefix);
        this.options.events.withdraw(this, msg.network, msg.prefix);
        return;
      case 'keepalive':
        return;
      case 'capabilities':
        // Each C replaces the last: tokens this node does not know are ignored, as a later
        // version may define them.
        this.peerCapabilities.superSegments = msg.tokens.includes(CAPABILITY_TCP_SUPER_SEGMENTS);
        this.peerCapabilities.natTraversal = msg.tokens.includes(CAPABILITY_NAT_TRAVERSAL);
        this.peerCapabilities.relay = this.peerCapabilities.natTraversal && msg.tokens.includes(CAPABILITY_RELAY);
        this.peerCapabilities.roster = msg.tokens.includes(CAPABILITY_ROSTER);
        this.options.logger.debug(`${this.label} accepts: ${msg.tokens.join(' ') || 'nothing beyond v0.1'}`);
        this.options.events.capabilities?.(this);
        return;
      case 'goodbye':
        this.options.events.goodbye(this);
        return;
      case 'introduce':
        // Only a node that offered nat is asked; from anyone else it is an unknown type to skip.
        if (this.offers(CAPABILITY_NAT_TRAVERSAL)) this.options.events.introduce?.(this, msg.fingerprint);
        return;
      case 'endpoint':
        if (this.offers(CAPABILITY_NAT_TRAVERSAL)) this.options.events.endpoint?.(this, msg.fingerprint, msg.address);
        return;
      case 'digest':
      case 'fetch':
      case 'record':
        if (this.offers(CAPABILITY_ROSTER)) this.options.events.roster?.(this, msg);
        return;
      case 'unknown':
        // Forward compatibility (PROTOCOL.md): newer peers may send types we do not know.
        this.options.logger.debug(`${this.label} sent unknown control message type 0x${msg.code.toString(16)}; skipped`);
        return;
    }
  }

  private offers(token: string): boolean {
    return this.options.capabilities?.includes(token) === true;
  }

  private remember(network: string, routes: readonly RouteAnnouncement[]): void {
    const keep = this.options.keepAnnounced;
    let known = this.announced.get(network);
    for (const r of routes) {
      const kind = keep ? keep(network, r.prefix) : 'local';
      if (kind === 'drop') continue;
      const limit = kind === 'local' ? MAX_ANNOUNCED_PER_NETWORK : MAX_ANNOUNCED_PER_FOREIGN_NETWORK;
      if (!known) {
        if (kind === 'foreign' && this.foreignNetworks >= MAX_FOREIGN_NETWORKS) return;
        if (kind === 'foreign') this.foreignNetworks++;
        this.announced.set(network, (known = new Map()));
      }
      if (known.size >= limit && !known.has(r.prefix)) {
        if (kind === 'foreign') return;
        if (!this.overflowLogged) this.options.logger.warn(`${this.label} announces more than ${MAX_ANNOUNCED_PER_NETWORK} routes in one network; the rest are applied but not remembered for a takeover`);
        this.overflowLogged = true;
        continue;
      }
      known.set(r.prefix, r.metric);
    }
  }

  private violate(reason: string): void {
    this.options.metrics.protocolViolation();
    this.options.events.violation(this, reason);
  }
}
