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
    const written = this.tun.writePackets ? this.tun.writePackets(this.views, count) : this.writeOneByOne(count);
    const counters = this.counters;
    for (let i = 0; i < written; i++) counters.bytesIn += this.views[i]!.length;
    counters.packetsIn += written;
    counters.drops.queue_full += count - written;
    this.count = 0;
    this.used = 0;
  }

  private writeOneByOne(count: number): number {
    let written = 0;
    for (let i = 0; i < count; i++) if (this.tun.writePacket(this.views[i]!)) written++;
    return written;
  }
}
