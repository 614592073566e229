// Reads addresses out of raw IP packets for the forwarding path: the destination picks the
// route on send, the source is checked against the sending peer's routes on receive
// (anti-spoofing, like WireGuard's allowed-IPs check). Called once per packet, so nothing here
// allocates: results go into caller-owned buffers or come back as offsets.
//
// Strictness: a packet is refused when its header is one the kernel's own input path
// (ip_rcv / ipv6_rcv) would drop for its lengths: too short, wrong version, IPv4 IHL < 5 or
// past the end, IPv4 total length outside IHL*4..packet length, IPv6 payload length past the
// end. Outbound packets from our TUN always pass; inbound packets from a peer that fail would
// be dropped by the kernel anyway, and refusing them here means they are counted, not
// forwarded. Checksums and extension headers are the kernel's business, not ours.

export const IPV4_MIN_HEADER = 20;
export const IPV6_HEADER = 40;

const IPV4_SOURCE = 12;
const IPV4_DESTINATION = 16;
const IPV6_SOURCE = 8;
const IPV6_DESTINATION = 24;

/** The IP version nibble (4 or 6 for valid packets), or 0 for an empty buffer. */
export function ipVersion(packet: Uint8Array): number {
  return packet.length === 0 ? 0 : packet[0]! >> 4;
}

/** Why the packet's IP header is unusable, or null if addresses can be read from it. */
export function ipHeaderError(packet: Uint8Array): string | null {
  const version = ipVersion(packet);
  if (version === 4) {
    if (packet.length < IPV4_MIN_HEADER) return 'IPv4 packet shorter than the 20-byte minimum header';
    const headerLength = (packet[0]! & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER) return 'IPv4 header length (IHL) below 5';
    if (headerLength > packet.length) return 'IPv4 header length (IHL) runs past the end of the packet';
    const totalLength = (packet[2]! << 8) | packet[3]!;
    if (totalLength < headerLength) return 'IPv4 total length is smaller than its header';
    if (totalLength > packet.length) return 'IPv4 total length runs past the end of the packet';
    return null;
  }
  if (version === 6) {
    if (packet.length < IPV6_HEADER) return 'IPv6 packet shorter than the 40-byte header';
    const payloadLength = (packet[4]! << 8) | packet[5]!;
    if (IPV6_HEADER + payloadLength > packet.length) return 'IPv6 payload length runs past the end of the packet';
    return null;
  }
  return packet.length === 0 ? 'empty packet' : `not an IP packet (version ${version})`;
}

/** Byte offset of the destination address (4 bytes for IPv4, 16 for IPv6), or -1 if malformed. */
export function destinationOffset(packet: Uint8Array): number {
  if (ipHeaderError(packet) !== null) return -1;
  return packet[0]! >> 4 === 4 ? IPV4_DESTINATION : IPV6_DESTINATION;
}

/** Byte offset of the source address (4 bytes for IPv4, 16 for IPv6), or -1 if malformed. */
export function sourceOffset(packet: Uint8Array): number {
  if (ipHeaderError(packet) !== null) return -1;
  return packet[0]! >> 4 === 4 ? IPV4_SOURCE : IPV6_SOURCE;
}

function copyAddress(packet: Uint8Array, offset: number, out4: Uint8Array, out16: Uint8Array): Uint8Array | null {
  if (out4.length !== 4 || out16.length !== 16) {
    throw new Error(`address buffers must be 4 and 16 bytes, got ${out4.length} and ${out16.length}`);
  }
  if (offset < 0) return null;
  const out = packet[0]! >> 4 === 4 ? out4 : out16;
  for (let i = 0; i < out.length; i++) out[i] = packet[offset + i]!;
  return out;
}

/**
 * Copies the destination address into `out4` (IPv4, 4 bytes) or `out16` (IPv6, 16 bytes) and
 * returns whichever was filled, or null if the packet is malformed. The buffers are the caller's
 * to reuse; the returned one is overwritten by the next call with the same buffers.
 */
export function readDestination(packet: Uint8Array, out4: Uint8Array, out16: Uint8Array): Uint8Array | null {
  return copyAddress(packet, destinationOffset(packet), out4, out16);
}

/** Like readDestination, for the source address. */
export function readSource(packet: Uint8Array, out4: Uint8Array, out16: Uint8Array): Uint8Array | null {
  return copyAddress(packet, sourceOffset(packet), out4, out16);
}
