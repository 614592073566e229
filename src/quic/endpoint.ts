// One datagram socket per daemon (PROTOCOL.md section 1), used both to accept and to dial.
//
// Routing: every datagram is routed by its destination connection ID, read in JS straight from
// the RFC 8999 invariant header (no native call). We always issue 20-byte connection IDs that
// carry their own routing index (connection-ids.ts), so a short-header packet — the whole data
// path — finds its connection by array index and byte compare, with no string or hash. Only the
// DCID a client picked for its first Initials (it knows none of ours yet) is looked up by string.
// Unknown DCIDs are accepted as new connections only for QUIC v1 Initial packets of full size
// (>= 1200 bytes, RFC 9000 section 14.1).
// Skipped on purpose: version negotiation (a non-v1 client is dropped silently), Retry / address
// validation tokens (quiche's 3x amplification limit still applies) and stateless resets.
//
// The socket is a DatagramSocket (datagram.ts): UDP by default, an in-memory network in tests.

import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { quiche } from '@matrixai/quic/native/index.js';
import type { Config, Connection } from '@matrixai/quic/native/index.js';
import type { Logger } from '../log/logger.js';
import { formatHostPort, hostPortProblem, parseHostPort, type HostPort, type HostPortOptions } from '../netgraph/hostport.js';
import { QuicConnection, type ConnectionHost } from './connection.js';
import { CONNECTION_ID_LENGTH, ConnectionIdTable } from './connection-ids.js';
import type { DatagramSocket } from './datagram.js';
import { APP_SHUTDOWN } from './errors.js';
import { buildQuicheConfig, VIBEPN_ALPN, type CongestionControl } from './tls.js';
import { UdpDatagramSocket } from './udp-socket.js';
import { isVirtualHost, VIRTUAL_PATH_UDP_PAYLOAD } from './virtual-path.js';

export interface QuicEndpointOptions {
  /**
   * An IP literal and port, e.g. {host: '0.0.0.0', port: 51820} or "[::]:51820" (text is parsed
   * by netgraph's parseHostPort). Port 0 picks a free port (see .port after start()).
   */
  listen: HostPort | string;
  /** Carries the datagrams; default a new UdpDatagramSocket. The endpoint binds and closes it. */
  socket?: DatagramSocket;
  /** Wraps the socket, e.g. to carry virtual paths through relays (src/relay/relayed-socket.ts). */
  wrapSocket?: (socket: DatagramSocket) => DatagramSocket;
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

const QUIC_V1 = 1;
const RECEIVE_BUFFER_BYTES = 64 * 1024;

interface Routes {
  ids: Uint8Array[];
  /** The client's chosen DCID (latin1), for an inbound connection. */
  initialKey: string | null;
}

export class QuicEndpoint implements ConnectionHost {
  /** Inbound connection whose TLS handshake completed; peerCertDer() is available. */
  onConnection: (connection: QuicConnection) => void = () => {};

  readonly logger: Logger;
  readonly maxStreamBuffer: number;
  readonly receiveBuffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
  readonly socket: DatagramSocket;

  private readonly family: 4 | 6;
  private readonly bindHost: string;
  private readonly bindPort: number;
  private local: HostPort = { host: '', port: 0 };
  private readonly config: Config;
  /** For connections on a virtual path (virtual-path.ts): smaller packets, to fit inside a relay's. */
  private readonly virtualPathConfig: Config;
  private readonly maxPendingInbound: number;
  private state: 'new' | 'starting' | 'running' | 'closed' = 'new';

  private readonly routeTable = new ConnectionIdTable<QuicConnection>();
  private readonly initialRoutes = new Map<string, QuicConnection>();
  private readonly routes = new Map<QuicConnection, Routes>();
  // Inbound connections still in their handshake: bounded, since each holds TLS state.
  private readonly pendingInbound = new Set<QuicConnection>();
  private readonly resolvingDials = new Set<QuicConnection>();

  private serviceQueue: QuicConnection[] = [];
  private spareServiceQueue: QuicConnection[] = [];
  private serviceImmediate: NodeJS.Immediate | null = null;

