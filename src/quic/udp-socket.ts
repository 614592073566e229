// The real DatagramSocket: one UDP socket, node's dgram for binding and closing, native batch
// send/receive (batch-send.ts, batch-receive.ts) on Linux.
//
// Sending: node's dgram normally resolves the destination through dns.lookup, which defers every
// send to the next tick; a synchronous lookup (addresses here are always IP literals from quiche)
// makes socket.send go straight to uv_udp_try_send. The kernel usually copies the datagram at
// once, but when the socket buffer is full libuv keeps a reference and sends later, so a buffer is
// never reused: datagrams are carved from a slab and the slab is replaced when used up.
// On Linux the native batch sender replaces all that: queued datagrams collect in one reused
// buffer and go to the kernel in one call at flush(), since the kernel copies them before the
// call returns.
// Receiving: on Linux the native batch receiver replaces dgram's 'message' event per datagram
// with one callback per recvmmsg() batch.

import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from '../log/logger.js';
import { formatHostPort } from '../netgraph/hostport.js';
import { openBatchSender, type BatchSender } from './batch-send.js';
import { openBatchReceiver, type BatchReceiver } from './batch-receive.js';
import type { DatagramSocket } from './datagram.js';

export interface UdpDatagramSocketOptions {
  /** Largest datagram ever queued: the size of every buffer(). */
  maxDatagramBytes: number;
  /** Receives socket errors after a successful bind; they do not stop the socket. */
  logger: Logger;
}

const SLAB_BYTES = 256 * 1024;
// Large socket buffers absorb a congestion window's burst; the kernel caps them at rmem_max/wmem_max.
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
// Datagrams per native batch send; a connection's flush yields after 128 (connection.ts).
const BATCH_DATAGRAMS = 128;

const BIND_ERRNO_MEANING: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use (is another vpn running?); stop the other process or set daemon.listen to another address',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); set daemon.listen to another port',
  EADDRNOTAVAIL: 'no local interface has this address; set daemon.listen to an address of this machine or 0.0.0.0',
};

export class UdpDatagramSocket implements DatagramSocket {
  onDatagram: (data: Uint8Array, host: string, port: number) => void = () => {};

  private readonly maxDatagramBytes: number;
  private readonly logger: Logger;
  private socket: dgram.Socket | null = null;
  private host = '';
  private boundPort = 0;
  private closed = false;

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

  constructor(options: UdpDatagramSocketOptions) {
    this.maxDatagramBytes = options.maxDatagramBytes;
    this.logger = options.logger;
  }

  get port(): number {
    return this.boundPort;
  }

  async bind(host: string, port: number): Promise<void> {
    if (this.closed || this.socket !== null) throw new Error(`cannot bind UDP ${formatHostPort(host, port)}: the socket is already bound or closed`);
    const family = isIP(host);
    if (family === 0) throw new Error(`cannot bind UDP ${formatHostPort(host, port)}: "${host}" is not an IP address`);
    const socket = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: SOCKET_BUFFER_BYTES,
      sendBufferSize: SOCKET_BUFFER_BYTES,
      lookup: (address, _options, callback) => {
        (callback as (err: Error | null, address: string, family: number) => void)(null, address, family);
      },
    });
    socket.on('message', this.onMessage);
    this.socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => {
          const meaning = (error.code && BIND_ERRNO_MEANING[error.code]) ?? error.message;
          reject(new Error(`cannot bind UDP ${formatHostPort(host, port)}: ${meaning}`));
        };
        socket.once('error', onError);
        socket.bind(port, host, () => {
          socket.off('error', onError);
          // Only now: a failed bind is reported once, by the rejection above.
          socket.on('error', (error) => this.logger.error(`UDP socket ${formatHostPort(this.host, this.boundPort)}: ${error.message}`));
          resolve();
        });
      });
    } catch (error) {
      this.socket = null;
      socket.close();
      throw error;
    }
    // close() while binding already released the socket.
    if (this.closed) throw new Error(`cannot bind UDP ${formatHostPort(host, port)}: the socket was closed while binding`);
    this.host = host;
    this.boundPort = socket.address().port;
    this.batchSender = openBatchSender(socket);
    if (this.batchSender !== null) this.batchBuffer = new Uint8Array(BATCH_DATAGRAMS * this.maxDatagramBytes);
    this.batchReceiver = openBatchReceiver(socket, this.deliver, (message) =>
      this.logger.error(`UDP socket ${formatHostPort(this.host, this.boundPort)}: ${message}`),
    );
    if (this.batchReceiver !== null) socket.off('message', this.onMessage);
  }

  buffer(): Uint8Array {
    if (this.batchSender !== null) {
      if (this.batchCount === BATCH_DATAGRAMS) this.flush();
      return this.batchBuffer.subarray(this.batchBytes, this.batchBytes + this.maxDatagramBytes);
    }
    if (this.slabOffset + this.maxDatagramBytes > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabOffset = 0;
    }
    return this.slab.subarray(this.slabOffset, this.slabOffset + this.maxDatagramBytes);
  }

  queue(length: number, host: string, port: number): void {
    if (this.batchSender !== null) {
      if (this.batchCount > 0 && (port !== this.batchPort || host !== this.batchHost)) {
        // One native send has one destination: send the others, then move this one to the front.
        const start = this.batchBytes;
        this.flush();
        this.batchBuffer.copyWithin(0, start, start + length);
      }
      this.batchHost = host;
      this.batchPort = port;
      this.batchLengths[this.batchCount++] = length;
      this.batchBytes += length;
      return;
    }
    const socket = this.socket;
    if (socket === null) return;
    // Keep the next datagram 8-byte aligned; the bytes just written now belong to the socket.
    const buffer = this.slab;
    const offset = this.slabOffset;
    this.slabOffset += (length + 7) & ~7;
    // No callback: UDP loss is quiche's business, and a callback would cost a tick per datagram.
    socket.send(buffer, offset, length, port, host);
  }

  flush(): void {
    const count = this.batchCount;
    if (count === 0 || this.batchSender === null) return;
    this.batchCount = 0;
    this.batchBytes = 0;
    // Datagrams the kernel would not take (socket buffer full) are lost like any other: quiche
    // retransmits, as it would after a drop on the path.
    this.batchSender.send(this.batchBuffer, this.batchLengths, count, this.batchHost, this.batchPort);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The fd is about to be closed and its number may be reused: nothing may send on it after this.
    this.batchSender = null;
    this.batchCount = 0;
    this.batchBytes = 0;
    this.batchReceiver?.close();
    this.batchReceiver = null;
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private readonly deliver = (data: Uint8Array, host: string, port: number): void => {
    this.onDatagram(data, host, port);
  };

  private readonly onMessage = (data: Buffer, remote: dgram.RemoteInfo): void => {
    this.onDatagram(data, remote.address, remote.port);
  };
}
