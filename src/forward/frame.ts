// Raw-stream data frames (PROTOCOL.md section 6), one IP packet each:
//   u8 netLen | network name (1..255 bytes) | u16 packetLen (BE, 1..65535) | packet
// and, only to a peer that announced CAPABILITY_TCP_SUPER_SEGMENTS, a TCP super-segment
// (PROTOCOL.md#v-super-segments): netLen 0, never valid in v0.1, escapes to an extension:
//   00 | 01 | u16 gsoSize (BE, 1..65535) | an ordinary frame whose packet is the super-segment
//
// This is the per-packet hot path in both directions, so neither side allocates per frame in
// the common case: the encoder precomputes the name prefix once per network, and the decoder
// hands out views into the chunk it was given and reuses the last decoded network name.

import { encodeWireName, decodeWireName } from '../control/messages.js';
import { StreamDecoder } from '../control/stream-decoder.js';

export const MAX_NETWORK_NAME_BYTES = 255;
export const MAX_PACKET_LENGTH = 0xffff;
/** Largest frame header: netLen byte + 255-byte name + u16 packet length. */
export const MAX_FRAME_HEADER = 1 + MAX_NETWORK_NAME_BYTES + 2;
/** The escape, the extension kind and the gso size in front of a super-segment's frame. */
export const SUPER_SEGMENT_PREFIX = 4;
const EXTENSION_ESCAPE = 0;
const EXTENSION_SUPER_SEGMENT = 1;
/** Largest frame on the wire, a super-segment's prefix included. */
export const MAX_FRAME_LENGTH = SUPER_SEGMENT_PREFIX + MAX_FRAME_HEADER + MAX_PACKET_LENGTH;

function checkPacketLength(packetLength: number): void {
  if (!(packetLength >= 1 && packetLength <= MAX_PACKET_LENGTH && Number.isInteger(packetLength))) {
    throw new Error(`packet length ${packetLength} cannot be framed; frames carry 1..${MAX_PACKET_LENGTH} bytes`);
  }
}

/**
 * Writes a frame header at `out[offset]` for a network given as its UTF-8 bytes (1..255).
 * Returns the offset just past the header, where the packet goes. Throws if the name or the
 * length cannot be framed, or if `out` is too small.
 */
export function encodeFrameHeader(networkNameBytes: Uint8Array, packetLength: number, out: Uint8Array, offset: number): number {
  const nameLength = networkNameBytes.length;
  if (nameLength === 0 || nameLength > MAX_NETWORK_NAME_BYTES) {
    throw new Error(`network name of ${nameLength} bytes cannot be framed; frames carry 1..${MAX_NETWORK_NAME_BYTES} bytes`);
  }
  checkPacketLength(packetLength);
  const end = offset + 3 + nameLength;
  if (end > out.length) throw new Error(`frame header needs ${3 + nameLength} bytes at offset ${offset}, buffer holds ${out.length}`);
  out[offset] = nameLength;
  out.set(networkNameBytes, offset + 1);
  out[end - 2] = packetLength >> 8;
  out[end - 1] = packetLength & 0xff;
  return end;
}

/**
 * Frames packets for one network. Build one per (network, raw stream) and reuse it: the header
 * prefix is computed once, and writes go into a buffer the caller owns and reuses.
 */
export class FrameEncoder {
  readonly network: string;
  /** netLen byte + name bytes + 2 placeholder bytes for the packet length. */
  private readonly header: Uint8Array;

  constructor(network: string) {
    this.network = network;
    const name = encodeWireName(network, 'network name');
    this.header = new Uint8Array(name.length + 3);
    this.header[0] = name.length;
    this.header.set(name, 1);
  }

  get headerLength(): number {
    return this.header.length;
  }

  /** Wire size of a frame carrying `packetLength` bytes. */
  frameLength(packetLength: number): number {
    return this.header.length + packetLength;
  }

  /** Writes only the header; returns the offset where the caller must put the packet. */
  writeHeader(out: Uint8Array, offset: number, packetLength: number): number {
    checkPacketLength(packetLength);
    const end = offset + this.header.length;
    if (end > out.length) throw new Error(`frame header needs ${this.header.length} bytes at offset ${offset}, buffer holds ${out.length}`);
    out.set(this.header, offset);
    out[end - 2] = packetLength >> 8;
    out[end - 1] = packetLength & 0xff;
    return end;
  }

