// Streams a peer opens while its admission is still being decided (an inbound first use waits
// for the known-peers file to be written). QUIC hands us a stream's first bytes as soon as they
// arrive, so they are copied and kept here, bounded, and replayed in order once the peer is in.

import type { QuicStream } from '../quic/stream.js';

/** More than a handshake's worth of control messages and a few packets; past it the peer is cut. */
export const MAX_HELD_BYTES = 256 * 1024;

interface Held {
  stream: QuicStream;
  chunks: Uint8Array[];
  ended: boolean;
}

export class HeldStreams {
  private readonly held: Held[] = [];
  private bytes = 0;

  /** `overflow` is called once if the peer sends more than `maxBytes` before release. */
  constructor(
    private readonly overflow: () => void,
    private readonly maxBytes = MAX_HELD_BYTES,
  ) {}

  hold(stream: QuicStream): void {
    const entry: Held = { stream, chunks: [], ended: false };
    this.held.push(entry);
    stream.onData = (chunk) => {
      this.bytes += chunk.length;
      if (this.bytes > this.maxBytes) {
        if (this.bytes - chunk.length <= this.maxBytes) this.overflow();
        return;
      }
      // The chunk is a view into a reused receive buffer.
      entry.chunks.push(chunk.slice());
    };
    stream.onEnd = () => {
      entry.ended = true;
    };
  }

  /** Hands every held stream to `dispatch` (which sets its real handlers), then replays its bytes. */
  release(dispatch: (stream: QuicStream) => void): void {
    for (const entry of this.held.splice(0)) {
      dispatch(entry.stream);
      for (const chunk of entry.chunks) entry.stream.onData(chunk);
      if (entry.ended) entry.stream.onEnd();
    }
    this.bytes = 0;
  }
}
