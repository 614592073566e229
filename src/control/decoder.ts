// Streaming decoder for the control stream: turns arbitrary chunks into ControlMessages.
//
// Any violation (a length of 0 or > 4096, a malformed payload, the stream ending mid-message)
// is reported once and the decoder fails for good: PROTOCOL.md closes the peer's connection on
// a control-stream violation, so there is nothing to resynchronise to.
//
// Memory: messages lying wholly inside a chunk are decoded in place; only a message split
// across chunks is copied, into one fixed buffer of MAX_CONTROL_MESSAGE bytes. The length field
// is validated before anything is buffered, so a peer cannot make us hold more than that.

import {
  CONTROL_LENGTH_BYTES,
  MAX_CONTROL_MESSAGE,
  MAX_CONTROL_PAYLOAD,
  decodeControlPayload,
  type ControlMessage,
} from './messages.js';
import { StreamDecoder } from './stream-decoder.js';

/** Total wire size of the message starting at `start`, or -1 if its length field is invalid. */
function messageSize(bytes: Uint8Array, start: number, available: number): number {
  if (available < CONTROL_LENGTH_BYTES) return CONTROL_LENGTH_BYTES;
  const length = (bytes[start]! << 8) | bytes[start + 1]!;
  if (length === 0 || length > MAX_CONTROL_PAYLOAD) return -1;
  return CONTROL_LENGTH_BYTES + length;
}

function badLength(bytes: Uint8Array, start: number): string {
  const length = (bytes[start]! << 8) | bytes[start + 1]!;
  return `control message length ${length} is outside 1..${MAX_CONTROL_PAYLOAD}`;
}

export class ControlDecoder extends StreamDecoder<(msg: ControlMessage) => void> {
  /** Holds the start of a message split across chunks; never more than one message. */
  private readonly pending = new Uint8Array(MAX_CONTROL_MESSAGE);

  constructor() {
    super('control decoder');
  }

  protected truncation(): string {
    const size = messageSize(this.pending, 0, this.pendingLength);
    return this.pendingLength < CONTROL_LENGTH_BYTES
      ? 'control stream ended inside a message length field'
      : `control stream ended inside a message (${this.pendingLength} of ${size} bytes received)`;
  }

  protected consume(chunk: Uint8Array, onMessage: (msg: ControlMessage) => void): string | null {
    let pos = 0;
    if (this.pendingLength > 0) {
      // Complete the split message first; the header may itself be split.
      let size = messageSize(this.pending, 0, this.pendingLength);
      while (size > this.pendingLength && pos < chunk.length) {
        const take = Math.min(size - this.pendingLength, chunk.length - pos);
        this.pending.set(chunk.subarray(pos, pos + take), this.pendingLength);
        this.pendingLength += take;
        pos += take;
        size = messageSize(this.pending, 0, this.pendingLength);
        if (size < 0) return badLength(this.pending, 0);
      }
      if (this.pendingLength < size) return null;
      this.pendingLength = 0;
      const error = this.deliver(this.pending.subarray(CONTROL_LENGTH_BYTES, size), onMessage);
      if (error !== null) return error;
    }
    while (pos < chunk.length) {
      const available = chunk.length - pos;
      const size = messageSize(chunk, pos, available);
      if (size < 0) return badLength(chunk, pos);
      if (size > available) break;
      const error = this.deliver(chunk.subarray(pos + CONTROL_LENGTH_BYTES, pos + size), onMessage);
      if (error !== null) return error;
      pos += size;
    }
    if (pos < chunk.length) {
      // Fits: what is left is shorter than one valid message (size was checked above).
      this.pending.set(chunk.subarray(pos), 0);
      this.pendingLength = chunk.length - pos;
    }
    return null;
  }

  private deliver(payload: Uint8Array, onMessage: (msg: ControlMessage) => void): string | null {
    const result = decodeControlPayload(payload);
    if (!result.ok) return result.error;
    onMessage(result.msg);
    return null;
  }
}
