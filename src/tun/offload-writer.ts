// Writes to a TUN opened with offloads: consecutive segments of one TCP flow in a batch are
// merged into one super-segment written under a GSO virtio_net_hdr (GRO in userspace,
// wireguard-go's tcpGRO), so the local TCP stack takes a few large packets instead of many small
// ones; a super-segment that came whole from a peer goes out under a GSO header of its own, and
// everything else as it is, under a "none" header.

import { TcpCoalescer } from '../forward/coalesce.js';

/** The addon's batched write: packet i goes behind headers[10 i..]; status[i] says whether it was taken. */
export type HeaderedWrite = (packets: Uint8Array[], count: number, status: Uint8Array, headers: Uint8Array) => number;

const CHUNK = 128;

export class OffloadWriter {
  private readonly coalescer = new TcpCoalescer({ maxBatch: CHUNK });
  private readonly outputs: Uint8Array[] = [];
  private readonly outputStatus = new Uint8Array(CHUNK);
  /** For input j of the current chunk, the output it went into. */
  private readonly outputOf = new Int32Array(CHUNK);

  /** Writes packets[0..count); fills status[i] (1 taken, 0 dropped) per input packet; returns how many were taken. */
  write(packets: Uint8Array[], count: number, status: Uint8Array, write: HeaderedWrite, gsoSizes?: Uint16Array): number {
    let written = 0;
    for (let start = 0; start < count; start += CHUNK) {
      const end = Math.min(count, start + CHUNK);
      const coalescer = this.coalescer;
      coalescer.reset();
      for (let j = start; j < end; j++) {
        // At most CHUNK inputs make at most CHUNK outputs, so add() always takes the packet.
        const gsoSize = gsoSizes === undefined ? 0 : gsoSizes[j]!;
        if (gsoSize > 0) coalescer.addSuperSegment(packets[j]!, gsoSize);
        else coalescer.add(packets[j]!);
        this.outputOf[j - start] = coalescer.lastOutput;
      }
      const n = coalescer.finish();
      for (let k = 0; k < n; k++) {
        const offset = coalescer.outputOffset(k);
        this.outputs[k] = coalescer.outputBuffer(k).subarray(offset, offset + coalescer.outputLength(k));
      }
      write(this.outputs, n, this.outputStatus, coalescer.headers);
      for (let j = start; j < end; j++) {
        const taken = this.outputStatus[this.outputOf[j - start]!]!;
        status[j] = taken;
        written += taken;
      }
      coalescer.reset();
    }
    return written;
  }
}
