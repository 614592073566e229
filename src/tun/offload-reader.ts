// Reads from a TUN opened with offloads (IFF_VNET_HDR, TSO4/TSO6, TUN_F_CSUM) come as a 10-byte
// virtio_net_hdr and a packet that may be a TCP super-segment of up to 64 KiB with a partial
// checksum. The rest of the daemon sends ordinary packets, so each read is turned back into the
// MTU-sized packets it stands for (wireguard-go's handleVirtioRead + gsoSplit): the kernel's TCP
// stack still did its work once per 64 KiB instead of once per packet. Asked to, the reader
// keeps valid TCP super-segments whole instead, for peers that take them as one frame; the
// forwarder then splits only those bound for peers that do not.

import { DEFAULT_MAX_SEGMENTS, SegmentError, SuperSegmentLayout, TcpSegmenter, completeChecksum } from '../forward/segment.js';
import { UdpSegmenter } from '../forward/udp-segment.js';
import { VNET_HEADER_LENGTH, VnetHeaderError, decodeVnetHeaderInto, noneVnetHeader, type VnetHeader } from './vnet-header.js';

/** Room for one batch of reads (the addon's 1 MiB buffer) split into packets with copied headers. */
const SCRATCH_BYTES = 2 * 1024 * 1024;
/** The smallest packet a split yields: an IPv4 header and a UDP header with no payload. */
const SMALLEST_SPLIT_PACKET = 28;

/** How many packets `reads` reads can expand to: the size views and gsoSizes must have room for. */
export function expandedCapacity(reads: number): number {
  return reads + Math.ceil(SCRATCH_BYTES / SMALLEST_SPLIT_PACKET);
}

export class OffloadReader {
  private readonly header = noneVnetHeader();
  private readonly segmenter = new TcpSegmenter();
  private readonly udpSegmenter = new UdpSegmenter();
  private readonly layout = new SuperSegmentLayout();
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  /** Reads refused since the last takeRefused(), by reason. */
  private refused = new Map<string, number>();

  /**
   * Fills `views` with the packets of `count` reads lying back to back in `buffer` (lengths in
   * `lengths`, each starting with its header) and returns how many there are. Views point into
   * `buffer` or this reader's scratch space, valid until the next call. With `gsoSizes` (room
   * for expandedCapacity(count) entries), a TCP super-segment of two or more segments stays
   * whole, its segment size in gsoSizes[i] (0 for every other packet), its checksums unfinished.
   */
  expand(buffer: Uint8Array, lengths: Uint32Array, count: number, views: Uint8Array[], gsoSizes: Uint16Array | null = null): number {
    let offset = 0;
    let used = 0;
    let out = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      const start = offset;
      offset += length;
      if (length < VNET_HEADER_LENGTH) {
        this.refuse('truncated');
        continue;
      }
      const packet = buffer.subarray(start + VNET_HEADER_LENGTH, start + length);
      try {
        const header = decodeVnetHeaderInto(buffer, start, this.header, packet.length);
        if (header.gsoType === 'none') {
          // A partial checksum is finished in place: the kernel left it to us (TUN_F_CSUM).
          completeChecksum(packet, header);
          if (gsoSizes !== null) gsoSizes[out] = 0;
          views[out++] = packet;
          continue;
        }
        if (gsoSizes !== null && this.keepsWhole(packet, header)) {
          gsoSizes[out] = header.gsoSize;
          views[out++] = packet;
          continue;
        }
        if (SCRATCH_BYTES - used < packet.length + 2048) {
          this.refuse('batch-too-large');
          continue;
        }
        // UDP super-datagrams (USO) are always cut up: the wire has no frame for them.
        const segmenter = header.gsoType === 'udp_l4' ? this.udpSegmenter : this.segmenter;
        const n = segmenter.split(packet, header, this.scratch, used);
        const { offsets, lengths: segmentLengths } = segmenter;
        for (let s = 0; s < n; s++) {
          if (gsoSizes !== null) gsoSizes[out] = 0;
          views[out++] = this.scratch.subarray(offsets[s]!, offsets[s]! + segmentLengths[s]!);
        }
        used = offsets[n - 1]! + segmentLengths[n - 1]!;
      } catch (err) {
        if (err instanceof SegmentError || err instanceof VnetHeaderError) this.refuse(err.reason);
        else throw err;
      }
    }
    return out;
  }

  /**
   * A TCP super-segment of two or more segments that the segmenter would accept (so splitting it
   * later cannot fail) is kept whole; anything else goes through the segmenter now.
   */
  private keepsWhole(packet: Uint8Array, header: VnetHeader): boolean {
    if (header.gsoType !== 'tcpv4' && header.gsoType !== 'tcpv6') return false;
    const layout = this.layout;
    if (!layout.accepts(packet, header.gsoSize, DEFAULT_MAX_SEGMENTS, header.gsoType === 'tcpv6' ? 6 : 4)) return false;
    if (header.needsChecksum && (header.csumStart !== layout.ipLength || header.csumOffset !== 16)) return false;
    return layout.count > 1;
  }

  /** What was refused since the last call, by reason (for a log line or a counter). */
  takeRefused(): Map<string, number> {
    const refused = this.refused;
    this.refused = new Map();
    return refused;
  }

  private refuse(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }
}
