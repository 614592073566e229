// A connection's way in: dial a configured peer at its address or accept one that dialed us,
// then admit it by certificate (admission.ts), record a first use before anything else happens
// on it, and hand it to Connections. A refused dial is a failed attempt like any other: counted,
// shown as the peer's last error, and redialed on the backoff schedule.

import { isIP } from 'node:net';
import { certificateInfo, type CertificateInfo } from '../crypto/identity.js';
import type { Clock } from '../clock/clock.js';
import type { Config } from '../config/types.js';
import type { TrustStore } from '../crypto/trust.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatHostPort, type HostPort } from '../netgraph/hostport.js';
import type { QuicConnection } from '../quic/connection.js';
import type { QuicStream } from '../quic/stream.js';
import { APP_GOODBYE, APP_NO_ERROR, APP_PROTOCOL_VIOLATION, APP_UNTRUSTED } from '../quic/errors.js';
import { admitInbound, admitOutbound, type Admission } from './admission.js';
import { describeRefusal } from './refusal.js';
import type { Connections } from './connections.js';
import { HeldStreams } from './held-streams.js';
import type { Peer } from './peer.js';
import type { PeerMap } from './peers.js';
import type { DaemonTiming } from './timing.js';
import { MAX_HELD_STRANGERS, MAX_REFUSAL_REASON, holdForRedemption, type InviteRedeemer } from './redemption.js';

type Refusal = Extract<Admission, { ok: false }>;

/** A path to a peer other than its configured address (src/peer/path-finder.ts). */
export interface DialPath {
  address: HostPort;
  /** How logs and errors name it ("192.0.2.10:51820 (introduced by h)", "via h"). */
  shown: string;
  /** The attempt failed before a session: no answer, refused, closed. */
  failed(reason: string): void;
  /** The connection exists (it may still fail). */
  started?(conn: QuicConnection): void;
}

export interface HandshakesDeps {
  dial(to: HostPort): QuicConnection;
  peers: PeerMap;
  /** The running config (admission reads its peers; reload replaces it). */
  config(): Config;
  trust(): TrustStore;
  localFingerprint: string;
  /** This node's name, for the fixes refusal messages name. */
  localName: string;
  clock: Clock;
  timing: Pick<DaemonTiming, 'handshakeTimeoutMs'>;
  metrics: Metrics;
  logger: Logger;
  connections: Connections;
  /** An admin's invites: a stranger's connection may open with J (redemption.ts). */
  redeemer?: InviteRedeemer;
  /** A joiner's invite for this peer: bytes (an encoded J) that go on the control stream before Hello. */
  preamble?(peer: Peer): Uint8Array | null;
}

export class Handshakes {
  /** Strangers held for a J right now (redemption.ts); closed ones are pruned when the next comes. */
  private readonly strangers = new Set<QuicConnection>();

  constructor(private readonly deps: HandshakesDeps) {}

  /**
   * Dials a configured peer at its address (its PeerManager decides when), or along another path
   * (`other`: an address learned from a common peer, or a relay's virtual address, which the path
   * finder chose and hears the failures of).
   */
  dial(peer: Peer, other?: DialPath): void {
    const address = other?.address ?? peer.config?.address;
    if (!address) return;
    const { metrics, timing } = this.deps;
    const shown = other?.shown ?? formatHostPort(address.host, address.port);
    const failed = other?.failed ?? ((reason: string) => peer.manager?.dialFailed(reason));
    metrics.connectionAttempt();
    let conn: QuicConnection;
    try {
      conn = this.deps.dial(address);
    } catch (error) {
      metrics.connectionFailure('error');
      failed(`cannot dial ${shown}: ${(error as Error).message}`);
      return;
    }
    other?.started?.(conn);
    let established = false;
    let handshakeTimedOut = false;
    const cancelTimer = this.deps.clock.after(timing.handshakeTimeoutMs, () => {
      handshakeTimedOut = true;
      conn.close(APP_NO_ERROR, 'handshake timed out');
    });
    conn.onEstablished = () => {
      established = true;
      cancelTimer();
      this.admitDialed(peer, conn, shown, failed, other === undefined);
    };
    conn.onClose = (info) => {
      cancelTimer();
      if (established) {
        this.deps.connections.closed(conn, info);
        return;
      }
      const noAnswer = handshakeTimedOut || info.timedOut;
      const unresolved = !info.isApp && info.reason.startsWith('cannot resolve');
      metrics.connectionFailure(noAnswer ? 'timeout' : info.isApp ? 'rejected' : unresolved ? 'dns' : 'handshake');
      if (!info.local && info.isApp && info.errorCode === APP_UNTRUSTED) {
        failed(describeRefusal(peer.name, info.reason, { name: this.deps.localName, fingerprint: this.deps.localFingerprint }, peer.config?.networks ?? []));
        return;
      }
      const why = noAnswer ? `no answer within ${timing.handshakeTimeoutMs / 1000}s` : info.reason || 'handshake failed';
      failed(`cannot connect to ${shown}: ${why}`);
    };
  }

