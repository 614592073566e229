// TUN → peer. Each peer has one long-lived raw stream (PROTOCOL.md section 6, fix: never a
// stream per packet) on the connection that carries its active session. Frames of one TUN batch
// are packed back to back into a buffer and handed to the stream in one write, so a batch of
// packets costs one copy and, past 16 KiB, one native call.

import type { QuicConnection } from '../quic/connection.js';
import type { QuicStream } from '../quic/stream.js';
import type { FrameEncoder } from './frame.js';
import { MAX_FRAME_LENGTH } from './frame.js';

/** A batch is flushed to the stream when it reaches this size, or at the end of a TUN batch. */
const BATCH_BYTES = 64 * 1024;
/**
 * Queue limit per peer stream: past this many bytes waiting in the stream (congestion window
 * full), new packets are dropped and counted. A VPN must drop, not queue: TCP inside the tunnel
 * reacts to loss, and a deep queue only adds latency. 1 MiB is ~8 ms at 1 Gbit/s.
 */
export const SEND_QUEUE_LIMIT = 1024 * 1024;

/** What the peer said it takes, owned by its control session (a C message may come at any time). */
export interface ReceiverCapabilities {
  readonly superSegments: boolean;
}

export class PeerSender {
  private stream: QuicStream | null = null;
  private readonly batch = new Uint8Array(BATCH_BYTES + MAX_FRAME_LENGTH);
  private batchLength = 0;
  /** Set while this sender is listed for a flush at the end of the current TUN batch. */
  pendingFlush = false;

  constructor(
    private connection: QuicConnection,
    private capabilities: ReceiverCapabilities,
  ) {}

  /** Whether TCP super-segments may go to this peer whole (it announced it takes them). */
  get takesSuperSegments(): boolean {
    return this.capabilities.superSegments;
  }

  /** Another connection (and its session) now carries the peer's traffic: later packets go there. */
  retarget(connection: QuicConnection, capabilities: ReceiverCapabilities): void {
    this.capabilities = capabilities;
    if (connection === this.connection) return;
    this.flush();
    this.stream?.end();
    this.stream = null;
    this.connection = connection;
  }

  /** Appends one frame; false when the peer's queue is full or its connection is closing (caller counts the drop). */
  add(encoder: FrameEncoder, packet: Uint8Array): boolean {
    const stream = this.ensureStream();
    if (!stream || stream.bufferedBytes >= SEND_QUEUE_LIMIT) return false;
    if (this.batchLength >= BATCH_BYTES) this.flush();
    this.batchLength = encoder.writeInto(this.batch, this.batchLength, packet);
    return true;
  }

  /** Appends a super-segment frame; only for a peer that takesSuperSegments. False as add(). */
  addSuperSegment(encoder: FrameEncoder, packet: Uint8Array, gsoSize: number): boolean {
    const stream = this.ensureStream();
    if (!stream || stream.bufferedBytes >= SEND_QUEUE_LIMIT) return false;
    if (this.batchLength >= BATCH_BYTES) this.flush();
    this.batchLength = encoder.writeSuperSegmentInto(this.batch, this.batchLength, packet, gsoSize);
    return true;
  }

  flush(): void {
    this.pendingFlush = false;
    if (this.batchLength === 0) return;
    const stream = this.stream;
    // write() copies, so the batch buffer is free again as soon as it returns.
    if (stream) stream.write(this.batch.subarray(0, this.batchLength));
    this.batchLength = 0;
  }

  close(): void {
    this.batchLength = 0;
    this.stream?.end();
    this.stream = null;
  }

  private ensureStream(): QuicStream | null {
    // A closing connection keeps its streams writable until it is released; what it would take
    // now is never sent, so it is refused (and counted) here.
    if (this.connection.isClosed) return null;
    if (this.stream?.writable) return this.stream;
    let stream: QuicStream;
    try {
      stream = this.connection.openStream();
    } catch {
      // The peer's stream limit is used up: drop until the session's connection changes.
      return null;
    }
    this.stream = stream;
    // Nothing comes back on our data stream; a reset by the peer means open a fresh one.
    stream.onReset = () => {
      if (this.stream === stream) this.stream = null;
    };
    return stream;
  }
}
