// The 10-byte virtio_net_hdr that a TUN opened with IFF_VNET_HDR puts in front of every packet
// (include/uapi/linux/virtio_net.h; 10 is TUNSETVNETHDRSZ's default, without num_buffers):
//   u8 flags | u8 gso_type | u16 hdr_len | u16 gso_size | u16 csum_start | u16 csum_offset
// The u16s are __virtio16: little-endian when IFF_VNET_LE is set, else native (legacy virtio),
// so little-endian on x86 and arm64 either way; big-endian hosts pass littleEndian = false.
//
// The kernel's word is not trusted: the fields say where we will read and write inside the
// packet, so every offset is checked against the packet's length here, and a header that the
// kernel itself would refuse on write (virtio_net_hdr_to_skb) is refused with a typed error.
// hdr_len is only a hint (wireguard-go's handleVirtioRead re-derives it from the TCP header, as
// must the segmenter); it is still bounded by the packet.

export const VNET_HEADER_LENGTH = 10;

const FLAG_NEEDS_CSUM = 0x01;
const FLAG_DATA_VALID = 0x02;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_UDP = 3;
const GSO_TCPV6 = 4;
const GSO_UDP_L4 = 5;
const GSO_ECN = 0x80;

export type GsoType = 'none' | 'tcpv4' | 'tcpv6' | 'udp_l4';

