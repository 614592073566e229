// One QUIC connection driven over the native quiche binding.
//
// The event loop per connection is deliberately plain (this is the VPN's data path):
//   datagram in  -> quiche recv() only, then the connection is marked for service;
//   service      -> once per event-loop turn (setImmediate, shared per endpoint): handshake
//                   check, read readable streams, pump queued stream output, then send()
//                   datagrams until quiche has nothing more, close check, re-arm the timer;
//   timer        -> one setTimeout per connection from quiche's timeout(), onTimeout(), service.
// No promise, lock or exception per packet: quiche's "Done" arrives as null from send(),
// streamRecv() and streamSend(); exceptions only mark dead streams and failed handshakes.
// Pacing is ignored: every datagram quiche produces is sent at once (quiche's pacer is off).

import type { Connection } from '@matrixai/quic/native/index.js';
import type { ConnectionHost, QuicCloseInfo, QuicConnectionStats, QuicDirection } from './connection-types.js';
import { closeInfoOf } from './close-info.js';
import { drainDatagrams, queueDatagram, statsOf } from './connection-io.js';
import { describeAppError, describeTransportError } from './errors.js';
import { StreamIds } from './stream-ids.js';
import { QuicStream, type StreamOwner } from './stream.js';
import { fingerprintOfDer } from '../crypto/identity.js';

// The public shapes live in connection-types.ts; importers keep using this module.
export type { ConnectionHost, QuicCloseInfo, QuicConnectionStats, QuicDirection } from './connection-types.js';

const MAX_DATAGRAMS_PER_SERVICE = 128;
const ascending = (a: number, b: number): number => a - b;
const textEncoder = new TextEncoder();

export class QuicConnection implements StreamOwner {
  onEstablished: () => void = () => {};
  onClose: (info: QuicCloseInfo) => void = () => {};
  /** A stream opened by the peer delivered its first data, FIN or reset. */
  onStream: (stream: QuicStream) => void = () => {};
  /** A DATAGRAM frame (RFC 9221) arrived; `data` is a view valid only during the call. */
  onDatagram: ((data: Uint8Array) => void) | null = null;

  /** Set by the endpoint while queued for service, so one turn services a connection once. */
  serviceQueued = false;

  private native: Connection | null = null;
  private readonly recvInfo = { from: { host: '', port: 0 }, to: { host: '', port: 0 } };
  private established = false;
  private closing = false;
  private closeNotified = false;
  private released = false;
  private receivedSinceService = false;
  private localClose: QuicCloseInfo | null = null;
  private peerCert: Uint8Array | null = null;

  private readonly streams = new Map<number, QuicStream>();
  private readonly streamsWithOutput = new Set<QuicStream>();
  private readonly streamIds: StreamIds;

  private readonly readableIds: number[] = [];
  /** Read first each turn: a steady flow then never builds quiche's costly readable() iterator. */
  private lastReadable: QuicStream | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerDeadline = Infinity;

  constructor(
    readonly direction: QuicDirection,
    readonly remoteAddress: string,
    private readonly host: ConnectionHost,
  ) {
    this.streamIds = new StreamIds(direction === 'outbound');
  }

  /** Leaf certificate the peer presented (DER), available from onEstablished / onConnection on. */
  peerCertDer(): Uint8Array | null {
    return this.peerCert;
  }

  /** Lowercase hex SHA-256 of peerCertDer(): the peer ID of PROTOCOL.md section 1. */
  peerFingerprint(): string | null {
    return this.peerCert === null ? null : fingerprintOfDer(this.peerCert);
  }

  get isEstablished(): boolean {
    return this.established && !this.closing;
  }

  get isClosed(): boolean {
    return this.closing;
  }

  /**
   * Opens a bidirectional stream. Nothing goes on the wire until the first write/end; writes
   * before the handshake completes are queued. The dialer's first stream is id 0.
   */
  openStream(): QuicStream {
    if (this.closing) throw new Error(`cannot open a stream: connection to ${this.remoteAddress} is closed`);
    if (this.native !== null && this.established && this.native.peerStreamsLeftBidi() === 0) {
      throw new Error(`cannot open a stream to ${this.remoteAddress}: the peer's stream limit is used up; reuse streams`);
    }
    const stream = new QuicStream(this.streamIds.takeLocal(), this, this.host.maxStreamBuffer);
    this.streams.set(stream.id, stream);
    return stream;
  }

  /** Application close; the peer sees isApp, the code and the reason. Idempotent. */
  close(appErrorCode: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.localClose = { local: true, errorCode: appErrorCode, reason, isApp: true, timedOut: false };
    if (this.native === null) {
      // Still resolving the peer's name: nothing was sent, so there is nothing to tell it.
      // onClose still fires asynchronously, like every other close.
      setImmediate(() => this.release());
      return;
    }
    this.native.close(true, appErrorCode, textEncoder.encode(reason));
    // The CONNECTION_CLOSE goes out now, not at the next service: a timer may run before that, and
    // one that fires here can make the close unsendable. Once closing, quiche (0.18) takes no more
    // input, so a dialer that has not yet read the server's HANDSHAKE_DONE keeps its Handshake
    // keys; if its Handshake probe timeout fires now, every send() returns a Handshake packet with
    // just an ACK (a probe may not carry a PING while closing, so the probe is never used up) and
    // never the APPLICATION_CLOSE, which only goes in 1-RTT packets. The connection would spin out
    // useless packets until the idle timeout, and the peer would never hear the close.
    if (!this.released) this.sendDatagrams(this.native);
    // onClose still fires from the service, asynchronously, like every other close.
    this.host.scheduleService(this);
  }

