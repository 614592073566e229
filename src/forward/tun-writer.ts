// Batches packets bound for one TUN device: the receive path queues each accepted packet (copied,
// since decoded packets are views into buffers that are reused) and flushes once per chunk read
// from a stream, so the kernel gets a batch through one native call instead of one call per packet.
// A TCP super-segment from a peer goes to a device with offloads whole, for the kernel to take as
// its own GRO would have built it; a device without them gets the packets it stands for.

import type { ForwardCounters } from '../metrics/forward-counters.js';
import type { TunLike } from '../tun/types.js';
import { DEFAULT_MAX_SEGMENTS, SuperSegmentLayout, TcpSegmenter } from './segment.js';

/** Flushed early when this much is queued; one QUIC read is at most 64 KiB of frames. */
const BATCH_BYTES = 256 * 1024;
const MAX_PACKET = 65535;
/**
 * A batch plus one more packet. A split super-segment fits in an empty buffer: at most 2048
 * segments, each repeating at most 120 header bytes, of one 64 KiB packet is 311 KB.
 */
const BUFFER_BYTES = BATCH_BYTES + MAX_PACKET;

export class TunWriter {
  private readonly buffer = new Uint8Array(BUFFER_BYTES);
  private readonly views: Uint8Array[] = [];
  /** Per queued packet: its segment size (0: an ordinary packet) and what it counts for. */
  private gsoSizes = new Uint16Array(256);
  private packetsOf = new Uint16Array(256);
  private bytesOf = new Uint32Array(256);
  /** Which packets of the last flush the TUN took (1) or dropped (0). */
  private status = new Uint8Array(256);
  private count = 0;
  private used = 0;
  private supers = 0;
  private readonly layout = new SuperSegmentLayout();
  private segmenter: TcpSegmenter | null = null;
  /** Set while this writer is listed for a flush at the end of the current chunk. */
  pendingFlush = false;

  constructor(
    private readonly tun: TunLike,
    private readonly counters: ForwardCounters,
  ) {}

  /** Queues an IP packet, or with gsoSize > 0 a TCP super-segment of gsoSize-byte segments. */
  queue(packet: Uint8Array, gsoSize = 0): void {
    if (gsoSize > 0) {
      this.queueSuperSegment(packet, gsoSize);
      return;
    }
    if (this.used + packet.length > BATCH_BYTES) this.flush();
    this.append(packet, 0, 1, packet.length);
  }

  flush(): void {
    this.pendingFlush = false;
    const count = this.count;
    if (count === 0) return;
    const status = this.status;
    if (this.tun.writePackets) this.tun.writePackets(this.views, count, status, this.supers > 0 ? this.gsoSizes : undefined);
    else this.writeOneByOne(count, status);
    const counters = this.counters;
    // Drops may be anywhere in the batch, so they are counted packet by packet.
    let packets = 0;
    let dropped = 0;
    for (let i = 0; i < count; i++) {
      if (status[i] === 1) {
        counters.bytesIn += this.bytesOf[i]!;
        packets += this.packetsOf[i]!;
      } else {
        dropped += this.packetsOf[i]!;
      }
    }
    counters.packetsIn += packets;
    counters.drops.queue_full += dropped;
    this.count = 0;
    this.used = 0;
    this.supers = 0;
  }

  private queueSuperSegment(packet: Uint8Array, gsoSize: number): void {
    const counters = this.counters;
    const layout = this.layout;
    // A super-segment of one packet is not one: the sender splits those, so it is refused.
    if (!layout.accepts(packet, gsoSize, DEFAULT_MAX_SEGMENTS) || layout.count < 2) {
      counters.drops.malformed++;
      return;
    }
    const { count, headerLength } = layout;
    const bytes = packet.length + (count - 1) * headerLength;
    if (this.tun.offload === true) {
      if (this.used + packet.length > BATCH_BYTES) this.flush();
      this.append(packet, gsoSize, count, bytes);
      this.supers++;
      counters.superSegmentsIn++;
      return;
    }
    if (this.used + bytes > BATCH_BYTES) this.flush();
    const segmenter = (this.segmenter ??= new TcpSegmenter());
    const n = segmenter.splitSuperSegment(packet, layout, gsoSize, this.buffer, this.used);
    for (let s = 0; s < n; s++) {
      const start = segmenter.offsets[s]!;
      const length = segmenter.lengths[s]!;
      this.record(this.buffer.subarray(start, start + length), 0, 1, length);
    }
    this.used = segmenter.offsets[n - 1]! + segmenter.lengths[n - 1]!;
    counters.superSegmentsIn++;
  }

  /** Copies `packet` into the batch. */
  private append(packet: Uint8Array, gsoSize: number, packets: number, bytes: number): void {
    this.buffer.set(packet, this.used);
    this.record(this.buffer.subarray(this.used, this.used + packet.length), gsoSize, packets, bytes);
    this.used += packet.length;
  }

  private record(view: Uint8Array, gsoSize: number, packets: number, bytes: number): void {
    const i = this.count++;
    if (i === this.status.length) this.grow();
    this.views[i] = view;
    this.gsoSizes[i] = gsoSize;
    this.packetsOf[i] = packets;
    this.bytesOf[i] = bytes;
  }

  private grow(): void {
    const size = this.status.length * 2;
    const grown = <T extends Uint8Array | Uint16Array | Uint32Array>(from: T, make: (n: number) => T): T => {
      const to = make(size);
      to.set(from);
      return to;
    };
    this.status = grown(this.status, (n) => new Uint8Array(n));
    this.gsoSizes = grown(this.gsoSizes, (n) => new Uint16Array(n));
    this.packetsOf = grown(this.packetsOf, (n) => new Uint16Array(n));
    this.bytesOf = grown(this.bytesOf, (n) => new Uint32Array(n));
  }

  private writeOneByOne(count: number, status: Uint8Array): void {
    for (let i = 0; i < count; i++) status[i] = this.tun.writePacket(this.views[i]!) ? 1 : 0;
  }
}
