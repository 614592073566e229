// What every streaming decoder of peer input shares (the control stream's messages, a raw
// stream's frames): errors are final, data after the end is an error, and a callback that throws
// leaves the decoder failed rather than in an unknown state half-way through a chunk.

/** `Handler` receives each decoded item; its arguments are the decoder's to choose, so no object is made per item. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export abstract class StreamDecoder<Handler extends (...args: any[]) => void> {
  private failure: string | null = null;
  private ended = false;
  /** Bytes of an incomplete item held between pushes; the subclass keeps them. */
  protected pendingLength = 0;

  /** `what` names the decoder in its errors, e.g. "control decoder". */
  constructor(private readonly what: string) {}

  /** The error that stopped this decoder, or null while it is healthy. */
  get error(): string | null {
    return this.failure;
  }

  /** Bytes of an incomplete item held between pushes. */
  get bufferedBytes(): number {
    return this.pendingLength;
  }

  /**
   * Feeds the next chunk of the stream, calling `deliver` for each complete item in order.
   * Returns null, or the error that stopped decoding (items before it were delivered). Once
   * failed, every later push returns the same error and delivers nothing.
   */
  push(chunk: Uint8Array, deliver: Handler): string | null {
    if (this.failure !== null) return this.failure;
    if (this.ended) return (this.failure = `${this.what} received data after end()`);
    // Left in place if a callback throws, so the decoder is not reused in an unknown state.
    this.failure = `${this.what} abandoned: a callback threw or push() was called from inside a callback`;
    this.failure = this.consume(chunk, deliver);
    return this.failure;
  }

  /** Marks the end of the stream. Returns an error if it ended inside an item. */
  end(): string | null {
    if (this.failure !== null) return this.failure;
    this.ended = true;
    if (this.pendingLength > 0) this.failure = this.truncation();
    return this.failure;
  }

  /** Decodes what `chunk` completes; returns the error that stops decoding, or null. */
  protected abstract consume(chunk: Uint8Array, deliver: Handler): string | null;

  /** The error for a stream that ended inside an item (pendingLength > 0). */
  protected abstract truncation(): string;
}