  /** Writes header and packet back to back; returns the offset just past the frame. */
  writeInto(out: Uint8Array, offset: number, packet: Uint8Array): number {
    if (offset + this.header.length + packet.length > out.length) {
      throw new Error(`frame of ${this.header.length + packet.length} bytes does not fit at offset ${offset} in a ${out.length}-byte buffer`);
    }
    const packetStart = this.writeHeader(out, offset, packet.length);
    out.set(packet, packetStart);
    return packetStart + packet.length;
  }

  /**
   * Writes a super-segment frame: `packet` is a TCP super-segment of `gsoSize`-byte segments, for
   * a peer that announced it takes them. Returns the offset just past the frame.
   */
  writeSuperSegmentInto(out: Uint8Array, offset: number, packet: Uint8Array, gsoSize: number): number {
    if (!(Number.isInteger(gsoSize) && gsoSize >= 1 && gsoSize <= 0xffff)) throw new Error(`gso size ${gsoSize} cannot be framed; 1..65535`);
    if (offset + SUPER_SEGMENT_PREFIX + this.header.length + packet.length > out.length) {
      throw new Error(`super-segment frame of ${SUPER_SEGMENT_PREFIX + this.header.length + packet.length} bytes does not fit at offset ${offset} in a ${out.length}-byte buffer`);
    }
    out[offset] = EXTENSION_ESCAPE;
    out[offset + 1] = EXTENSION_SUPER_SEGMENT;
    out[offset + 2] = gsoSize >> 8;
    out[offset + 3] = gsoSize & 0xff;
    return this.writeInto(out, offset + SUPER_SEGMENT_PREFIX, packet);
  }

  /** A fresh buffer with one frame (a super-segment's when gsoSize > 0): for tests and cold paths. */
  encode(packet: Uint8Array, gsoSize = 0): Uint8Array {
    const prefix = gsoSize > 0 ? SUPER_SEGMENT_PREFIX : 0;
    const out = new Uint8Array(prefix + this.frameLength(packet.length));
    if (gsoSize > 0) this.writeSuperSegmentInto(out, 0, packet, gsoSize);
    else this.writeInto(out, 0, packet);
    return out;
  }
}

/** One frame in a fresh buffer. Allocates; the forwarding path uses FrameEncoder instead. */
export function encodeFrame(network: string, packet: Uint8Array): Uint8Array {
  return new FrameEncoder(network).encode(packet);
}

/** `gsoSize` is 0 for an ordinary packet, else the segment size of a TCP super-segment. */
export type FrameHandler = (network: string, packet: Uint8Array, gsoSize: number) => void;

const NAME_ZERO = -1;
const PACKET_ZERO = -2;
const UNKNOWN_EXTENSION = -3;
const GSO_ZERO = -4;

/** Size of the ordinary frame at `start` as far as `available` bytes reveal it, or an error code. */
function plainFrameSize(bytes: Uint8Array, start: number, available: number): number {
  if (available < 1) return 1;
  const nameLength = bytes[start]!;
  if (nameLength === 0) return NAME_ZERO;
  if (available < nameLength + 3) return nameLength + 3;
  const packetLength = (bytes[start + nameLength + 1]! << 8) | bytes[start + nameLength + 2]!;
  if (packetLength === 0) return PACKET_ZERO;
  return nameLength + 3 + packetLength;
}

/** Total wire size of the frame starting at `start` as far as `available` bytes reveal it. */
function frameSize(bytes: Uint8Array, start: number, available: number): number {
  if (available < 1) return 1;
  if (bytes[start] !== EXTENSION_ESCAPE) return plainFrameSize(bytes, start, available);
  if (available < 2) return 2;
  if (bytes[start + 1] !== EXTENSION_SUPER_SEGMENT) return UNKNOWN_EXTENSION;
  if (available < SUPER_SEGMENT_PREFIX) return SUPER_SEGMENT_PREFIX;
  if (bytes[start + 2] === 0 && bytes[start + 3] === 0) return GSO_ZERO;
  const inner = plainFrameSize(bytes, start + SUPER_SEGMENT_PREFIX, available - SUPER_SEGMENT_PREFIX);
  return inner < 0 ? inner : SUPER_SEGMENT_PREFIX + inner;
}

function sizeError(code: number): string {
  switch (code) {
    case NAME_ZERO:
      return 'malformed frame: network name length is 0 (must be 1..255)';
    case UNKNOWN_EXTENSION:
      return 'malformed frame: network name length is 0 and the next byte is not 1 (the only extension frame, a TCP super-segment)';
    case GSO_ZERO:
      return 'malformed frame: super-segment gso size is 0 (must be 1..65535)';
    default:
      return `malformed frame: packet length is 0 (must be 1..${MAX_PACKET_LENGTH})`;
  }
}

