// The TUN device's offload paths without a kernel: what OffloadReader makes of reads that carry a
// virtio_net_hdr, and how OffloadWriter merges a batch and maps the kernel's verdicts back.
import { describe, expect, it } from 'vitest';
import { OffloadReader } from '../../../src/tun/offload-reader.js';
import { OffloadWriter } from '../../../src/tun/offload-writer.js';
import { VNET_HEADER_LENGTH, decodeVnetHeader, encodeVnetHeader, noneVnetHeader, type VnetHeader } from '../../../src/tun/vnet-header.js';
import { FLAG, buildSuperSegment, buildTcp, fixChecksums, naiveTcpProblem, patternBytes, readU32, type TcpSpec } from '../../helpers/tcp-packets.js';

/** Reads back to back as the addon delivers them: header, then packet. */
function reads(items: Array<{ header: VnetHeader; packet: Uint8Array }>): { buffer: Uint8Array; lengths: Uint32Array } {
  const buffer = new Uint8Array(items.reduce((n, r) => n + VNET_HEADER_LENGTH + r.packet.length, 0));
  const lengths = new Uint32Array(items.length);
  let at = 0;
  items.forEach((r, i) => {
    encodeVnetHeader(r.header, buffer, at);
    buffer.set(r.packet, at + VNET_HEADER_LENGTH);
    lengths[i] = VNET_HEADER_LENGTH + r.packet.length;
    at += lengths[i]!;
  });
  return { buffer, lengths };
}

const flow: TcpSpec = { src: [10, 42, 0, 1], dst: [10, 42, 0, 2], sport: 40000, dport: 5201, ack: 7, flags: FLAG.ACK };

describe('OffloadReader', () => {
  it('splits a TSO super-segment into MTU-sized packets with valid checksums, and passes plain packets through', () => {
    const payload = patternBytes(20_000, 1);
    const superSegment = buildSuperSegment({ ...flow, seq: 1000, payload }, 7948);
    const plain = fixChecksums(buildTcp({ ...flow, seq: 5, payload: patternBytes(100, 2) }));
    const { buffer, lengths } = reads([{ header: noneVnetHeader(), packet: plain }, superSegment]);
    const views: Uint8Array[] = [];
    const reader = new OffloadReader();
    const count = reader.expand(buffer, lengths, 2, views);
    expect(count).toBe(1 + 3); // 20 000 bytes in segments of 7948
    expect(views[0]).toEqual(plain);
    let seq = 1000;
    let carried = 0;
    for (const p of views.slice(1, count)) {
      expect(naiveTcpProblem(p)).toBeNull();
      expect(readU32(p, 24)).toBe(seq);
      const data = p.length - 40;
      expect(p.subarray(40)).toEqual(payload.subarray(carried, carried + data));
      seq += data;
      carried += data;
    }
    expect(carried).toBe(payload.length);
    expect(reader.takeRefused().size).toBe(0);
  });

  it('finishes a partial checksum the kernel left (TUN_F_CSUM) on a packet it did not segment', () => {
    const { packet, header } = buildSuperSegment({ ...flow, seq: 1, payload: patternBytes(500, 3) }, 1000);
    const { buffer, lengths } = reads([{ header: { ...header, gsoType: 'none', gsoSize: 0 }, packet }]);
    const views: Uint8Array[] = [];
    expect(new OffloadReader().expand(buffer, lengths, 1, views)).toBe(1);
    expect(naiveTcpProblem(views[0]!)).toBeNull();
  });

  it('drops and counts by reason what it cannot read, and keeps the rest of the batch', () => {
    const plain = fixChecksums(buildTcp({ ...flow, seq: 5, payload: patternBytes(10, 4) }));
    const { buffer, lengths } = reads([
      { header: noneVnetHeader(), packet: plain },
      { header: { ...noneVnetHeader(), gsoType: 'udp_l4', gsoSize: 100 }, packet: plain },
      { header: noneVnetHeader(), packet: plain },
    ]);
    buffer[VNET_HEADER_LENGTH + plain.length] = 0x80; // an unknown flag on the second read
    const reader = new OffloadReader();
    const views: Uint8Array[] = [];
    expect(reader.expand(buffer, Uint32Array.of(...lengths, 5), 4, views)).toBe(2);
    expect([...reader.takeRefused()]).toEqual([
      ['unknown-flags', 1],
      ['truncated', 1],
    ]);
    expect(reader.takeRefused().size).toBe(0);
  });
});

describe('OffloadWriter', () => {
  const segments = (seq: number, n: number, size: number): Uint8Array[] =>
    Array.from({ length: n }, (_, i) => fixChecksums(buildTcp({ ...flow, seq: seq + i * size, payload: patternBytes(size, 10 + i) })));

  it('merges one flow’s in-order segments under a GSO header and writes other packets under "none"', () => {
    const other = fixChecksums(buildTcp({ ...flow, sport: 40001, seq: 9, payload: patternBytes(50, 9) }));
    const packets = [...segments(100, 4, 1000), other];
    const written: Array<{ header: VnetHeader; length: number }> = [];
    const status = new Uint8Array(packets.length);
    const taken = new OffloadWriter().write(packets, packets.length, status, (outs, n, outStatus, headers) => {
      for (let k = 0; k < n; k++) {
        written.push({ header: decodeVnetHeader(headers, k * VNET_HEADER_LENGTH, outs[k]!.length), length: outs[k]!.length });
        outStatus[k] = 1;
      }
      return n;
    });
    expect(taken).toBe(5);
    expect([...status]).toEqual([1, 1, 1, 1, 1]);
    expect(written.map((w) => [w.header.gsoType, w.header.gsoSize, w.length])).toEqual([
      ['tcpv4', 1000, 40 + 4000],
      ['none', 0, other.length],
    ]);
  });

  it('reports every input of an output the kernel dropped as dropped, the others as taken', () => {
    const other = fixChecksums(buildTcp({ ...flow, sport: 40001, seq: 9, payload: patternBytes(50, 9) }));
    const packets = [...segments(100, 3, 1000), other];
    const status = new Uint8Array(packets.length);
    const taken = new OffloadWriter().write(packets, packets.length, status, (_outs, n, outStatus) => {
      outStatus[0] = 0; // the merged one
      outStatus[1] = 1;
      return n - 1;
    });
    expect(taken).toBe(1);
    expect([...status]).toEqual([0, 0, 0, 1]);
  });

  it('handles batches longer than one chunk, in order', () => {
    const packets = segments(1, 300, 100);
    const status = new Uint8Array(packets.length);
    let carried = 0;
    const taken = new OffloadWriter().write(packets, packets.length, status, (outs, n, outStatus) => {
      for (let k = 0; k < n; k++) {
        carried += outs[k]!.length - 40;
        outStatus[k] = 1;
      }
      return n;
    });
    expect(taken).toBe(300);
    expect(carried).toBe(300 * 100);
    expect(status.every((s) => s === 1)).toBe(true);
  });

  it('maps a PSH segment that ends its run to that run (the run closes as it joins)', () => {
    const packets = segments(100, 3, 1000);
    packets[2] = fixChecksums(buildTcp({ ...flow, seq: 2100, flags: FLAG.ACK | FLAG.PSH, payload: patternBytes(1000, 12) }));
    const status = new Uint8Array(3);
    let outputs = 0;
    const taken = new OffloadWriter().write(packets, 3, status, (_outs, n, outStatus) => {
      outputs = n;
      outStatus.fill(1, 0, n);
      return n;
    });
    expect(outputs).toBe(1);
    expect(taken).toBe(3);
    expect([...status]).toEqual([1, 1, 1]);
  });
});
