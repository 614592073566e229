// The Internet checksum (RFC 1071) for the TUN offload path: segmenting a TSO super-segment
// needs one per output packet, and coalescing checks one per input packet, so this runs over
// every byte the data plane moves. Nothing here allocates.
//
// Sums are carried as "partial sums": non-negative numbers that are congruent to the
// ones'-complement sum modulo 0xffff. They can be added with `+` (doubles are exact to 2^53,
// far beyond what 64 KiB of data can add up to) and folded to 16 bits at the end; the fold
// keeps 0xffff distinct from 0 the way the end-around carry does. A range is summed as if it
// started at an even position, so a transport header can begin at any offset (RFC 1071 2(B):
// the sum is byte-order independent up to a swap, but alignment to the range start matters).

export const PROTOCOL_TCP = 6;
export const PROTOCOL_UDP = 17;

/** Folds a partial sum to 16 bits with end-around carry. 0 stays 0; nothing else becomes 0. */
export function foldChecksum(sum: number): number {
  // `& 0xffff` is exact for sums up to 2^53: ToInt32 drops multiples of 2^32, which are
  // multiples of 2^16 too. The division carries the rest.
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Adds bytes[start..end) to `initial` as big-endian 16-bit words (an odd last byte padded with
 * zero) and returns the folded 16-bit sum, not complemented.
 */
export function sumBytes(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  // Bytes at even and odd positions are summed separately (one add each, no shifts in the
  // loop) and combined once: high * 256 + low is the sum of the words. Four bytes per step;
  // 64 KiB gives high, low < 2^24, so nothing overflows before the final fold.
  let high = 0;
  let low = 0;
  let i = start;
  const end4 = end - 3;
  for (; i < end4; i += 4) {
    high += bytes[i]! + bytes[i + 2]!;
    low += bytes[i + 1]! + bytes[i + 3]!;
  }
  if (i + 1 < end) {
    high += bytes[i]!;
    low += bytes[i + 1]!;
    i += 2;
  }
  if (i < end) high += bytes[i]!;
  return foldChecksum(initial + high * 256 + low);
}

/** The checksum to store: the complement of the folded sum of bytes[start..end) and `initial`. */
export function internetChecksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  return ~sumBytes(bytes, start, end, initial) & 0xffff;
}

/**
 * The pseudo-header sum for TCP/UDP over the IP packet at `packet[ipStart]` (IPv4 RFC 793/768,
 * IPv6 RFC 8200 8.1): source and destination address, protocol, and `transportLength` (the
 * TCP/UDP header plus payload). Folded, not complemented: exactly the value the kernel leaves
 * in the checksum field of a CHECKSUM_PARTIAL packet, and the `initial` for the rest.
 */
export function pseudoHeaderSum(packet: Uint8Array, ipStart: number, isV6: boolean, protocol: number, transportLength: number): number {
  // The addresses are contiguous in both headers: IPv4 source at 12, destination at 16; IPv6
  // source at 8, destination at 24. The IPv6 length is 32 bits, so both halves are added.
  const from = ipStart + (isV6 ? 8 : 12);
  const addresses = sumBytes(packet, from, from + (isV6 ? 32 : 8));
  return foldChecksum(addresses + protocol + (transportLength & 0xffff) + Math.floor(transportLength / 0x10000));
}

/** The IPv4 header checksum for a header of `headerLength` bytes whose checksum field is zero. */
export function ipv4HeaderChecksum(packet: Uint8Array, ipStart: number, headerLength: number): number {
  return internetChecksum(packet, ipStart, ipStart + headerLength);
}

/**
 * True when the TCP/UDP segment at packet[transportStart..end) carries a correct checksum for
 * the pseudo-header of the IP packet at `ipStart`: summing everything, checksum field included,
 * gives 0xffff (negative zero).
 */
export function transportChecksumValid(packet: Uint8Array, ipStart: number, isV6: boolean, protocol: number, transportStart: number, end: number): boolean {
  const pseudo = pseudoHeaderSum(packet, ipStart, isV6, protocol, end - transportStart);
  return sumBytes(packet, transportStart, end, pseudo) === 0xffff;
}
