// GSO in userspace: with TSO offered on the TUN (TUNSETOFFLOAD TUN_F_TSO4/TSO6), the kernel
// hands us TCP super-segments of up to 64 KiB plus a virtio_net_hdr, and we cut them into the
// packets they stand for before they are framed for a peer. This follows wireguard-go's gsoSplit
// (tun/offload_linux.go) and the kernel's tcp_gso_segment / inet_gso_segment:
//   - every segment gets a copy of the IP and TCP headers; IPv4 total length, ID (+1 per
//     segment, wrapping) and header checksum are rewritten, or the IPv6 payload length;
//   - the sequence number advances by gso_size per segment; FIN and PSH stay only on the last
//     segment and CWR only on the first (tcp_gso_segment clears th->cwr after the first);
//   - the TCP checksum is computed from scratch per segment. For GSO the incoming checksum
//     field (under NEEDS_CSUM, the pseudo-header sum over the super-segment's length) is
//     therefore never read, which is correct whatever the kernel left there.
// hdr_len is not trusted (the kernel may report the whole first packet, see handleVirtioRead in
// wireguard-go's tun_linux.go); the header length comes from the IP and TCP headers, and
// csum_start must agree with it. A non-GSO packet under NEEDS_CSUM gets its checksum completed
// the way skb_checksum_help does: sum from csum_start to the end, field included.
//
// Nothing is allocated per packet except the subarray view handed to Uint8Array.set, which
// copies the payload as a memcpy (a byte loop would cost ten times more).

import { noneVnetHeader, type VnetHeader } from '../tun/vnet-header.js';
import { PROTOCOL_TCP, foldChecksum, ipv4HeaderChecksum, sumBytes } from './checksum.js';
import { IPV6_HEADER, ipHeaderError, ipVersion } from './packet.js';

export type SegmentErrorReason =
  | 'not-ip'
  | 'ip-header'
  | 'length-mismatch'
  | 'fragment'
  | 'not-tcp'
  | 'not-udp'
  | 'udp-header'
  | 'ipv6-extension-header'
  | 'gso-family-mismatch'
  | 'unsupported-gso-type'
  | 'zero-gso-size'
  | 'tcp-header'
  | 'checksum-start-mismatch'
  | 'checksum-out-of-range'
  | 'too-many-segments'
  | 'output-too-small';

/** A packet the segmenter refuses; `reason` is stable so the caller can count drops by kind. */
export class SegmentError extends Error {
  override readonly name = 'SegmentError';
  constructor(
    readonly reason: SegmentErrorReason,
    message: string,
  ) {
    super(message);
  }
}

const TCP_MIN_HEADER = 20;
const TCP_CHECKSUM = 16;
const TCP_FLAGS = 13;
const FLAG_FIN = 0x01;
const FLAG_PSH = 0x08;
const FLAG_CWR = 0x80;

/** IPv6 next-header values of extension headers (RFC 8200 4, IANA): refused, not parsed. */
function isIpv6Extension(next: number): boolean {
  return next === 0 || next === 43 || next === 44 || next === 50 || next === 51 || next === 60 || next === 135 || next === 139 || next === 140;
}

/**
 * 64 KiB / tcp_min_snd_mss (48) is 1366 segments; 2048 covers any MSS the kernel will use while
 * bounding a hostile gso_size of 1.
 */
export const DEFAULT_MAX_SEGMENTS = 2048;

function checksumRangeError(length: number, header: VnetHeader): SegmentError | null {
  if (header.csumStart + header.csumOffset + 2 <= length) return null;
  return new SegmentError('checksum-out-of-range', `checksum at ${header.csumStart}+${header.csumOffset} runs past the ${length}-byte packet`);
}

/**
 * Completes, in place, the checksum of a non-GSO packet sent under NEEDS_CSUM: the field at
 * csumStart + csumOffset holds the pseudo-header sum, so summing from csumStart to the end with
 * it in place and storing the complement finishes the job (0 is stored as 0xffff, as the kernel
 * does, since 0 means "no checksum" to UDP). A packet without NEEDS_CSUM is left alone.
 */
