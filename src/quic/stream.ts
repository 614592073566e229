// One bidirectional QUIC stream.
//
// Sending: write() copies into a per-stream queue of 64 KiB segments, and the connection's flush
// (once per event-loop turn) hands whole segments to quiche. Small writes — one IP packet each in
// the VPN — therefore cost a memcpy, not a native call; quiche only takes as much as the
// congestion window allows, the rest waits here. The queue is bounded: above the high-water mark
// write() returns false (wait for onDrain or drop), above 4x the high-water mark write() refuses
// the data outright.
//
// Receiving: onData gets a view into the endpoint's reused receive buffer, valid only during the
// callback; copy what must outlive it. There is no receive-side pause: the consumer must keep up
// or drop (a VPN drops; a TCP inside the tunnel retransmits).
//
// A stream is released when both directions are done: FIN or reset received, and our FIN queued
// or the stream reset. A consumer that only reads a peer-opened stream should end() or reset()
// its own side, or the stream stays open (and counts against the peer's stream limit) until the
// connection closes.

import type { Connection } from '@matrixai/quic/native/index.js';
import { quiche } from '@matrixai/quic/native/index.js';
import { isStreamLimit, streamErrorCode } from './errors.js';

/** Passed to onReset when the stream failed locally (e.g. the peer's stream limit) rather than by the peer. */
export const STREAM_LOCAL_FAILURE = -1;

const SEGMENT_BYTES = 64 * 1024;
// A write at least this large, arriving at an empty queue, goes straight to quiche instead of
// being copied first: the copy would cost more than the native call.
const DIRECT_WRITE_MIN = 16 * 1024;
const EMPTY = new Uint8Array(0);
/**
 * Sent segments kept for reuse. A data stream behind a full congestion window queues every
 * write, and a fresh 64 KiB buffer per segment is ~1 GB/s of allocation at line rate, which
 * shows up as GC work and resident memory.
 */
const SPARE_SEGMENTS = 4;

/** What a stream needs from its connection; keeps stream.ts free of connection internals. */
export interface StreamOwner {
  /** The quiche connection once the handshake is done and until close; null means "queue". */
  sendableNative(): Connection | null;
  /** The stream has queued data or a pending FIN: pump it in the next flush. */
  streamHasOutput(stream: QuicStream): void;
  /** Both directions are done; forget the stream. */
  streamFinished(stream: QuicStream): void;
  streamFailed(stream: QuicStream, message: string): void;
}

interface Segment {
  bytes: Uint8Array;
  start: number;
  end: number;
}