  /** A connection someone dialed to us finished its TLS handshake. */
  accept(conn: QuicConnection): void {
    const config = this.deps.config();
    const trust = this.deps.trust();
    const admission = admitInbound({
      certDer: conn.peerCertDer(),
      peers: config.peers,
      trust,
      acceptUnknown: config.daemon.acceptUnknownPeers,
      remoteHost: conn.remoteEndpoint().host,
      hostsOf: (peer) => (peer.address && isIP(peer.address.host) !== 0 ? [peer.address.host] : []),
    });
    conn.onClose = (info) => this.deps.connections.closed(conn, info);
    if (!admission.ok) {
      const redeemer = this.deps.redeemer;
      const certDer = conn.peerCertDer();
      if (admission.reason === 'unknown_fingerprint' && redeemer?.active && certDer) {
        const stranger = certificateInfo(certDer);
        const revoked = redeemer.revoked(stranger.fingerprint);
        // A revoked member hears why, not "no peer entry" (and no invite can bring it back).
        if (revoked) return this.refuse(conn, { ...admission, message: revoked }, `inbound from ${conn.remoteAddress}`, revoked.slice(0, MAX_REFUSAL_REASON));
        for (const held of this.strangers) if (held.isClosed) this.strangers.delete(held);
        // A flood of strangers gets the refusal it would have had; invites wait for a calmer moment.
        if (this.strangers.size < MAX_HELD_STRANGERS) {
          this.awaitRedemption(conn, stranger, redeemer, admission);
          return;
        }
      }
      this.refuse(conn, admission, `inbound from ${conn.remoteAddress}`);
      return;
    }
    const log = this.deps.logger.child('peer/accept');
    if (admission.how === 'unknown-accepted') {
      log.warn(`accepting unknown peer ${admission.name} (${admission.fingerprint.slice(0, 8)}…) from ${conn.remoteAddress}: accept_unknown_peers is on`);
    }
    const peerFor = (): Peer | undefined =>
      admission.peer ? this.deps.peers.byConfigName(admission.peer.name) : this.deps.peers.unknown(admission.fingerprint, admission.name);
    if (admission.how !== 'first-use') {
      const peer = peerFor();
      if (peer) this.admitted(peer, conn, admission.fingerprint);
      return;
    }
    const held = new HeldStreams(() => conn.close(APP_PROTOCOL_VIOLATION, 'too much data before admission'));
    conn.onStream = (stream) => held.hold(stream);
    this.learn(admission, conn, `inbound from ${conn.remoteAddress}`).then((learned) => {
      if (!learned) return;
      const peer = peerFor();
      // A reload may have removed the peer while its first use was being written.
      if (!peer) return conn.close(APP_GOODBYE, 'removed from config');
      this.admitted(peer, conn, admission.fingerprint, held);
    });
  }

  /** A stranger on an admin node: its first control message may redeem an invite (redemption.ts). */
  private awaitRedemption(conn: QuicConnection, info: CertificateInfo, redeemer: InviteRedeemer, refusal: Refusal): void {
    this.strangers.add(conn);
    holdForRedemption({
      conn,
      fingerprint: info.fingerprint,
      name: info.commonName,
      redeemer,
      clock: this.deps.clock,
      timeoutMs: this.deps.timing.handshakeTimeoutMs,
      refuse: () => this.refuse(conn, refusal, `inbound from ${conn.remoteAddress}`),
      admit: (name, held) => {
        this.strangers.delete(conn);
        const peer = this.deps.peers.byConfigName(name);
        if (!peer || peer.fingerprint !== info.fingerprint) return conn.close(APP_GOODBYE, 'membership changed meanwhile');
        this.admitted(peer, conn, info.fingerprint, held);
      },
    });
  }