export function completeChecksum(packet: Uint8Array, header: VnetHeader, start = 0, length = packet.length - start): void {
  if (!header.needsChecksum) return;
  if (!(start >= 0 && length >= 0 && start + length <= packet.length)) {
    throw new SegmentError('checksum-out-of-range', `packet range ${start}+${length} lies outside the ${packet.length}-byte buffer`);
  }
  const error = checksumRangeError(length, header);
  if (error !== null) throw error;
  const at = start + header.csumStart + header.csumOffset;
  const checksum = ~sumBytes(packet, start + header.csumStart, start + length) & 0xffff;
  const stored = checksum === 0 ? 0xffff : checksum;
  packet[at] = stored >> 8;
  packet[at + 1] = stored & 0xff;
}

/**
 * Writes packet i of a GSO packet (TCP or UDP) at out[at]: a copy of the IP and transport headers
 * (`headerLength` bytes), the i-th `gsoSize` bytes of payload, and the IP length fields for it
 * (IPv4: total length, ID + i wrapping, header checksum; IPv6: payload length), as
 * inet_gso_segment does. The transport header's own fields are the caller's. Returns its length.
 */
export function writeSegment(packet: Uint8Array, ipLength: number, headerLength: number, gsoSize: number, i: number, firstId: number, out: Uint8Array, at: number): number {
  const dataStart = headerLength + i * gsoSize;
  const dataEnd = Math.min(dataStart + gsoSize, packet.length);
  const segmentLength = headerLength + (dataEnd - dataStart);
  for (let j = 0; j < headerLength; j++) out[at + j] = packet[j]!;
  if (dataEnd > dataStart) out.set(packet.subarray(dataStart, dataEnd), at + headerLength);
  if (packet[0]! >> 4 === 6) {
    const payloadLength = segmentLength - IPV6_HEADER;
    out[at + 4] = payloadLength >> 8;
    out[at + 5] = payloadLength & 0xff;
  } else {
    const id = (firstId + i) & 0xffff;
    out[at + 2] = segmentLength >> 8;
    out[at + 3] = segmentLength & 0xff;
    out[at + 4] = id >> 8;
    out[at + 5] = id & 0xff;
    out[at + 10] = 0;
    out[at + 11] = 0;
    const ipChecksum = ipv4HeaderChecksum(out, at, ipLength);
    out[at + 10] = ipChecksum >> 8;
    out[at + 11] = ipChecksum & 0xff;
  }
  return segmentLength;
}

/**
 * Splits TCP super-segments into packets, written back to back into a caller-owned buffer.
 * Reuse one instance per reader: `offsets` and `lengths` (of the last split) are its own.
 */
export class TcpSegmenter {
  /** Where packet i of the last split starts in `out`. */
  readonly offsets: Int32Array;
  /** Length of packet i of the last split. */
  readonly lengths: Int32Array;

  private readonly layout = new SuperSegmentLayout();
  private readonly layoutHeader = noneVnetHeader();

  constructor(readonly maxSegments = DEFAULT_MAX_SEGMENTS) {
    if (!(Number.isInteger(maxSegments) && maxSegments >= 1)) throw new Error(`maxSegments must be a positive integer, got ${maxSegments}`);
    this.offsets = new Int32Array(maxSegments);
    this.lengths = new Int32Array(maxSegments);
  }

