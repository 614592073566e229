import { describe, expect, it } from 'vitest';
import {
  VNET_HEADER_LENGTH,
  VnetHeaderError,
  decodeVnetHeader,
  decodeVnetHeaderInto,
  encodeVnetHeader,
  noneVnetHeader,
  type VnetHeader,
  type VnetHeaderErrorReason,
} from '../../../src/tun/vnet-header.js';
import { reasonOf as reasonOfError } from '../../helpers/tcp-packets.js';

/** A TSO read as the kernel writes it on x86: NEEDS_CSUM, TCPV4, hdr_len 52, gso_size 1448, csum 20+16 (little-endian). */
const TSO_BYTES = Uint8Array.of(0x01, 0x01, 52, 0, 0xa8, 0x05, 20, 0, 16, 0);

function withPacket(header: Uint8Array, packetLength: number): Uint8Array {
  const out = new Uint8Array(VNET_HEADER_LENGTH + packetLength);
  out.set(header);
  return out;
}

const reasonOf = (f: () => unknown): VnetHeaderErrorReason | 'no error' => reasonOfError(f, VnetHeaderError);

describe('virtio_net_hdr codec', () => {
  it('decodes a kernel TSO header (little-endian)', () => {
    expect(decodeVnetHeader(withPacket(TSO_BYTES, 3000))).toEqual({
      needsChecksum: true,
      dataValid: false,
      gsoType: 'tcpv4',
      ecn: false,
      hdrLen: 52,
      gsoSize: 1448,
      csumStart: 20,
      csumOffset: 16,
    });
  });

  it('decodes big-endian fields when asked (legacy virtio on a big-endian host)', () => {
    const bytes = Uint8Array.of(0x01, 0x84, 0, 72, 0x05, 0xa0, 0, 40, 0, 16);
    const header = decodeVnetHeader(withPacket(bytes, 3000), 0, 3000, false);
    expect(header).toMatchObject({ gsoType: 'tcpv6', ecn: true, hdrLen: 72, gsoSize: 1440, csumStart: 40, csumOffset: 16 });
  });

  it('reads at an offset, with an explicit packet length, into a reused object', () => {
    const buffer = new Uint8Array(100);
    buffer.set(TSO_BYTES, 30);
    const out = noneVnetHeader();
    expect(decodeVnetHeaderInto(buffer, 30, out, 60)).toBe(out);
    expect(out.gsoSize).toBe(1448);
    expect(reasonOf(() => decodeVnetHeaderInto(buffer, 30, out, 51))).toBe('header-length-out-of-range');
  });

  it('round-trips every GSO type, both flags and both byte orders', () => {
    const headers: VnetHeader[] = [
      noneVnetHeader(),
      { ...noneVnetHeader(), dataValid: true },
      { ...noneVnetHeader(), needsChecksum: true, csumStart: 20, csumOffset: 6 },
      { needsChecksum: true, dataValid: false, gsoType: 'tcpv4', ecn: false, hdrLen: 40, gsoSize: 1, csumStart: 20, csumOffset: 16 },
      { needsChecksum: true, dataValid: false, gsoType: 'tcpv6', ecn: true, hdrLen: 60, gsoSize: 65535, csumStart: 40, csumOffset: 16 },
      { needsChecksum: true, dataValid: false, gsoType: 'udp_l4', ecn: false, hdrLen: 48, gsoSize: 1200, csumStart: 40, csumOffset: 6 },
    ];
    for (const littleEndian of [true, false]) {
      for (const header of headers) {
        const bytes = new Uint8Array(VNET_HEADER_LENGTH + 100);
        expect(encodeVnetHeader(header, bytes, 0, littleEndian)).toBe(VNET_HEADER_LENGTH);
        expect(decodeVnetHeader(bytes, 0, 100, littleEndian)).toEqual(header);
      }
    }
  });

  it('encodes the kernel byte layout exactly', () => {
    const out = new Uint8Array(12).fill(0xee);
    expect(encodeVnetHeader(decodeVnetHeader(withPacket(TSO_BYTES, 3000)), out, 1)).toBe(11);
    expect(Array.from(out)).toEqual([0xee, ...TSO_BYTES, 0xee]);
  });

  it('refuses malformed headers with a typed reason', () => {
    const cases: [Uint8Array, number, VnetHeaderErrorReason][] = [
      [Uint8Array.of(0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0), 100, 'unknown-flags'],
      [Uint8Array.of(0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0), 100, 'unknown-flags'],
      [Uint8Array.of(0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0), 100, 'conflicting-flags'],
      [Uint8Array.of(0x01, 0x03, 0, 0, 8, 0, 20, 0, 6, 0), 100, 'unsupported-gso-type'],
      [Uint8Array.of(0x01, 0x02, 0, 0, 8, 0, 20, 0, 6, 0), 100, 'unsupported-gso-type'],
      [Uint8Array.of(0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0), 100, 'ecn-without-tcp'],
      [Uint8Array.of(0x01, 0x85, 0, 0, 8, 0, 20, 0, 6, 0), 100, 'ecn-without-tcp'],
      [Uint8Array.of(0x01, 0x01, 40, 0, 0, 0, 20, 0, 16, 0), 100, 'zero-gso-size'],
      [Uint8Array.of(0x01, 0x01, 101, 0, 1, 0, 20, 0, 16, 0), 100, 'header-length-out-of-range'],
      [Uint8Array.of(0x01, 0x01, 0, 0, 1, 0, 20, 0, 16, 0), 37, 'checksum-out-of-range'],
      [Uint8Array.of(0x01, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), 100, 'checksum-out-of-range'],
    ];
    for (const [bytes, packetLength, reason] of cases) {
      expect(reasonOf(() => decodeVnetHeader(withPacket(bytes, packetLength))), `${Array.from(bytes)} / ${packetLength}`).toBe(reason);
    }
    expect(reasonOf(() => decodeVnetHeader(Uint8Array.of(1, 1, 0, 0, 1)))).toBe('truncated');
    expect(reasonOf(() => decodeVnetHeader(withPacket(TSO_BYTES, 0), 1))).toBe('truncated');
    expect(reasonOf(() => decodeVnetHeader(withPacket(TSO_BYTES, 3000), -1))).toBe('truncated');
    expect(reasonOf(() => decodeVnetHeader(withPacket(TSO_BYTES, 3000), 0, -5))).toBe('invalid-field');
  });

  it('accepts exactly the checksum field at the very end of the packet', () => {
    const bytes = Uint8Array.of(0x01, 0x00, 0, 0, 0, 0, 20, 0, 6, 0);
    expect(reasonOf(() => decodeVnetHeader(withPacket(bytes, 28)))).toBe('no error');
    expect(reasonOf(() => decodeVnetHeader(withPacket(bytes, 27)))).toBe('checksum-out-of-range');
  });

  it('ignores the checksum fields when NEEDS_CSUM is clear, as the kernel does', () => {
    const bytes = Uint8Array.of(0x00, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff);
    expect(decodeVnetHeader(withPacket(bytes, 20))).toMatchObject({ needsChecksum: false, csumStart: 0xffff, csumOffset: 0xffff });
  });

  it('refuses to encode what it could not decode', () => {
    const out = new Uint8Array(VNET_HEADER_LENGTH);
    const base: VnetHeader = { needsChecksum: true, dataValid: false, gsoType: 'tcpv4', ecn: false, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 16 };
    expect(reasonOf(() => encodeVnetHeader(base, new Uint8Array(9)))).toBe('truncated');
    expect(reasonOf(() => encodeVnetHeader(base, out, 1))).toBe('truncated');
    expect(reasonOf(() => encodeVnetHeader({ ...base, gsoSize: 0 }, out))).toBe('zero-gso-size');
    expect(reasonOf(() => encodeVnetHeader({ ...base, gsoSize: 65536 }, out))).toBe('invalid-field');
    expect(reasonOf(() => encodeVnetHeader({ ...base, hdrLen: -1 }, out))).toBe('invalid-field');
    expect(reasonOf(() => encodeVnetHeader({ ...base, csumStart: 1.5 }, out))).toBe('invalid-field');
    expect(reasonOf(() => encodeVnetHeader({ ...base, dataValid: true }, out))).toBe('conflicting-flags');
    expect(reasonOf(() => encodeVnetHeader({ ...base, gsoType: 'udp_l4', ecn: true }, out))).toBe('ecn-without-tcp');
    expect(reasonOf(() => encodeVnetHeader({ ...base, gsoType: 'ufo' as unknown as 'none' }, out))).toBe('invalid-field');
    expect(reasonOf(() => encodeVnetHeader({ ...base, gsoType: 'toString' as unknown as 'none' }, out))).toBe('invalid-field');
  });
});
