// Batches packets bound for one TUN device: the receive path queues each accepted packet (copied,
// since decoded packets are views into buffers that are reused) and flushes once per chunk read
// from a stream, so the kernel gets a batch through one native call instead of one call per packet.

import type { ForwardCounters } from '../metrics/forward-counters.js';
import type { TunLike } from '../tun/types.js';

/** Flushed early when this much is queued; one QUIC read is at most 64 KiB of frames. */
const BATCH_BYTES = 256 * 1024;
const MAX_PACKET = 65535;

export class TunWriter {
  private readonly buffer = new Uint8Array(BATCH_BYTES + MAX_PACKET);
  private readonly views: Uint8Array[] = [];
  /** Which packets of the last flush the TUN took (1) or dropped (0). */
  private status = new Uint8Array(256);
  private count = 0;
  private used = 0;
  /** Set while this writer is listed for a flush at the end of the current chunk. */
  pendingFlush = false;

  constructor(
    private readonly tun: TunLike,
    private readonly counters: ForwardCounters,
  ) {}

  queue(packet: Uint8Array): void {
    if (this.used + packet.length > BATCH_BYTES) this.flush();
    this.buffer.set(packet, this.used);
    this.views[this.count++] = this.buffer.subarray(this.used, this.used + packet.length);
    this.used += packet.length;
  }

  flush(): void {
    this.pendingFlush = false;
    const count = this.count;
    if (count === 0) return;
    if (this.status.length < count) this.status = new Uint8Array(Math.max(count, this.status.length * 2));
    const status = this.status;
    const written = this.tun.writePackets ? this.tun.writePackets(this.views, count, status) : this.writeOneByOne(count, status);
    const counters = this.counters;
    // Drops may be anywhere in the batch, so bytes are counted packet by packet.
    for (let i = 0; i < count; i++) if (status[i] === 1) counters.bytesIn += this.views[i]!.length;
    counters.packetsIn += written;
    counters.drops.queue_full += count - written;
    this.count = 0;
    this.used = 0;
  }

  private writeOneByOne(count: number, status: Uint8Array): number {
    let written = 0;
    for (let i = 0; i < count; i++) {
      const ok = this.tun.writePacket(this.views[i]!);
      status[i] = ok ? 1 : 0;
      if (ok) written++;
    }
    return written;
  }
}