export interface VnetHeader {
  /** VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at csumStart + csumOffset holds only the pseudo-header sum. */
  needsChecksum: boolean;
  /** VIRTIO_NET_HDR_F_DATA_VALID: the kernel already verified the checksum (kernel to user only). */
  dataValid: boolean;
  gsoType: GsoType;
  /** VIRTIO_NET_HDR_GSO_ECN: the TCP super-segment has CWR set (SKB_GSO_TCP_ECN). */
  ecn: boolean;
  /** Length of the IP + transport headers: a hint, bounded by the packet. */
  hdrLen: number;
  /** Payload bytes per segment; non-zero for GSO. */
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export type VnetHeaderErrorReason =
  | 'truncated'
  | 'unknown-flags'
  | 'conflicting-flags'
  | 'unsupported-gso-type'
  | 'ecn-without-tcp'
  | 'zero-gso-size'
  | 'header-length-out-of-range'
  | 'checksum-out-of-range'
  | 'invalid-field';

/** A header we refuse; `reason` is stable so callers can count refusals by kind. */
export class VnetHeaderError extends Error {
  override readonly name = 'VnetHeaderError';
  constructor(
    readonly reason: VnetHeaderErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** A fresh header that describes a plain packet: no GSO, checksum complete. */
export function noneVnetHeader(): VnetHeader {
  return { needsChecksum: false, dataValid: false, gsoType: 'none', ecn: false, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

function readU16(bytes: Uint8Array, at: number, littleEndian: boolean): number {
  return littleEndian ? bytes[at]! | (bytes[at + 1]! << 8) : (bytes[at]! << 8) | bytes[at + 1]!;
}

function writeU16(out: Uint8Array, at: number, value: number, littleEndian: boolean): void {
  out[at] = littleEndian ? value & 0xff : value >> 8;
  out[at + 1] = littleEndian ? value >> 8 : value & 0xff;
}

function gsoTypeOf(code: number): GsoType | null {
  switch (code) {
    case GSO_NONE:
      return 'none';
    case GSO_TCPV4:
      return 'tcpv4';
    case GSO_TCPV6:
      return 'tcpv6';
    case GSO_UDP_L4:
      return 'udp_l4';
    default:
      return null;
  }
}

const GSO_CODES: Readonly<Record<GsoType, number>> = Object.freeze({ none: GSO_NONE, tcpv4: GSO_TCPV4, tcpv6: GSO_TCPV6, udp_l4: GSO_UDP_L4 });

/**
 * Decodes the header at bytes[offset] into `out` (reused by the caller: the hot path allocates
 * nothing) and checks it against `packetLength`, the number of packet bytes that follow it.
 * Throws VnetHeaderError; `out` is unspecified after a throw.
 */
export function decodeVnetHeaderInto(bytes: Uint8Array, offset: number, out: VnetHeader, packetLength: number, littleEndian = true): VnetHeader {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + VNET_HEADER_LENGTH <= bytes.length)) {
    throw new VnetHeaderError('truncated', `virtio_net_hdr needs ${VNET_HEADER_LENGTH} bytes at offset ${offset}, buffer holds ${bytes.length}`);
  }
  if (!(Number.isInteger(packetLength) && packetLength >= 0)) {
    throw new VnetHeaderError('invalid-field', `packet length ${packetLength} is not a non-negative integer`);
  }
  const flags = bytes[offset]!;
  const gsoByte = bytes[offset + 1]!;
  if ((flags & ~(FLAG_NEEDS_CSUM | FLAG_DATA_VALID)) !== 0) {
    // RSC_INFO (4) reuses the checksum fields and is never set by a TUN; anything else is unknown.
    throw new VnetHeaderError('unknown-flags', `virtio_net_hdr flags 0x${flags.toString(16)} include unknown bits`);
  }
  if ((flags & FLAG_NEEDS_CSUM) !== 0 && (flags & FLAG_DATA_VALID) !== 0) {
    // The kernel sets one or the other (CHECKSUM_PARTIAL or CHECKSUM_UNNECESSARY), never both.
    throw new VnetHeaderError('conflicting-flags', 'virtio_net_hdr says both NEEDS_CSUM and DATA_VALID');
  }
  const gsoType = gsoTypeOf(gsoByte & ~GSO_ECN);
  if (gsoType === null) {
    const what = (gsoByte & ~GSO_ECN) === GSO_UDP ? ' (UFO)' : '';
    throw new VnetHeaderError('unsupported-gso-type', `virtio_net_hdr gso_type 0x${gsoByte.toString(16)}${what} is not supported`);
  }
  const ecn = (gsoByte & GSO_ECN) !== 0;
  if (ecn && gsoType !== 'tcpv4' && gsoType !== 'tcpv6') {
    throw new VnetHeaderError('ecn-without-tcp', `virtio_net_hdr ECN bit on gso_type ${gsoType}`);
  }
  const hdrLen = readU16(bytes, offset + 2, littleEndian);
  const gsoSize = readU16(bytes, offset + 4, littleEndian);
  const csumStart = readU16(bytes, offset + 6, littleEndian);
  const csumOffset = readU16(bytes, offset + 8, littleEndian);
  if (gsoType !== 'none' && gsoSize === 0) {
    throw new VnetHeaderError('zero-gso-size', `virtio_net_hdr gso_type ${gsoType} with gso_size 0`);
  }
  if (hdrLen > packetLength) {
    throw new VnetHeaderError('header-length-out-of-range', `virtio_net_hdr hdr_len ${hdrLen} exceeds the ${packetLength}-byte packet`);
  }
  const needsChecksum = (flags & FLAG_NEEDS_CSUM) !== 0;
  // skb_partial_csum_set's rule: the 2-byte checksum field must lie inside the packet.
  if (needsChecksum && csumStart + csumOffset + 2 > packetLength) {
    throw new VnetHeaderError(
      'checksum-out-of-range',
      `virtio_net_hdr checksum at ${csumStart}+${csumOffset} runs past the ${packetLength}-byte packet`,
    );
  }
  out.needsChecksum = needsChecksum;
  out.dataValid = (flags & FLAG_DATA_VALID) !== 0;
  out.gsoType = gsoType;
  out.ecn = ecn;
  out.hdrLen = hdrLen;
  out.gsoSize = gsoSize;
  out.csumStart = csumStart;
  out.csumOffset = csumOffset;
  return out;
}

/**
 * Decodes the header at bytes[offset] into a fresh object. `packetLength` defaults to every
 * byte after the header, as when `bytes` is exactly one read() from the TUN.
 */
export function decodeVnetHeader(bytes: Uint8Array, offset = 0, packetLength = bytes.length - offset - VNET_HEADER_LENGTH, littleEndian = true): VnetHeader {
  return decodeVnetHeaderInto(bytes, offset, noneVnetHeader(), packetLength, littleEndian);
}

function checkU16(value: number, field: string): void {
  if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff)) {
    throw new VnetHeaderError('invalid-field', `virtio_net_hdr ${field} ${value} is not a u16`);
  }
}

/**
 * Writes `header` at out[offset] and returns the offset just past it. Refuses (typed) what
 * decode would refuse regardless of the packet: fields outside u16, GSO with gso_size 0, ECN
 * without TCP, both checksum flags, or too little room.
 */
export function encodeVnetHeader(header: VnetHeader, out: Uint8Array, offset = 0, littleEndian = true): number {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + VNET_HEADER_LENGTH <= out.length)) {
    throw new VnetHeaderError('truncated', `virtio_net_hdr needs ${VNET_HEADER_LENGTH} bytes at offset ${offset}, buffer holds ${out.length}`);
  }
  checkU16(header.hdrLen, 'hdr_len');
  checkU16(header.gsoSize, 'gso_size');
  checkU16(header.csumStart, 'csum_start');
  checkU16(header.csumOffset, 'csum_offset');
  if (header.needsChecksum && header.dataValid) {
    throw new VnetHeaderError('conflicting-flags', 'virtio_net_hdr cannot say both NEEDS_CSUM and DATA_VALID');
  }
  if (header.gsoType !== 'none' && header.gsoSize === 0) {
    throw new VnetHeaderError('zero-gso-size', `virtio_net_hdr gso_type ${header.gsoType} with gso_size 0`);
  }
  // Checked at run time too: a header built by untyped code must not encode as GSO_NONE.
  const gsoCode = Object.hasOwn(GSO_CODES, header.gsoType) ? GSO_CODES[header.gsoType] : undefined;
  if (gsoCode === undefined) throw new VnetHeaderError('invalid-field', `virtio_net_hdr gso_type ${String(header.gsoType)} is unknown`);
  const isTcp = header.gsoType === 'tcpv4' || header.gsoType === 'tcpv6';
  if (header.ecn && !isTcp) throw new VnetHeaderError('ecn-without-tcp', `virtio_net_hdr ECN bit on gso_type ${header.gsoType}`);
  out[offset] = (header.needsChecksum ? FLAG_NEEDS_CSUM : 0) | (header.dataValid ? FLAG_DATA_VALID : 0);
  out[offset + 1] = gsoCode | (header.ecn ? GSO_ECN : 0);
  writeU16(out, offset + 2, header.hdrLen, littleEndian);
  writeU16(out, offset + 4, header.gsoSize, littleEndian);
  writeU16(out, offset + 6, header.csumStart, littleEndian);
  writeU16(out, offset + 8, header.csumOffset, littleEndian);
  return offset + VNET_HEADER_LENGTH;
}
