// Small fakes for unit tests of the forwarding and peer code: a QuicStream and a QuicConnection
// that implement only what that code calls, IP packet builders, and a frame decoder for
// asserting on what a sender wrote. Nothing here touches a socket or a timer.

import { FrameDecoder } from '../../src/forward/frame.js';
import { parseIp } from '../../src/netgraph/addr.js';
import type { QuicConnection } from '../../src/quic/connection.js';
import type { QuicStream } from '../../src/quic/stream.js';

/** A QuicStream stand-in: records writes (copied, as the real write() copies), end and reset. */
export class FakeStream {
  onData: (chunk: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  onDrain: () => void = () => {};
  onReset: (code: number) => void = () => {};
  /** Copies of every accepted write, in order. */
  readonly writes: Uint8Array[] = [];
  /** What the sender's queue limit reads; tests set it to simulate a full congestion window. */
  bufferedBytes = 0;
  ended = false;
  resetCode: number | null = null;
  private peerStopped = false;

  constructor(readonly id = 0) {}

  get writable(): boolean {
    return !this.ended && this.resetCode === null && !this.peerStopped;
  }

  write(data: Uint8Array): boolean {
    if (!this.writable) return false;
    this.writes.push(data.slice());
    return true;
  }

  end(): void {
    this.ended = true;
  }

  reset(code: number): void {
    this.resetCode = code;
  }

  /** The peer aborted the stream (RESET_STREAM / STOP_SENDING). */
  peerReset(code = 0): void {
    this.peerStopped = true;
    this.onReset(code);
  }

  /** Everything written, as one buffer. */
  written(): Uint8Array {
    return concatBytes(this.writes);
  }

  asQuic(): QuicStream {
    return this as unknown as QuicStream;
  }
}

/** A QuicConnection stand-in: openStream hands out FakeStreams, or throws like the real one. */
export class FakeConnection {
  readonly opened: FakeStream[] = [];
  isClosed = false;
  /** When set, openStream throws it (e.g. the peer's stream limit is used up). */
  openError: Error | null = null;

  constructor(readonly remoteAddress = '192.0.2.1:51820') {}

  /** Calls to openStream, including ones that threw. */
  openCalls = 0;

  openStream(): QuicStream {
    this.openCalls++;
    if (this.isClosed) throw new Error(`cannot open a stream: connection to ${this.remoteAddress} is closed`);
    if (this.openError) throw this.openError;
    const stream = new FakeStream(this.opened.length * 4);
    this.opened.push(stream);
    return stream.asQuic();
  }

  asQuic(): QuicConnection {
    return this as unknown as QuicConnection;
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function address(text: string, length: 4 | 16): Uint8Array {
  const bytes = parseIp(text);
  if (!bytes || bytes.length !== length) throw new Error(`not an IPv${length === 4 ? 4 : 6} address: ${text}`);
  return bytes;
}

/** A well-formed IPv4 packet (UDP protocol number, no options) with a patterned payload. */
export function ipv4Packet(source: string, destination: string, payloadLength = 8, seed = 0): Uint8Array {
  const total = 20 + payloadLength;
  const packet = new Uint8Array(total);
  packet[0] = 0x45;
  packet[2] = total >> 8;
  packet[3] = total & 0xff;
  packet[8] = 64;
  packet[9] = 17;
  packet.set(address(source, 4), 12);
  packet.set(address(destination, 4), 16);
  for (let i = 20; i < total; i++) packet[i] = (i * 7 + seed) & 0xff;
  return packet;
}

/** A well-formed IPv6 packet (UDP next header) with a patterned payload. */
export function ipv6Packet(source: string, destination: string, payloadLength = 8, seed = 0): Uint8Array {
  const packet = new Uint8Array(40 + payloadLength);
  packet[0] = 0x60;
  packet[4] = payloadLength >> 8;
  packet[5] = payloadLength & 0xff;
  packet[6] = 17;
  packet[7] = 64;
  packet.set(address(source, 16), 8);
  packet.set(address(destination, 16), 24);
  for (let i = 40; i < packet.length; i++) packet[i] = (i * 7 + seed) & 0xff;
  return packet;
}

export interface DecodedFrame {
  network: string;
  packet: Uint8Array;
  /** Present on a super-segment frame. */
  gsoSize?: number;
}

/** Decodes a complete raw-stream byte sequence into frames; throws on a decoding error. */
export function decodeFrames(bytes: Uint8Array): DecodedFrame[] {
  const decoder = new FrameDecoder();
  const frames: DecodedFrame[] = [];
  const error = decoder.push(bytes, (network, packet, gsoSize) =>
    frames.push(gsoSize > 0 ? { network, packet: packet.slice(), gsoSize } : { network, packet: packet.slice() }),
  );
  if (error !== null) throw new Error(error);
  const end = decoder.end();
  if (end !== null) throw new Error(end);
  return frames;
}

/** Lets setImmediate callbacks queued so far run (the end of the current event-loop turn). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
