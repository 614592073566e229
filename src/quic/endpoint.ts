// One UDP socket per daemon (PROTOCOL.md section 1), used both to accept and to dial.
//
// Routing: every datagram is routed by its destination connection ID, read in JS straight from
// the RFC 8999 invariant header (no native call): we always issue 20-byte connection IDs, so a
// short-header packet's DCID is bytes 1..21. Unknown DCIDs are accepted as new connections only
// for QUIC v1 Initial packets of full size (>= 1200 bytes, RFC 9000 section 14.1).
// Skipped on purpose: version negotiation (a non-v1 client is dropped silently), Retry / address
// validation tokens (quiche's 3x amplification limit still applies) and stateless resets.
//
// Sending: node's dgram normally resolves the destination through dns.lookup, which defers every
// send to the next tick; a synchronous lookup (addresses here are always IP literals from quiche)
// makes socket.send go straight to uv_udp_try_send. The kernel usually copies the datagram at
// once, but when the socket buffer is full libuv keeps a reference and sends later, so a buffer is
// never reused: datagrams are carved from a slab and the slab is replaced when used up.
// On Linux the native batch sender (batch-send.ts) replaces all that: a connection's datagrams
// collect in one reused buffer and go to the kernel in one call when its flush ends, since the
// kernel copies them before the call returns.
// Receiving: on Linux the native batch receiver (batch-receive.ts) replaces dgram's 'message'
// event per datagram with one callback per recvmmsg() batch.

import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import { randomFillSync } from 'node:crypto';
import { isIP } from 'node:net';
import { quiche } from '@matrixai/quic/native/index.js';
import type { Config } from '@matrixai/quic/native/index.js';
import type { Logger } from '../log/logger.js';
import { QuicConnection, type ConnectionHost } from './connection.js';
import { openBatchSender, type BatchSender } from './batch-send.js';
import { openBatchReceiver, type BatchReceiver } from './batch-receive.js';
import { APP_SHUTDOWN } from './errors.js';
import { formatHostPort, parseHostPort } from './hostport.js';
import { buildQuicheConfig, VIBEPN_ALPN, type CongestionControl } from './tls.js';

export interface QuicEndpointOptions {
  /** "0.0.0.0:51820", "[::]:51820"; port 0 picks a free port (see .port after start()). */
  listen: string;
  certPem: string;
  keyPem: string;
  alpn?: string;
  idleTimeoutMs?: number;
  logger: Logger;
  /** Per-stream send queue high-water mark in bytes (default 1 MiB); write() refuses above 4x. */
  maxStreamBuffer?: number;
  /** Largest UDP payload we send (default 1350; 1452 fits any 1500-MTU path, IPv6 included). */
  maxUdpPayload?: number;
  congestionControl?: CongestionControl;
  /** Handshakes in progress from unknown peers beyond which new Initials are dropped. */
  maxPendingInbound?: number;
}

const CONNECTION_ID_LENGTH = 20;
const QUIC_V1 = 1;
const SLAB_BYTES = 256 * 1024;
const RECEIVE_BUFFER_BYTES = 64 * 1024;
// Large socket buffers absorb a congestion window's burst; the kernel caps them at rmem_max/wmem_max.
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
// Datagrams per native batch send; a connection's flush yields after 128 (connection.ts).
const BATCH_DATAGRAMS = 128;

const BIND_ERRNO_MEANING: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use (is another vpn running?); stop the other process or set daemon.listen to another address',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); set daemon.listen to another port',
  EADDRNOTAVAIL: 'no local interface has this address; set daemon.listen to an address of this machine or 0.0.0.0',
};

export class QuicEndpoint implements ConnectionHost {
  /** Inbound connection whose TLS handshake completed; peerCertDer() is available. */
  onConnection: (connection: QuicConnection) => void = () => {};

  readonly logger: Logger;
  readonly maxStreamBuffer: number;
  readonly receiveBuffer = new Uint8Array(RECEIVE_BUFFER_BYTES);

  private readonly socket: dgram.Socket;
  private readonly family: 4 | 6;
  private readonly bindHost: string;
  private readonly bindPort: number;
  private boundPort = 0;
  private readonly config: Config;
  private readonly maxUdpPayload: number;
  private readonly maxPendingInbound: number;
  private state: 'new' | 'running' | 'closed' = 'new';

