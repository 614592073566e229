// USO in userspace: with TUNSETOFFLOAD TUN_F_USO4/USO6 (Linux 6.2+) an application's UDP GSO
// send (UDP_SEGMENT, as QUIC stacks use) reaches the TUN as one UDP super-datagram with a
// virtio_net_hdr of type UDP_L4, and is cut here into the datagrams it stands for, the way the
// kernel's __udp_gso_segment does: every datagram gets a copy of the IP and UDP headers, its own
// IPv4 total length, ID (+1 per datagram) and header checksum or IPv6 payload length, its UDP
// length, and a UDP checksum computed from scratch (0 stored as 0xffff: 0 means "none" to UDP).
// Peers always get ordinary datagrams: there is no UDP super-datagram frame on the wire.

import type { VnetHeader } from '../tun/vnet-header.js';
import { PROTOCOL_UDP, foldChecksum, sumBytes } from './checksum.js';
import { IPV6_HEADER, ipHeaderError, ipVersion } from './packet.js';
import { DEFAULT_MAX_SEGMENTS, SegmentError, writeSegment } from './segment.js';

const UDP_HEADER = 8;
const UDP_CHECKSUM = 6;

/** Splits UDP super-datagrams; reuse one instance: `offsets` and `lengths` are its own. */
export class UdpSegmenter {
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;

  constructor(readonly maxSegments = DEFAULT_MAX_SEGMENTS) {
    this.offsets = new Int32Array(maxSegments);
    this.lengths = new Int32Array(maxSegments);
  }

  /**
   * Writes the datagrams `packet` (a UDP_L4 read) stands for back to back into out[outOffset..]
   * and returns how many. Throws SegmentError before writing anything when it is refused.
   */
  split(packet: Uint8Array, header: VnetHeader, out: Uint8Array, outOffset = 0): number {
    const ip = this.checkIp(packet);
    const v6 = ip === IPV6_HEADER;
    const length = packet.length;
    if (ip + UDP_HEADER > length) throw new SegmentError('udp-header', `no room for a UDP header after the ${ip}-byte IP header`);
    if (header.needsChecksum && (header.csumStart !== ip || header.csumOffset !== UDP_CHECKSUM)) {
      throw new SegmentError('checksum-start-mismatch', `csum_start ${header.csumStart} / csum_offset ${header.csumOffset} do not point at the UDP checksum (${ip}+6)`);
    }
    const gsoSize = header.gsoSize;
    if (!(Number.isInteger(gsoSize) && gsoSize >= 1)) throw new SegmentError('zero-gso-size', `gso_size ${gsoSize} must be positive`);
    const headerLength = ip + UDP_HEADER;
    const payload = length - headerLength;
    const count = payload <= gsoSize ? 1 : Math.ceil(payload / gsoSize);
    if (count > this.maxSegments) throw new SegmentError('too-many-segments', `${count} datagrams of ${gsoSize} bytes exceed the limit of ${this.maxSegments}`);
    const end = outOffset + count * headerLength + payload;
    if (end > out.length) throw new SegmentError('output-too-small', `datagrams need ${end} bytes of output, buffer holds ${out.length}`);

    const addressStart = v6 ? 8 : 12;
    const addressSum = sumBytes(packet, addressStart, addressStart + (v6 ? 32 : 8));
    const firstId = (packet[4]! << 8) | packet[5]!;
    let at = outOffset;
    for (let i = 0; i < count; i++) {
      const datagramLength = writeSegment(packet, ip, headerLength, gsoSize, i, firstId, out, at);
      const udp = at + ip;
      const udpLength = datagramLength - ip;
      writeU16(out, udp + 4, udpLength);
      writeU16(out, udp + UDP_CHECKSUM, 0);
      const checksum = ~sumBytes(out, udp, at + datagramLength, foldChecksum(addressSum + PROTOCOL_UDP + udpLength)) & 0xffff;
      writeU16(out, udp + UDP_CHECKSUM, checksum === 0 ? 0xffff : checksum);
      this.offsets[i] = at;
      this.lengths[i] = datagramLength;
      at += datagramLength;
    }
    return count;
  }

  /** Validates the IP header of a UDP super-datagram and returns its length. */
  private checkIp(packet: Uint8Array): number {
    const version = ipVersion(packet);
    if (version !== 4 && version !== 6) throw new SegmentError('not-ip', `not an IP packet (version ${version})`);
    const problem = ipHeaderError(packet);
    if (problem !== null) throw new SegmentError('ip-header', problem);
    if (version === 6) {
      if (IPV6_HEADER + ((packet[4]! << 8) | packet[5]!) !== packet.length) {
        throw new SegmentError('length-mismatch', `IPv6 payload length disagrees with the ${packet.length}-byte packet`);
      }
      if (packet[6] !== PROTOCOL_UDP) throw new SegmentError('not-udp', `IPv6 next header ${packet[6]} is not UDP`);
      return IPV6_HEADER;
    }
    if (((packet[2]! << 8) | packet[3]!) !== packet.length) throw new SegmentError('length-mismatch', `IPv4 total length disagrees with the ${packet.length}-byte packet`);
    if ((packet[6]! & 0x20) !== 0 || (((packet[6]! & 0x1f) << 8) | packet[7]!) !== 0) throw new SegmentError('fragment', 'an IPv4 fragment cannot be segmented');
    if (packet[9] !== PROTOCOL_UDP) throw new SegmentError('not-udp', `IPv4 protocol ${packet[9]} is not UDP`);
    return (packet[0]! & 0x0f) * 4;
  }
}

function writeU16(out: Uint8Array, at: number, value: number): void {
  out[at] = value >> 8;
  out[at + 1] = value & 0xff;
}
