// The plain reads of a quiche connection that QuicConnection's event loop needs besides streams:
// DATAGRAM frames (RFC 9221) each way, and the numbers `stats()` reports. Kept apart so
// connection.ts holds only the event loop.

import type { Connection } from '@matrixai/quic/native/index.js';
import type { QuicConnectionStats } from './connection-types.js';

/** Queues one DATAGRAM frame; false when quiche's bounded queue is full or it does not fit. */
export function queueDatagram(native: Connection, data: Uint8Array): boolean {
  try {
    return !native.isDgramSendQueueFull() && native.dgramSend(data) !== null;
  } catch {
    // Too large for the path, or the peer did not offer DATAGRAM frames.
    return false;
  }
}

/** Hands every received DATAGRAM frame to `deliver`, as views into `buffer`. */
export function drainDatagrams(native: Connection, buffer: Uint8Array, deliver: (data: Uint8Array) => void): void {
  for (;;) {
    let length: number | null;
    try {
      length = native.dgramRecv(buffer);
    } catch {
      return;
    }
    if (length === null) return;
    deliver(buffer.subarray(0, length));
  }
}

type ConnectionFacts = Pick<QuicConnectionStats, 'direction' | 'remoteAddress' | 'established' | 'streams' | 'streamsWithOutput'>;

export function statsOf(native: Connection | null, facts: ConnectionFacts): QuicConnectionStats {
  const stats = native?.stats();
  const path = native?.pathStats()[0];
  return {
    ...facts,
    rttMs: path ? path.rtt : null,
    cwndBytes: path ? path.cwnd : null,
    packetsSent: stats?.sent ?? 0,
    packetsReceived: stats?.recv ?? 0,
    packetsLost: stats?.lost ?? 0,
    bytesSent: stats?.sentBytes ?? 0,
    bytesReceived: stats?.recvBytes ?? 0,
  };
}
