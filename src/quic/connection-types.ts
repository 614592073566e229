// The shapes around a QuicConnection: what it reports (close info, stats) and what it needs from
// its endpoint (ConnectionHost). Kept apart so connection.ts holds only the event loop.

import type { Logger } from '../log/logger.js';
import type { QuicConnection } from './connection.js';
import type { DatagramSocket } from './datagram.js';

export type QuicDirection = 'inbound' | 'outbound';

export interface QuicCloseInfo {
  /** True when this side closed (close(), a local protocol/TLS error, idle timeout, shutdown). */
  local: boolean;
  errorCode: number;
  reason: string;
  /** Application close (our APP_* codes) rather than a transport/TLS error. */
  isApp: boolean;
  /** Closed by the idle timeout: the peer went silent. */
  timedOut: boolean;
}

export interface QuicConnectionStats {
  direction: QuicDirection;
  remoteAddress: string;
  established: boolean;
  streams: number;
  streamsWithOutput: number;
  rttMs: number | null;
  cwndBytes: number | null;
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  bytesSent: number;
  bytesReceived: number;
}

/** The endpoint side of a connection: socket, buffers and the shared flush scheduler. */
export interface ConnectionHost {
  readonly logger: Logger;
  readonly maxStreamBuffer: number;
  /** Scratch buffer for streamRecv; views into it are handed to onData. */
  readonly receiveBuffer: Uint8Array;
  /** Where quiche writes outgoing datagrams in place (buffer(), queue(), flush()). */
  readonly socket: DatagramSocket;
  scheduleService(connection: QuicConnection): void;
  /** Handshake finished (for inbound connections the endpoint announces it). */
  connectionEstablished(connection: QuicConnection): void;
  /** quiche is done with the connection: drop routing entries. */
  connectionReleased(connection: QuicConnection): void;
}