  private readonly byConnectionId = new Map<string, QuicConnection>();
  private readonly connectionIds = new Map<QuicConnection, string[]>();
  // Inbound connections still in their handshake: bounded, since each holds TLS state.
  private readonly pendingInbound = new Set<QuicConnection>();
  private readonly resolvingDials = new Set<QuicConnection>();

  private serviceQueue: QuicConnection[] = [];
  private spareServiceQueue: QuicConnection[] = [];
  private serviceImmediate: NodeJS.Immediate | null = null;

  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private slabOffset = 0;

  private batchSender: BatchSender | null = null;
  private batchReceiver: BatchReceiver | null = null;
  private batchBuffer = new Uint8Array(0);
  private readonly batchLengths = new Uint32Array(BATCH_DATAGRAMS);
  private batchCount = 0;
  private batchBytes = 0;
  private batchHost = '';
  private batchPort = 0;

  constructor(options: QuicEndpointOptions) {
    this.logger = options.logger;
    const { host, port } = parseHostPort(options.listen);
    const family = isIP(host);
    if (family === 0) {
      throw new Error(`listen address "${options.listen}" must be an IP address (e.g. 0.0.0.0:51820 or [::]:51820)`);
    }
    this.family = family === 6 ? 6 : 4;
    this.bindHost = host;
    this.bindPort = port;
    this.maxStreamBuffer = options.maxStreamBuffer ?? 1024 * 1024;
    this.maxUdpPayload = options.maxUdpPayload ?? 1350;
    this.maxPendingInbound = options.maxPendingInbound ?? 256;
    this.config = buildQuicheConfig({
      certPem: options.certPem,
      keyPem: options.keyPem,
      alpn: options.alpn ?? VIBEPN_ALPN,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      maxUdpPayload: this.maxUdpPayload,
      congestionControl: options.congestionControl ?? 'cubic',
    });
    this.socket = dgram.createSocket({
      type: this.family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: SOCKET_BUFFER_BYTES,
      sendBufferSize: SOCKET_BUFFER_BYTES,
      lookup: (address, _options, callback) => {
        (callback as (err: Error | null, address: string, family: number) => void)(null, address, this.family);
      },
    });
    this.socket.on('message', this.onMessage);
  }

