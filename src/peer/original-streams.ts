// An original VibePN node sends its reload announcements and its Goodbye each on a new stream.
// A control message starts with 0x00 (the high byte of its u16 length) where a data frame never
// does (its network-name length is 1..255): the first byte tells which a stream carries.

import { ControlDecoder } from '../control/decoder.js';
import type { ControlMessage } from '../control/messages.js';
import type { QuicStream } from '../quic/stream.js';
import { APP_PROTOCOL_VIOLATION } from '../quic/errors.js';

export interface SideStreamHandlers {
  /** The stream carries data frames: take it over (its first chunk is replayed to the new onData). */
  data(stream: QuicStream): void;
  control(message: ControlMessage): void;
  /** A malformed control message; the stream is reset with code 4, the connection stays. */
  malformed(error: string): void;
}

export function acceptOriginalStream(stream: QuicStream, handlers: SideStreamHandlers): void {
  stream.onEnd = () => stream.end();
  stream.onData = (first) => {
    if (first.length === 0) return;
    if (first[0] !== 0) {
      handlers.data(stream);
      stream.onData(first);
      return;
    }
    const decoder = new ControlDecoder();
    const feed = (chunk: Uint8Array): void => {
      const error = decoder.push(chunk, handlers.control);
      if (error === null) return;
      handlers.malformed(error);
      stream.reset(APP_PROTOCOL_VIOLATION);
    };
    stream.onData = feed;
    feed(first);
  };
}