  /**
   * Sends an ack-eliciting packet (a PING, retransmitted by quiche's loss recovery like any
   * other): a live peer answers within about one RTT, which packetsReceived() shows.
   */
  ping(): void {
    if (this.native === null || this.closing) return;
    this.native.sendAckEliciting();
    this.host.scheduleService(this);
  }

  /**
   * Queues one unreliable DATAGRAM frame. False (the caller counts the drop) when the connection
   * is not established or closing, the datagram is larger than the path takes, or quiche's
   * bounded send queue is full.
   */
  sendDatagram(data: Uint8Array): boolean {
    const native = this.native;
    if (native === null || !this.established || this.closing || !queueDatagram(native, data)) return false;
    if (!this.serviceQueued) this.host.scheduleService(this);
    return true;
  }

  /** Where the peer's packets come from now (it may have moved since the handshake). */
  remoteEndpoint(): { host: string; port: number } {
    const { host, port } = this.recvInfo.from;
    return { host, port };
  }

  /** Packets received so far (a native call: for probes, not for the data path). */
  packetsReceived(): number {
    return this.native?.stats().recv ?? 0;
  }

  /** Smoothed round-trip time in ms, or null before the first RTT sample. */
  rttMs(): number | null {
    return this.native?.pathStats()[0]?.rtt ?? null;
  }

  stats(): QuicConnectionStats {
    return statsOf(this.native, {
      direction: this.direction,
      remoteAddress: this.remoteAddress,
      established: this.established,
      streams: this.streams.size,
      streamsWithOutput: this.streamsWithOutput.size,
    });
  }

  // ---- driven by the endpoint ----

  /** Binds the quiche connection once the remote address is known (after DNS for dials). */
  attach(native: Connection, localHost: string, localPort: number, remoteHost: string, remotePort: number): void {
    this.native = native;
    this.recvInfo.to.host = localHost;
    this.recvInfo.to.port = localPort;
    this.recvInfo.from.host = remoteHost;
    this.recvInfo.from.port = remotePort;
    this.host.scheduleService(this);
  }

  /**
   * Dial failed before a quiche connection existed (DNS, address family). Deferred, because it
   * can happen inside connect(), before the caller has set onClose.
   */
  failBeforeStart(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.localClose = { local: true, errorCode: 0, reason, isApp: false, timedOut: false };
    setImmediate(() => this.release());
  }

  receiveDatagram(data: Uint8Array, fromHost: string, fromPort: number): void {
    const native = this.native;
    if (native === null || this.released) return;
    const from = this.recvInfo.from;
    if (from.port !== fromPort || from.host !== fromHost) {
      from.host = fromHost;
      from.port = fromPort;
    }
    try {
      native.recv(data, this.recvInfo);
    } catch (error) {
      // A fatal error (TLS failure, protocol violation) sets localError and quiche sends the
      // CONNECTION_CLOSE on the next send(); anything else is a packet quiche chose to drop.
      if (this.host.logger.enabled('debug')) {
        this.host.logger.debug(`recv from ${this.remoteAddress}: ${(error as Error).message}`);
      }
    }
    this.receivedSinceService = true;
    if (!this.serviceQueued) this.host.scheduleService(this);
  }

  /** One pass of the event loop for this connection; see the file comment. */
  service(): void {
    const native = this.native;
    if (native === null || this.released) return;
    if (!this.established && !this.closing && native.isEstablished()) this.establish(native);
    if (this.receivedSinceService) {
      this.receivedSinceService = false;
      if (this.established && !this.closing) {
        this.readStreams(native);
        if (this.onDatagram !== null) drainDatagrams(native, this.host.receiveBuffer, this.onDatagram);
      }
    }
    if (this.streamsWithOutput.size > 0 && this.established && !this.closing) this.pumpStreams(native);
    this.sendDatagrams(native);
    this.checkClosed(native);
    if (!this.released) this.armTimer(native);
  }

  /** Endpoint shutdown: send what we can (the CONNECTION_CLOSE) and forget the connection now. */
  shutdown(appErrorCode: number, reason: string): void {
    this.close(appErrorCode, reason);
    if (this.native !== null && !this.released) {
      this.sendDatagrams(this.native);
      this.notifyClosed(this.native);
    }
    this.release();
  }

  // ---- StreamOwner ----

  sendableNative(): Connection | null {
    return this.established && !this.closing ? this.native : null;
  }

  streamHasOutput(stream: QuicStream): void {
    this.streamsWithOutput.add(stream);
    if (!this.serviceQueued) this.host.scheduleService(this);
  }