  private admitDialed(peer: Peer, conn: QuicConnection, shown: string, failed: (reason: string) => void, mayLearn: boolean): void {
    const admission = admitOutbound({
      peer: peer.config!,
      certDer: conn.peerCertDer(),
      trust: this.deps.trust(),
      localFingerprint: this.deps.localFingerprint,
    });
    if (!admission.ok) {
      this.refuseDial(conn, admission, `dialed ${peer.name} at ${shown}`, failed);
      return;
    }
    if (admission.how !== 'first-use') {
      this.openOutbound(peer, conn, admission.fingerprint);
      return;
    }
    if (!mayLearn) {
      // The address came from another peer (or is a relay's): whoever answers there must prove a
      // key we already trust, never become trusted by answering (PROTOCOL.md#v-inbound-tofu).
      const refusal: Refusal = { ok: false, reason: 'tofu_mismatch', message: `${peer.name} has no pinned or learned fingerprint to check at ${shown}; a first use is learned only at its configured address` };
      this.refuseDial(conn, refusal, `dialed ${peer.name} at ${shown}`, failed);
      return;
    }
    this.learn(admission, conn, `dialed ${peer.name} at ${shown}`, failed).then((learned) => {
      if (!learned) return;
      // A reload may have removed or replaced the peer while its first use was being written.
      if (this.deps.peers.byConfigName(peer.name) !== peer) return conn.close(APP_GOODBYE, 'removed from config');
      this.openOutbound(peer, conn, admission.fingerprint);
    });
  }

  /**
   * Records a first use before the peer is let in. Resolves to false when the write failed (the
   * connection is refused) or the connection closed meanwhile.
   */
  private async learn(admission: Extract<Admission, { ok: true }>, conn: QuicConnection, what: string, dialFailed?: (reason: string) => void): Promise<boolean> {
    const trust = this.deps.trust();
    this.deps.logger.child('peer/trust').warn(`trusting ${admission.name} on first use: fingerprint ${admission.fingerprint} stored in ${trust.path}`);
    try {
      await trust.learn(admission.name, admission.fingerprint);
    } catch (error) {
      const refusal: Refusal = { ok: false, reason: 'tofu_mismatch', message: (error as Error).message };
      if (dialFailed) this.refuseDial(conn, refusal, what, dialFailed);
      else this.refuse(conn, refusal, what);
      return false;
    }
    return !conn.isClosed;
  }

  /** `closeReason`: what the peer reads (the refusal's reason code unless told). */
  private refuse(conn: QuicConnection, refusal: Refusal, what: string, closeReason: string = refusal.reason): void {
    this.deps.metrics.handshakeRejected(refusal.reason);
    this.deps.logger.child('peer/trust').warn(`refused ${what}: ${refusal.message}`);
    conn.close(APP_UNTRUSTED, closeReason);
  }

  /** A refused dial is a failed attempt: counted, shown as the peer's last error, and redialed later. */
  private refuseDial(conn: QuicConnection, refusal: Refusal, what: string, failed: (reason: string) => void): void {
    this.deps.metrics.connectionFailure('rejected');
    this.refuse(conn, refusal, what);
    failed(`refused: ${refusal.message}`);
  }

  private openOutbound(peer: Peer, conn: QuicConnection, fingerprint: string): void {
    this.deps.peers.setFingerprint(peer, fingerprint);
    const link = this.deps.connections.register(peer, conn);
    // PROTOCOL.md section 3: the dialer opens the control stream; every stream the peer opens is data.
    conn.onStream = (stream) => this.deps.connections.acceptStream(link, stream);
    const control = conn.openStream();
    // A joiner's J goes first, before Hello: the admin decides admission on it (PROTOCOL.md#v-redeem).
    const preamble = this.deps.preamble?.(peer);
    if (preamble) control.write(preamble);
    this.deps.connections.openSession(link, control);
  }

  private admitted(peer: Peer, conn: QuicConnection, fingerprint: string, held?: HeldStreams): void {
    this.deps.peers.setFingerprint(peer, fingerprint);
    const link = this.deps.connections.register(peer, conn);
    const dispatch = (stream: QuicStream): void => {
      // PROTOCOL.md section 3: the first stream the dialer opens is the control stream.
      if (!link.control) this.deps.connections.openSession(link, stream);
      else this.deps.connections.acceptStream(link, stream);
    };
    conn.onStream = dispatch;
    held?.release(dispatch);
  }
}