  /**
   * Writes the packets `packet` stands for into `out`, starting at `outOffset` and leaving `gap`
   * untouched bytes in front of each (room for a frame header). Returns how many; their places
   * are in `offsets` / `lengths`. A non-GSO packet is copied as one packet, its checksum
   * completed under NEEDS_CSUM. `packet` is never modified. Throws SegmentError before writing
   * anything when the packet is refused or `out` cannot hold the result.
   */
  split(packet: Uint8Array, header: VnetHeader, out: Uint8Array, outOffset = 0, gap = 0): number {
    if (!(Number.isInteger(outOffset) && outOffset >= 0 && Number.isInteger(gap) && gap >= 0)) {
      throw new RangeError(`outOffset ${outOffset} and gap ${gap} must be non-negative integers`);
    }
    const length = packet.length;
    if (header.gsoType === 'none') {
      const error = header.needsChecksum ? checksumRangeError(length, header) : null;
      if (error !== null) throw error;
      this.checkRoom(out, outOffset + gap + length);
      out.set(packet, outOffset + gap);
      completeChecksum(out, header, outOffset + gap, length);
      this.offsets[0] = outOffset + gap;
      this.lengths[0] = length;
      return 1;
    }
    if (header.gsoType !== 'tcpv4' && header.gsoType !== 'tcpv6') {
      throw new SegmentError('unsupported-gso-type', `gso_type ${header.gsoType} is not TCP`);
    }
    const layout = this.layout.read(packet, header.gsoSize, this.maxSegments, header.gsoType === 'tcpv6' ? 6 : 4);
    const { ipLength, headerLength, count } = layout;
    const isV6 = layout.v6;
    if (header.needsChecksum && (header.csumStart !== ipLength || header.csumOffset !== TCP_CHECKSUM)) {
      throw new SegmentError(
        'checksum-start-mismatch',
        `csum_start ${header.csumStart} / csum_offset ${header.csumOffset} do not point at the TCP checksum (${ipLength}+${TCP_CHECKSUM})`,
      );
    }
    const gsoSize = header.gsoSize;
    const payload = length - headerLength;
    this.checkRoom(out, outOffset + count * (gap + headerLength) + payload);

    // Constant across segments: the address part of the pseudo-header, the first sequence
    // number, the flags and the IPv4 ID. Read from `packet`, so nothing written can alter them.
    const addressStart = isV6 ? 8 : 12;
    const addressSum = sumBytes(packet, addressStart, addressStart + (isV6 ? 32 : 8));
    const firstSeq = ((packet[ipLength + 4]! << 24) | (packet[ipLength + 5]! << 16) | (packet[ipLength + 6]! << 8) | packet[ipLength + 7]!) >>> 0;
    const flags = packet[ipLength + TCP_FLAGS]!;
    const firstId = (packet[4]! << 8) | packet[5]!;

    let cursor = outOffset;
    for (let i = 0; i < count; i++) {
      const at = cursor + gap;
      const segmentLength = writeSegment(packet, ipLength, headerLength, gsoSize, i, firstId, out, at);

      const tcp = at + ipLength;
      const seq = (firstSeq + i * gsoSize) >>> 0;
      out[tcp + 4] = seq >>> 24;
      out[tcp + 5] = (seq >>> 16) & 0xff;
      out[tcp + 6] = (seq >>> 8) & 0xff;
      out[tcp + 7] = seq & 0xff;
      let segmentFlags = flags;
      if (i > 0) segmentFlags &= ~FLAG_CWR;
      if (i < count - 1) segmentFlags &= ~(FLAG_FIN | FLAG_PSH);
      out[tcp + TCP_FLAGS] = segmentFlags;
      out[tcp + TCP_CHECKSUM] = 0;
      out[tcp + TCP_CHECKSUM + 1] = 0;
      const pseudo = foldChecksum(addressSum + PROTOCOL_TCP + (segmentLength - ipLength));
      const tcpChecksum = ~sumBytes(out, tcp, at + segmentLength, pseudo) & 0xffff;
      out[tcp + TCP_CHECKSUM] = tcpChecksum >> 8;
      out[tcp + TCP_CHECKSUM + 1] = tcpChecksum & 0xff;

      this.offsets[i] = at;
      this.lengths[i] = segmentLength;
      cursor = at + segmentLength;
    }
    return count;
  }

  /**
   * split() for a super-segment `layout` has just read (one from a peer, or one the TUN reader
   * kept whole): no vnet header, and its checksum fields are not read.
   */
  splitSuperSegment(packet: Uint8Array, layout: SuperSegmentLayout, gsoSize: number, out: Uint8Array, outOffset = 0): number {
    const header = this.layoutHeader;
    header.gsoType = layout.v6 ? 'tcpv6' : 'tcpv4';
    header.gsoSize = gsoSize;
    return this.split(packet, header, out, outOffset);
  }

  private checkRoom(out: Uint8Array, end: number): void {
    if (end > out.length) throw new SegmentError('output-too-small', `segments need ${end} bytes of output, buffer holds ${out.length}`);
  }
}

/**
 * The shape of a TCP super-segment, as read and checked by read(): a valid IPv4 (options
 * allowed, no fragment) or IPv6 (no extension headers) TCP packet whose IP length fields match
 * the buffer exactly, and how many packets of `gsoSize` payload bytes it stands for. One
 * instance is reused per caller, so reading allocates nothing.
 */