  streamFinished(stream: QuicStream): void {
    this.streams.delete(stream.id);
    if (this.lastReadable === stream) this.lastReadable = null;
    this.streamsWithOutput.delete(stream);
  }

  streamFailed(stream: QuicStream, message: string): void {
    this.host.logger.warn(`stream ${stream.id} to ${this.remoteAddress} failed: ${message}`);
  }

  // ---- internals ----

  private establish(native: Connection): void {
    this.established = true;
    const chain = native.peerCertChain();
    this.peerCert = chain?.[0] ?? null;
    if (this.host.logger.enabled('debug')) {
      this.host.logger.debug(`connection ${this.direction} ${this.remoteAddress} established, peer ${this.peerFingerprint()}`);
    }
    this.host.connectionEstablished(this);
    if (!this.closing) this.onEstablished();
  }

  private readStreams(native: Connection): void {
    // isReadable() is a cheap yes/no: a pure sender, receiving only ACKs, never reads a stream.
    if (!native.isReadable()) return;
    const buffer = this.host.receiveBuffer;
    const last = this.lastReadable;
    if (last !== null) {
      last.receive(native, buffer);
      if (this.closing || !native.isReadable()) return;
    }
    // quiche yields readable streams in hash order; ascending ids make the peer's first stream
    // (its control stream, PROTOCOL.md section 3) reach onStream first even when several new
    // streams arrive in one batch.
    const ids = this.readableIds;
    ids.length = 0;
    for (const id of native.readable()) ids.push(id);
    if (ids.length > 1) ids.sort(ascending);
    for (const id of ids) {
      let stream = this.streams.get(id);
      if (stream === undefined) {
        stream = this.acceptPeerStream(id);
        if (stream === undefined) continue;
      }
      stream.receive(native, buffer);
      this.lastReadable = stream;
      if (this.closing) return;
    }
  }

  private acceptPeerStream(id: number): QuicStream | undefined {
    if (!this.streamIds.firstSightOfPeer(id)) return undefined;
    const stream = new QuicStream(id, this, this.host.maxStreamBuffer);
    this.streams.set(id, stream);
    this.onStream(stream);
    return stream;
  }

  private pumpStreams(native: Connection): void {
    for (const stream of this.streamsWithOutput) {
      if (!stream.pump(native)) this.streamsWithOutput.delete(stream);
    }
  }

  private sendDatagrams(native: Connection): void {
    const host = this.host;
    const socket = host.socket;
    for (let sent = 0; ; sent++) {
      if (sent === MAX_DATAGRAMS_PER_SERVICE) {
        // Yield to the event loop: received ACKs (and other connections, the TUN device) get a
        // turn before the rest of a large congestion window goes out.
        host.scheduleService(this);
        break;
      }
      let result;
      try {
        result = native.send(socket.buffer());
      } catch (error) {
        host.logger.warn(`send to ${this.remoteAddress} failed inside quiche: ${(error as Error).message}`);
        break;
      }
      if (result === null) break;
      const to = result[1].to;
      socket.queue(result[0], to.host, to.port);
    }
    socket.flush();
  }

  private checkClosed(native: Connection): void {
    if (!this.closeNotified && (this.closing || native.isDraining() || native.isClosed())) {
      this.closing = true;
      this.notifyClosed(native);
    }
    if (native.isClosed()) this.release();
  }

  private notifyClosed(native: Connection | null): void {
    if (this.closeNotified) return;
    this.closeNotified = true;
    const info = closeInfoOf(native, this.localClose);
    const logger = this.host.logger;
    if (logger.enabled('debug')) {
      const what = info.isApp ? describeAppError(info.errorCode) : describeTransportError(info.errorCode);
      logger.debug(
        `connection ${this.direction} ${this.remoteAddress} closed by ${info.local ? 'us' : 'peer'}: ` +
          `${what}${info.reason ? ` (${info.reason})` : ''}`,
      );
    }
    this.onClose(info);
  }

  private armTimer(native: Connection): void {
    const timeout = native.timeout();
    if (timeout === null) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.timerDeadline = Infinity;
      return;
    }
    const deadline = performance.now() + timeout;
    // An armed timer that fires no later than needed stays: the handler re-arms from quiche's
    // current timeout, and onTimeout() does nothing before quiche's deadline. This avoids
    // re-creating a timer on every flush while the idle deadline keeps moving out.
    if (this.timer !== null && this.timerDeadline <= deadline + 1) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = setTimeout(this.onTimer, Math.ceil(timeout));
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.timerDeadline = Infinity;
    const native = this.native;
    if (native === null || this.released) return;
    native.onTimeout();
    try {
      this.service();
    } catch (error) {
      this.host.logger.error(`connection ${this.remoteAddress}: handler threw: ${(error as Error).stack ?? error}`);
    }
  };

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.closing = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const stream of this.streams.values()) stream.detach();
    this.streams.clear();
    this.streamsWithOutput.clear();
    if (!this.closeNotified) this.notifyClosed(this.native);
    this.host.connectionReleased(this);
  }
}