  constructor(options: QuicEndpointOptions) {
    this.logger = options.logger;
    const { host, port } = toHostPort(options.listen, { allowPortZero: true });
    const family = isIP(host);
    if (family === 0) {
      throw new Error(`listen address "${formatHostPort(host, port)}" must be an IP address (e.g. 0.0.0.0:51820 or [::]:51820)`);
    }
    this.family = family === 6 ? 6 : 4;
    this.bindHost = host;
    this.bindPort = port;
    this.maxStreamBuffer = options.maxStreamBuffer ?? 1024 * 1024;
    const maxUdpPayload = options.maxUdpPayload ?? 1350;
    this.maxPendingInbound = options.maxPendingInbound ?? 256;
    const tls = {
      certPem: options.certPem,
      keyPem: options.keyPem,
      alpn: options.alpn ?? VIBEPN_ALPN,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      congestionControl: options.congestionControl ?? 'cubic',
    };
    this.config = buildQuicheConfig({ ...tls, maxUdpPayload });
    this.virtualPathConfig = buildQuicheConfig({ ...tls, maxUdpPayload: Math.min(maxUdpPayload, VIRTUAL_PATH_UDP_PAYLOAD) });
    const socket = options.socket ?? new UdpDatagramSocket({ maxDatagramBytes: maxUdpPayload, logger: this.logger });
    this.socket = options.wrapSocket ? options.wrapSocket(socket) : socket;
    this.socket.onDatagram = this.onDatagram;
  }

  /** Creates an endpoint and binds its socket. */
  static async listen(options: QuicEndpointOptions): Promise<QuicEndpoint> {
    const endpoint = new QuicEndpoint(options);
    await endpoint.start();
    return endpoint;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('QuicEndpoint.start() called twice');
    this.state = 'starting';
    try {
      await this.socket.bind(this.bindHost, this.bindPort);
    } catch (error) {
      if (this.state === 'starting') this.state = 'new';
      throw error;
    }
    if (this.state !== 'starting') return;
    this.local = { host: this.bindHost, port: this.socket.port };
    this.state = 'running';
    this.logger.info(`QUIC endpoint listening on ${this.localAddress}`);
  }

  /** The bound port (the real one when listening on port 0). */
  get port(): number {
    return this.socket.port;
  }

  /** The bound address as "host:port" ("[::]:51820" for IPv6). */
  get localAddress(): string {
    return formatHostPort(this.bindHost, this.socket.port);
  }

  get connectionCount(): number {
    return this.routes.size;
  }

  /**
   * Dials a hostname, IPv4 or IPv6 address and port ({host, port}, or "host:port" text with
   * brackets around IPv6). Returns at once; the connection reports onEstablished or onClose.
   * Hostnames are resolved once here, never per packet.
   */
  connect(target: HostPort | string): QuicConnection {
    if (this.state !== 'running') {
      const what = typeof target === 'string' ? target : formatHostPort(target.host, target.port);
      throw new Error(`cannot dial ${what}: the QUIC endpoint is not running`);
    }
    const { host, port } = toHostPort(target, {});
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
    for (const connection of [...this.routes.keys()]) {
      connection.shutdown(APP_SHUTDOWN, 'endpoint shutting down');
    }
    for (const connection of this.resolvingDials) connection.failBeforeStart('endpoint shut down while resolving');
    this.resolvingDials.clear();
    if (this.serviceImmediate !== null) clearImmediate(this.serviceImmediate);
    this.serviceImmediate = null;
    this.serviceQueue.length = 0;
    await this.socket.close();
  }

  // ---- receive path ----

  private readonly onDatagram = (data: Uint8Array, host: string, port: number): void => {
    if (this.state !== 'running') return;
    const first = data[0];
    if (first === undefined) return;
    try {
      if ((first & 0x80) === 0) {
        // Short header: only IDs we issued can name a connection; anything else is stale or noise.
        if (data.length < 1 + CONNECTION_ID_LENGTH) return;
        this.routeTable.lookup(data, 1)?.receiveDatagram(data, host, port);
        return;
      }
      const dcidLength = data[5];
      if (dcidLength === undefined || dcidLength > CONNECTION_ID_LENGTH || data.length < 6 + dcidLength) return;
      let connection = dcidLength === CONNECTION_ID_LENGTH ? this.routeTable.lookup(data, 6) : undefined;
      if (connection !== undefined) {
        connection.receiveDatagram(data, host, port);
        return;
      }
      // Not one of our IDs: only a client's Initial can legitimately carry another DCID.
      if ((first & 0x30) !== 0) return;
      const key = String.fromCharCode(...data.subarray(6, 6 + dcidLength));
      connection = this.initialRoutes.get(key);
      if (connection !== undefined) connection.receiveDatagram(data, host, port);
      else this.acceptInitial(data, key, host, port);
    } catch (error) {
      this.logger.error(`handling a datagram from ${formatHostPort(host, port)}: ${(error as Error).stack ?? error}`);
    }
  };