export class SuperSegmentLayout {
  v6 = false;
  ipLength = 0;
  tcpLength = 0;
  /** Packets it stands for; 1 when the payload fits one packet (or there is none), as in tcp_gso_segment. */
  count = 0;

  get headerLength(): number {
    return this.ipLength + this.tcpLength;
  }

  /** read() for input from outside (a peer, a TUN): false instead of a SegmentError. */
  accepts(packet: Uint8Array, gsoSize: number, maxSegments: number, family?: 4 | 6): boolean {
    try {
      this.read(packet, gsoSize, maxSegments, family);
      return true;
    } catch (err) {
      if (err instanceof SegmentError) return false;
      throw err;
    }
  }

  /** Throws SegmentError when `packet` is not one; `family`, when given, must be its IP version. */
  read(packet: Uint8Array, gsoSize: number, maxSegments: number, family?: 4 | 6): this {
    const ipLength = this.checkIp(packet, family);
    const length = packet.length;
    if (ipLength + TCP_MIN_HEADER > length) throw new SegmentError('tcp-header', `no room for a TCP header after the ${ipLength}-byte IP header`);
    const tcpLength = (packet[ipLength + 12]! >> 4) * 4;
    if (tcpLength < TCP_MIN_HEADER || ipLength + tcpLength > length) {
      throw new SegmentError('tcp-header', `TCP data offset ${tcpLength} bytes does not fit the ${length - ipLength}-byte segment`);
    }
    if (!(Number.isInteger(gsoSize) && gsoSize >= 1)) throw new SegmentError('zero-gso-size', `gso_size ${gsoSize} must be positive`);
    const payload = length - ipLength - tcpLength;
    const count = payload <= gsoSize ? 1 : Math.ceil(payload / gsoSize);
    if (count > maxSegments) throw new SegmentError('too-many-segments', `${count} segments of ${gsoSize} bytes exceed the limit of ${maxSegments}`);
    this.ipLength = ipLength;
    this.tcpLength = tcpLength;
    this.count = count;
    return this;
  }

  /** Validates the IP header of a TCP super-segment and returns its length. */
  private checkIp(packet: Uint8Array, family: 4 | 6 | undefined): number {
    const version = ipVersion(packet);
    if (version !== 4 && version !== 6) throw new SegmentError('not-ip', `not an IP packet (version ${version})`);
    if (family !== undefined && version !== family) throw new SegmentError('gso-family-mismatch', `gso_type tcpv${family} on an IPv${version} packet`);
    this.v6 = version === 6;
    const problem = ipHeaderError(packet);
    if (problem !== null) throw new SegmentError('ip-header', problem);
    if (version === 6) {
      // Exact lengths: trailing bytes would otherwise be cut into segments as payload.
      const payloadLength = (packet[4]! << 8) | packet[5]!;
      if (IPV6_HEADER + payloadLength !== packet.length) {
        throw new SegmentError('length-mismatch', `IPv6 payload length ${payloadLength} disagrees with the ${packet.length}-byte packet`);
      }
      const next = packet[6]!;
      if (next !== PROTOCOL_TCP) {
        if (isIpv6Extension(next)) throw new SegmentError('ipv6-extension-header', `IPv6 extension header ${next} before TCP is not supported`);
        throw new SegmentError('not-tcp', `IPv6 next header ${next} is not TCP`);
      }
      return IPV6_HEADER;
    }
    const totalLength = (packet[2]! << 8) | packet[3]!;
    if (totalLength !== packet.length) throw new SegmentError('length-mismatch', `IPv4 total length ${totalLength} disagrees with the ${packet.length}-byte packet`);
    if ((packet[6]! & 0x20) !== 0 || (((packet[6]! & 0x1f) << 8) | packet[7]!) !== 0) {
      throw new SegmentError('fragment', 'an IPv4 fragment cannot be segmented');
    }
    if (packet[9] !== PROTOCOL_TCP) throw new SegmentError('not-tcp', `IPv4 protocol ${packet[9]} is not TCP`);
    // IPv4 options are copied into every segment, as inet_gso_segment does.
    return (packet[0]! & 0x0f) * 4;
  }
}