const INITIAL_PENDING_CAPACITY = 2048;

/**
 * Streaming decoder for one raw stream. Any error is final: PROTOCOL.md resets that raw stream,
 * so the caller discards this decoder with it.
 *
 * The `packet` passed to onFrame is a view that is valid only during the callback: it points
 * into the caller's chunk, or into this decoder's reuse buffer for a frame that spanned chunks.
 * Copy it (or finish writing it to the TUN device) before returning.
 */
export class FrameDecoder extends StreamDecoder<FrameHandler> {
  // Sized on demand, up to one max-size frame: many raw streams exist, most carry small packets.
  private pending = new Uint8Array(0);
  // Streams nearly always carry one network, so remember the last name's bytes and string.
  private readonly lastNameBytes = new Uint8Array(MAX_NETWORK_NAME_BYTES);
  private lastNameLength = 0;
  private lastName = '';

  constructor() {
    super('frame decoder');
  }

  protected truncation(): string {
    const size = frameSize(this.pending, 0, this.pendingLength);
    return `truncated frame: raw stream ended after ${this.pendingLength} bytes of a frame that needs at least ${size}`;
  }

  protected consume(chunk: Uint8Array, onFrame: FrameHandler): string | null {
    let pos = 0;
    if (this.pendingLength > 0) {
      // Grow the partial frame step by step: first the name length, then the header, then the packet.
      let size = frameSize(this.pending, 0, this.pendingLength);
      while (size > this.pendingLength && pos < chunk.length) {
        const take = Math.min(size - this.pendingLength, chunk.length - pos);
        this.reserve(this.pendingLength + take);
        this.pending.set(chunk.subarray(pos, pos + take), this.pendingLength);
        this.pendingLength += take;
        pos += take;
        size = frameSize(this.pending, 0, this.pendingLength);
        if (size < 0) return sizeError(size);
      }
      if (this.pendingLength < size) return null;
      this.pendingLength = 0;
      const error = this.deliver(this.pending, 0, size, onFrame);
      if (error !== null) return error;
    }
    while (pos < chunk.length) {
      const available = chunk.length - pos;
      const size = frameSize(chunk, pos, available);
      if (size < 0) return sizeError(size);
      if (size > available) break;
      const error = this.deliver(chunk, pos, size, onFrame);
      if (error !== null) return error;
      pos += size;
    }
    if (pos < chunk.length) {
      const rest = chunk.length - pos;
      this.reserve(rest);
      this.pending.set(chunk.subarray(pos), 0);
      this.pendingLength = rest;
    }
    return null;
  }

  private deliver(bytes: Uint8Array, start: number, size: number, onFrame: FrameHandler): string | null {
    let gsoSize = 0;
    if (bytes[start] === EXTENSION_ESCAPE) {
      gsoSize = (bytes[start + 2]! << 8) | bytes[start + 3]!;
      start += SUPER_SEGMENT_PREFIX;
    }
    const nameLength = bytes[start]!;
    const network = this.networkName(bytes, start + 1, nameLength);
    if (network === null) return 'malformed frame: network name is not valid UTF-8';
    onFrame(network, bytes.subarray(start + nameLength + 3, start + size - (gsoSize > 0 ? SUPER_SEGMENT_PREFIX : 0)), gsoSize);
    return null;
  }

  private networkName(bytes: Uint8Array, start: number, length: number): string | null {
    if (length === this.lastNameLength) {
      let same = true;
      for (let i = 0; i < length; i++) {
        if (bytes[start + i] !== this.lastNameBytes[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastName;
    }
    const nameBytes = bytes.subarray(start, start + length);
    const name = decodeWireName(nameBytes);
    if (name === null) return null;
    this.lastNameBytes.set(nameBytes, 0);
    this.lastNameLength = length;
    this.lastName = name;
    return name;
  }

  /** Makes the reuse buffer hold at least `capacity` bytes, keeping what it already holds. */
  private reserve(capacity: number): void {
    if (capacity <= this.pending.length) return;
    let next = Math.max(this.pending.length * 2, INITIAL_PENDING_CAPACITY);
    while (next < capacity) next *= 2;
    const grown = new Uint8Array(Math.min(next, MAX_FRAME_LENGTH));
    grown.set(this.pending.subarray(0, this.pendingLength), 0);
    this.pending = grown;
  }
}