  /** Creates an endpoint and binds its socket. */
  static async listen(options: QuicEndpointOptions): Promise<QuicEndpoint> {
    const endpoint = new QuicEndpoint(options);
    await endpoint.start();
    return endpoint;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('QuicEndpoint.start() called twice');
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        const meaning = (error.code && BIND_ERRNO_MEANING[error.code]) ?? error.message;
        reject(new Error(`cannot bind UDP ${formatHostPort(this.bindHost, this.bindPort)}: ${meaning}`));
      };
      this.socket.once('error', onError);
      this.socket.bind(this.bindPort, this.bindHost, () => {
        this.socket.off('error', onError);
        // Only now: a failed bind is reported once, by the rejection above.
        this.socket.on('error', (error) => this.logger.error(`UDP socket ${formatHostPort(this.bindHost, this.boundPort)}: ${error.message}`));
        resolve();
      });
    });
    this.boundPort = this.socket.address().port;
    this.batchSender = openBatchSender(this.socket);
    if (this.batchSender !== null) this.batchBuffer = new Uint8Array(BATCH_DATAGRAMS * this.maxUdpPayload);
    this.batchReceiver = openBatchReceiver(this.socket, this.onDatagram, (message) =>
      this.logger.error(`UDP socket ${formatHostPort(this.bindHost, this.boundPort)}: ${message}`),
    );
    if (this.batchReceiver !== null) this.socket.off('message', this.onMessage);
    this.state = 'running';
    this.logger.info(`QUIC endpoint listening on ${formatHostPort(this.bindHost, this.boundPort)}`);
  }

  /** The bound UDP port (the real one when listening on port 0). */
  get port(): number {
    return this.boundPort;
  }

  /** The bound address as "host:port" ("[::]:51820" for IPv6). */
  get localAddress(): string {
    return formatHostPort(this.bindHost, this.boundPort);
  }

  get connectionCount(): number {
    return this.connectionIds.size;
  }

  /**
   * Dials "host:port" (hostname, IPv4 or [IPv6]). Returns at once; the connection reports
   * onEstablished or onClose. Hostnames are resolved once here, never per packet.
   */
  connect(hostPort: string): QuicConnection {
    if (this.state !== 'running') throw new Error(`cannot dial ${hostPort}: the QUIC endpoint is not running`);
    const { host, port } = parseHostPort(hostPort);
    const connection = new QuicConnection('outbound', formatHostPort(host, port), this);
    if (isIP(host) !== 0) {
      this.startDial(connection, host, port);
    } else {
      this.resolvingDials.add(connection);
      dnsLookup(host, { family: this.family === 4 ? 4 : 0 }).then(
        (resolved) => {
          this.resolvingDials.delete(connection);
          if (connection.isClosed || this.state !== 'running') return;
          this.startDial(connection, resolved.address, port);
        },
        (error: Error) => {
          this.resolvingDials.delete(connection);
          connection.failBeforeStart(`cannot resolve ${host}: ${error.message}`);
        },
      );
    }
    return connection;
  }

  /** Closes every connection (application code APP_SHUTDOWN) and the socket. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const connection of [...this.connectionIds.keys()]) {
      connection.shutdown(APP_SHUTDOWN, 'endpoint shutting down');
    }
    for (const connection of this.resolvingDials) connection.failBeforeStart('endpoint shut down while resolving');
    this.resolvingDials.clear();
    if (this.serviceImmediate !== null) clearImmediate(this.serviceImmediate);
    this.serviceImmediate = null;
    this.serviceQueue.length = 0;
    // The fd is about to be closed and its number may be reused: nothing may send on it after this.
    this.batchSender = null;
    this.batchCount = 0;
    this.batchReceiver?.close();
    this.batchReceiver = null;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  // ---- receive path ----

  private readonly onMessage = (data: Buffer, remote: dgram.RemoteInfo): void => {
    this.onDatagram(data, remote.address, remote.port);
  };

  private readonly onDatagram = (data: Buffer, host: string, port: number): void => {
    if (this.state !== 'running') return;
    const first = data[0];
    if (first === undefined) return;
    let key: string;
    if ((first & 0x80) === 0) {
      if (data.length < 1 + CONNECTION_ID_LENGTH) return;
      key = data.toString('latin1', 1, 1 + CONNECTION_ID_LENGTH);
    } else {
      const dcidLength = data[5];
      if (dcidLength === undefined || dcidLength > CONNECTION_ID_LENGTH || data.length < 6 + dcidLength) return;
      key = data.toString('latin1', 6, 6 + dcidLength);
    }
    const connection = this.byConnectionId.get(key);
    try {
      if (connection !== undefined) {
        connection.receiveDatagram(data, host, port);
      } else {
        this.acceptInitial(data, key, host, port);
      }
    } catch (error) {
      this.logger.error(`handling a datagram from ${formatHostPort(host, port)}: ${(error as Error).stack ?? error}`);
    }
  };

  private acceptInitial(data: Buffer, dcidKey: string, host: string, port: number): void {
    const first = data[0]!;
    // Long header, QUIC v1, packet type Initial (bits 4-5 == 0), padded to the minimum size.
    if ((first & 0x80) === 0 || (first & 0x30) !== 0 || data.length < quiche.MIN_CLIENT_INITIAL_LEN) return;
    if (data.readUInt32BE(1) !== QUIC_V1) return;
    if (this.pendingInbound.size >= this.maxPendingInbound) {
      this.logger.warn(`dropping handshake from ${formatHostPort(host, port)}: ${this.pendingInbound.size} handshakes already pending`);
      return;
    }
    const scid = this.newConnectionId();
    const native = quiche.Connection.accept(
      scid,
      null,
      { host: this.bindHost, port: this.boundPort },
      { host, port },
      this.config,
    );
    const connection = new QuicConnection('inbound', formatHostPort(host, port), this);
    // The client keeps using its chosen DCID until our first reply arrives, so route both.
    this.register(connection, [Buffer.from(scid).toString('latin1'), dcidKey]);
    this.pendingInbound.add(connection);
    connection.attach(native, this.bindHost, this.boundPort, host, port);
    connection.receiveDatagram(data, host, port);
  }

  private startDial(connection: QuicConnection, host: string, port: number): void {
    const remoteHost = this.family === 6 && isIP(host) === 4 ? `::ffff:${host}` : host;
    if (this.family === 4 && isIP(remoteHost) === 6) {
      connection.failBeforeStart(`cannot dial IPv6 ${remoteHost} from an IPv4 endpoint; listen on [::] instead`);
      return;
    }
    const scid = this.newConnectionId();
    let native;
    try {
      native = quiche.Connection.connect(
        null,
        scid,
        { host: this.bindHost, port: this.boundPort },
        { host: remoteHost, port },
        this.config,
      );
    } catch (error) {
      connection.failBeforeStart(`cannot dial ${connection.remoteAddress}: ${(error as Error).message}`);
      return;
    }
    this.register(connection, [Buffer.from(scid).toString('latin1')]);
    connection.attach(native, this.bindHost, this.boundPort, remoteHost, port);
  }

  private newConnectionId(): Uint8Array {
    const id = new Uint8Array(CONNECTION_ID_LENGTH);
    randomFillSync(id);
    return id;
  }

  private register(connection: QuicConnection, keys: string[]): void {
    for (const key of keys) this.byConnectionId.set(key, connection);
    this.connectionIds.set(connection, keys);
  }

  // ---- ConnectionHost ----

  datagramBuffer(): Uint8Array {
    if (this.batchSender !== null) {
      if (this.batchCount === BATCH_DATAGRAMS) this.flushDatagrams();
      return this.batchBuffer.subarray(this.batchBytes, this.batchBytes + this.maxUdpPayload);
    }
    if (this.slabOffset + this.maxUdpPayload > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabOffset = 0;
    }
    return this.slab.subarray(this.slabOffset, this.slabOffset + this.maxUdpPayload);
  }

  sendDatagram(buffer: Uint8Array, length: number, port: number, host: string): void {
    if (this.batchSender !== null) {
      if (this.batchCount > 0 && (port !== this.batchPort || host !== this.batchHost)) {
        // One native send has one destination: send the others, then move this one to the front.
        const start = this.batchBytes;
        this.flushDatagrams();
        this.batchBuffer.copyWithin(0, start, start + length);
      }
      this.batchHost = host;
      this.batchPort = port;
      this.batchLengths[this.batchCount++] = length;
      this.batchBytes += length;
      return;
    }
    // Keep the next datagram 8-byte aligned; the bytes just written now belong to the socket.
    this.slabOffset += (length + 7) & ~7;
    // No callback: UDP loss is quiche's business, and a callback would cost a tick per datagram.
    this.socket.send(buffer, 0, length, port, host);
  }

  flushDatagrams(): void {
    const count = this.batchCount;
    if (count === 0 || this.batchSender === null) return;
    this.batchCount = 0;
    this.batchBytes = 0;
    // Datagrams the kernel would not take (socket buffer full) are lost like any other: quiche
    // retransmits, as it would after a drop on the path.
    this.batchSender.send(this.batchBuffer, this.batchLengths, count, this.batchHost, this.batchPort);
  }

  scheduleService(connection: QuicConnection): void {
    if (connection.serviceQueued || this.state === 'closed') return;
    connection.serviceQueued = true;
    this.serviceQueue.push(connection);
    if (this.serviceImmediate === null) this.serviceImmediate = setImmediate(this.runServiceQueue);
  }

  connectionEstablished(connection: QuicConnection): void {
    if (this.pendingInbound.delete(connection)) this.onConnection(connection);
  }

  connectionReleased(connection: QuicConnection): void {
    this.pendingInbound.delete(connection);
    const keys = this.connectionIds.get(connection);
    if (keys === undefined) return;
    this.connectionIds.delete(connection);
    for (const key of keys) {
      if (this.byConnectionId.get(key) === connection) this.byConnectionId.delete(key);
    }
  }

  private readonly runServiceQueue = (): void => {
    this.serviceImmediate = null;
    // Swap queues: connections scheduled while servicing (e.g. a write from onData) run next turn.
    const queue = this.serviceQueue;
    this.serviceQueue = this.spareServiceQueue;
    this.spareServiceQueue = queue;
    for (let i = 0; i < queue.length; i++) {
      const connection = queue[i]!;
      connection.serviceQueued = false;
      try {
        connection.service();
      } catch (error) {
        this.logger.error(`connection ${connection.remoteAddress}: handler threw: ${(error as Error).stack ?? error}`);
        this.scheduleService(connection);
      }
    }
    queue.length = 0;
  };
}