export class QuicStream {
  onData: (chunk: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  /** The queue fell below half the high-water mark after write() had returned false. */
  onDrain: () => void = () => {};
  /** The peer aborted the stream (RESET_STREAM or STOP_SENDING), or STREAM_LOCAL_FAILURE. */
  onReset: (code: number) => void = () => {};

  private readonly segments: Segment[] = [];
  private readonly spare: Uint8Array[] = [];
  private queuedBytes = 0;
  private needDrain = false;
  private finRequested = false;
  private sendDone = false;
  private recvDone = false;
  private resetNotified = false;
  private released = false;

  constructor(
    readonly id: number,
    private readonly owner: StreamOwner,
    private readonly highWaterMark: number,
  ) {}

  /** Bytes accepted by write() that quiche has not taken yet. */
  get bufferedBytes(): number {
    return this.queuedBytes;
  }

  /** False once end() or reset() was called or the peer stopped the stream. */
  get writable(): boolean {
    return !this.sendDone && !this.finRequested;
  }

  /**
   * Queues data (copying it). Returns false when the queue is above the high-water mark — the
   * data WAS accepted, but the caller should wait for onDrain — and also when the data was
   * refused: the stream is no longer writable, or accepting it would put more than 4x the
   * high-water mark in the queue. A single write into an empty queue is always accepted, so
   * memory stays bounded by the limit plus the caller's largest write.
   */
  write(data: Uint8Array): boolean {
    if (this.sendDone || this.finRequested) return false;
    const length = data.byteLength;
    if (length === 0) return this.queuedBytes < this.highWaterMark;
    if (this.queuedBytes > 0 && this.queuedBytes + length > 4 * this.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    let offset = 0;
    if (this.queuedBytes === 0 && length >= DIRECT_WRITE_MIN) {
      const native = this.owner.sendableNative();
      if (native !== null) {
        const written = this.streamSend(native, data);
        if (written < 0) return false;
        offset = written;
      }
    }
    if (offset < length) this.enqueue(data, offset);
    this.owner.streamHasOutput(this);
    if (this.queuedBytes < this.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  /** Sends FIN after everything queued so far. */
  end(): void {
    if (this.sendDone || this.finRequested) return;
    this.finRequested = true;
    this.owner.streamHasOutput(this);
  }

  /** Aborts both directions: RESET_STREAM and STOP_SENDING with `code`; queued data is dropped. */
  reset(code: number): void {
    this.dropQueue();
    const native = this.owner.sendableNative();
    if (native !== null) {
      // Either call fails harmlessly when that direction is already finished or the stream was
      // never sent on (quiche has no state for it yet).
      try {
        if (!this.sendDone) native.streamShutdown(this.id, quiche.Shutdown.Write, code);
      } catch {
        /* direction already closed */
      }
      try {
        if (!this.recvDone) native.streamShutdown(this.id, quiche.Shutdown.Read, code);
      } catch {
        /* direction already closed */
      }
    }
    this.sendDone = true;
    this.recvDone = true;
    this.resetNotified = true;
    this.owner.streamHasOutput(this);
    this.releaseIfDone();
  }

  // ---- driven by the connection ----

  /** Moves queued bytes (and FIN) into quiche. Returns true while output is still pending. */
  pump(native: Connection): boolean {
    while (this.segments.length > 0) {
      const head = this.segments[0]!;
      const written = this.streamSend(native, head.bytes.subarray(head.start, head.end));
      if (written < 0) return false;
      head.start += written;
      this.queuedBytes -= written;
      if (head.start < head.end) break;
      if (this.segments.length === 1) {
        // Keep the last segment's memory for the next writes instead of reallocating.
        head.start = 0;
        head.end = 0;
        break;
      }
      const sent = this.segments.shift()!;
      if (sent.bytes.byteLength === SEGMENT_BYTES && this.spare.length < SPARE_SEGMENTS) this.spare.push(sent.bytes);
    }
    if (this.needDrain && this.queuedBytes <= this.highWaterMark / 2) {
      this.needDrain = false;
      this.onDrain();
    }
    if (this.queuedBytes > 0) return true;
    if (this.finRequested && !this.sendDone) {
      let accepted: number | null;
      try {
        accepted = native.streamSend(this.id, EMPTY, true);
      } catch (error) {
        if (isStreamLimit(error)) return true;
        this.sendFailed(native, error);
        return false;
      }
      if (accepted === null) return true;
      this.sendDone = true;
      this.releaseIfDone();
    }
    return false;
  }

  /** Reads everything quiche has for this stream into `buffer`, calling onData per chunk. */
  receive(native: Connection, buffer: Uint8Array): void {
    while (!this.recvDone) {
      let result: [number, boolean] | null;
      try {
        result = native.streamRecv(this.id, buffer);
      } catch (error) {
        this.recvDone = true;
        const code = streamErrorCode(error, 'StreamReset');
        if (code !== null) this.peerAborted(native, code);
        this.releaseIfDone();
        return;
      }
      if (result === null) return;
      const [length, fin] = result;
      if (length > 0) this.onData(buffer.subarray(0, length));
      if (fin) {
        this.recvDone = true;
        this.onEnd();
        this.releaseIfDone();
      }
    }
  }

  hasOutput(): boolean {
    return this.queuedBytes > 0 || (this.finRequested && !this.sendDone);
  }

  // ---- internals ----

  /**
   * Bytes quiche accepted (0 when it has no capacity now, or the peer has not granted this stream
   * yet), or -1 when the stream can no longer send. quiche throws only in those cases, never per
   * packet.
   */
  private streamSend(native: Connection, data: Uint8Array): number {
    try {
      return native.streamSend(this.id, data, false) ?? 0;
    } catch (error) {
      if (isStreamLimit(error)) return 0;
      this.sendFailed(native, error);
      return -1;
    }
  }

  private sendFailed(native: Connection, error: unknown): void {
    const code = streamErrorCode(error, 'StreamStopped');
    if (code === null) this.owner.streamFailed(this, (error as Error).message);
    this.peerAborted(native, code ?? STREAM_LOCAL_FAILURE);
    this.releaseIfDone();
  }

  private enqueue(data: Uint8Array, offset: number): void {
    const length = data.byteLength - offset;
    let tail = this.segments[this.segments.length - 1];
    if (tail === undefined || tail.bytes.byteLength - tail.end < length) {
      const bytes = length <= SEGMENT_BYTES ? (this.spare.pop() ?? new Uint8Array(SEGMENT_BYTES)) : new Uint8Array(length);
      tail = { bytes, start: 0, end: 0 };
      this.segments.push(tail);
    }
    tail.bytes.set(offset === 0 ? data : data.subarray(offset), tail.end);
    tail.end += length;
    this.queuedBytes += length;
  }

  private dropQueue(): void {
    this.segments.length = 0;
    this.spare.length = 0;
    this.queuedBytes = 0;
    this.needDrain = false;
  }

  /**
   * The peer aborted one direction; the stream is dead for us in both. Our sending side answers
   * with RESET_STREAM (also what quiche needs to retire a stream after STOP_SENDING).
   */
  private peerAborted(native: Connection, code: number): void {
    if (!this.sendDone) {
      this.dropQueue();
      this.sendDone = true;
      try {
        native.streamShutdown(this.id, quiche.Shutdown.Write, Math.max(code, 0));
      } catch {
        /* already reset */
      }
    }
    if (this.resetNotified) return;
    this.resetNotified = true;
    this.onReset(code);
  }

  private releaseIfDone(): void {
    if (this.released || !this.sendDone || !this.recvDone) return;
    this.released = true;
    this.owner.streamFinished(this);
  }

  /** Called by the connection when it closes: no more callbacks, no more output. */
  detach(): void {
    this.dropQueue();
    this.sendDone = true;
    this.recvDone = true;
    this.released = true;
  }
}