  private acceptInitial(data: Uint8Array, dcidKey: string, host: string, port: number): void {
    const first = data[0]!;
    // Long header, QUIC v1, packet type Initial (bits 4-5 == 0), padded to the minimum size.
    if ((first & 0x80) === 0 || (first & 0x30) !== 0 || data.length < quiche.MIN_CLIENT_INITIAL_LEN) return;
    if (data[1] !== 0 || data[2] !== 0 || data[3] !== 0 || data[4] !== QUIC_V1) return;
    if (this.pendingInbound.size >= this.maxPendingInbound) {
      this.logger.warn(`dropping handshake from ${formatHostPort(host, port)}: ${this.pendingInbound.size} handshakes already pending`);
      return;
    }
    const connection = new QuicConnection('inbound', formatHostPort(host, port), this);
    const scid = this.routeTable.allocate(connection);
    if (scid === null) {
      this.logger.warn(`dropping handshake from ${formatHostPort(host, port)}: no connection ID left`);
      return;
    }
    let native: Connection;
    try {
      native = quiche.Connection.accept(scid, null, this.local, { host, port }, isVirtualHost(host) ? this.virtualPathConfig : this.config);
    } catch (error) {
      this.routeTable.release(scid);
      throw error;
    }
    // The client keeps using its chosen DCID until our first reply arrives, so route both.
    this.routes.set(connection, { ids: [scid], initialKey: dcidKey });
    this.initialRoutes.set(dcidKey, connection);
    this.pendingInbound.add(connection);
    connection.attach(native, this.local.host, this.local.port, host, port);
    connection.receiveDatagram(data, host, port);
  }

  private startDial(connection: QuicConnection, host: string, port: number): void {
    const remoteHost = this.family === 6 && isIP(host) === 4 ? `::ffff:${host}` : host;
    if (this.family === 4 && isIP(remoteHost) === 6) {
      connection.failBeforeStart(`cannot dial IPv6 ${remoteHost} from an IPv4 endpoint; listen on [::] instead`);
      return;
    }
    const scid = this.routeTable.allocate(connection);
    if (scid === null) {
      connection.failBeforeStart(`cannot dial ${connection.remoteAddress}: no connection ID left (too many connections)`);
      return;
    }
    let native: Connection;
    try {
      native = quiche.Connection.connect(null, scid, this.local, { host: remoteHost, port }, isVirtualHost(remoteHost) ? this.virtualPathConfig : this.config);
    } catch (error) {
      this.routeTable.release(scid);
      connection.failBeforeStart(`cannot dial ${connection.remoteAddress}: ${(error as Error).message}`);
      return;
    }
    this.routes.set(connection, { ids: [scid], initialKey: null });
    connection.attach(native, this.local.host, this.local.port, remoteHost, port);
  }

  // ---- ConnectionHost ----

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
    const routes = this.routes.get(connection);
    if (routes === undefined) return;
    this.routes.delete(connection);
    for (const id of routes.ids) this.routeTable.release(id);
    const key = routes.initialKey;
    if (key !== null && this.initialRoutes.get(key) === connection) this.initialRoutes.delete(key);
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

/**
 * Text (tests, tools) goes through the project's one host:port parser; a HostPort (from the
 * config, already parsed) is checked by the same rules on its parts, without text.
 */
function toHostPort(value: HostPort | string, options: HostPortOptions): HostPort {
  if (typeof value !== 'string') {
    const problem = hostPortProblem(value, options);
    if (problem !== null) throw new Error(problem);
    return value;
  }
  const parsed = parseHostPort(value, options);
  if (!parsed.ok) throw new Error(parsed.error);
  return { host: parsed.host, port: parsed.port };
}
