import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpCoalescer, type CoalescerOptions } from '../../../src/forward/coalesce.js';
import { TcpSegmenter } from '../../../src/forward/segment.js';
import { VNET_HEADER_LENGTH, decodeVnetHeader, type VnetHeader } from '../../../src/tun/vnet-header.js';
import { FLAG, buildSuperSegment, buildTcp, fixChecksums, ipHeaderLength, naivePseudoSum, naiveTcpProblem, patternBytes, readU16, readU32, timestampOption, type TcpSpec } from '../../helpers/tcp-packets.js';
import { fuzz, FUZZ_TIMEOUT_MS } from '../../helpers/fuzz.js';

interface Output {
  header: VnetHeader;
  packet: Uint8Array;
  segments: number;
}

function run(coalescer: TcpCoalescer, packets: Uint8Array[]): Output[] {
  coalescer.reset();
  for (const p of packets) if (!coalescer.add(p)) throw new Error('batch full');
  const count = coalescer.finish();
  const outputs: Output[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(VNET_HEADER_LENGTH + coalescer.outputLength(i));
    expect(coalescer.copyOutput(i, bytes, 0)).toBe(bytes.length);
    outputs.push({ header: decodeVnetHeader(bytes), packet: bytes.subarray(VNET_HEADER_LENGTH), segments: coalescer.segmentCount(i) });
  }
  return outputs;
}

function coalesce(packets: Uint8Array[], options: CoalescerOptions = {}): Output[] {
  return run(new TcpCoalescer(options), packets);
}

/** The packets a merged output stands for, split again; a passed-through one as itself. */
function expand(output: Output): Uint8Array[] {
  if (output.header.gsoType === 'none') return [output.packet];
  const segmenter = new TcpSegmenter();
  const out = new Uint8Array(output.packet.length + output.segments * output.header.hdrLen);
  const count = segmenter.split(output.packet, output.header, out);
  return Array.from({ length: count }, (_, i) => out.slice(segmenter.offsets[i]!, segmenter.offsets[i]! + segmenter.lengths[i]!));
}

/** A flow of `count` in-order data segments of `size` bytes (the last `last` bytes when given). */
function flow(spec: TcpSpec, count: number, size: number, last = size): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let seq = spec.seq ?? 1000;
  for (let i = 0; i < count; i++) {
    const length = i === count - 1 ? last : size;
    packets.push(buildTcp({ ...spec, seq, id: (spec.id ?? 100) + i, payload: patternBytes(length, seq) }));
    seq += length;
  }
  return packets;
}

/** Why `output` is not the correct merge of `inputs`, or null. Plain comparisons: the round trip calls it often. */
function mergedProblem(output: Output, inputs: Uint8Array[]): string | null {
  const p = output.packet;
  const v6 = p[0]! >> 4 === 6;
  const ip = ipHeaderLength(p);
  const tcp = (p[ip + 12]! >> 4) * 4;
  const want: VnetHeader = {
    needsChecksum: true,
    dataValid: false,
    gsoType: v6 ? 'tcpv6' : 'tcpv4',
    ecn: (inputs[0]![ip + 13]! & FLAG.CWR) !== 0,
    hdrLen: ip + tcp,
    gsoSize: inputs[0]!.length - ip - tcp,
    csumStart: ip,
    csumOffset: 16,
  };
  if (JSON.stringify(output.header) !== JSON.stringify(want)) return `vnet header ${JSON.stringify(output.header)}, want ${JSON.stringify(want)}`;
  if (readU16(p, ip + 16) !== naivePseudoSum(p, 6, p.length - ip)) return 'TCP checksum field is not the pseudo-header sum';
  const again = expand(output);
  if (again.length !== inputs.length) return `splits into ${again.length} packets, merged ${inputs.length}`;
  for (const [i, s] of again.entries()) {
    const problem = naiveTcpProblem(s);
    if (problem !== null) return `packet ${i} split again: ${problem}`;
    // Splitting again restores every input, but for the IPv4 ID (first + i) and its checksum.
    const want = inputs[i]!.slice();
    if (!v6) {
      want[4] = s[4]!;
      want[5] = s[5]!;
      fixChecksums(want);
    }
    if (!Buffer.from(s).equals(want)) return `packet ${i} split again differs from its input`;
  }
  return null;
}

function checkMerged(output: Output, inputs: Uint8Array[]): void {
  expect(mergedProblem(output, inputs)).toBeNull();
}

describe('TCP coalescing (userspace GRO)', () => {
  it('merges in-order segments of one flow into one super-segment, IPv4 and IPv6', () => {
    for (const v6 of [false, true]) {
      const packets = flow({ v6, options: timestampOption(42, 7) }, 5, 1000, 300);
      const outputs = coalesce(packets);
      expect(outputs).toHaveLength(1);
      expect(outputs[0]!.segments).toBe(5);
      expect(outputs[0]!.packet.length).toBe(ipHeaderLength(packets[0]!) + 32 + 4300);
      checkMerged(outputs[0]!, packets);
    }
  });

  it('passes single packets and non-TCP traffic through unchanged with a none header', () => {
    const udp = buildTcp({ payload: patternBytes(10, 1) });
    udp[9] = 17;
    const packets = [buildTcp({ payload: patternBytes(100, 2) }), udp, new Uint8Array(0), Uint8Array.of(0x45, 1, 2), patternBytes(80, 3), buildTcp({ v6: true, payload: patternBytes(1, 3) })];
    const coalescer = new TcpCoalescer();
    coalescer.reset();
    for (const p of packets) coalescer.add(p);
    expect(coalescer.finish()).toBe(packets.length);
    for (const [i, p] of packets.entries()) {
      expect(coalescer.isMerged(i)).toBe(false);
      expect(coalescer.outputBuffer(i)).toBe(p); // zero-copy pass-through
      expect(coalescer.outputOffset(i)).toBe(0);
      expect(Array.from(coalescer.headers.subarray(i * 10, i * 10 + 10))).toEqual(new Array(10).fill(0));
    }
  });

  it('keeps different flows apart when interleaved, ordered by their first packet', () => {
    const a = flow({ sport: 1111 }, 3, 500);
    const b = flow({ sport: 2222, seq: 9 }, 2, 500);
    const c = flow({ v6: true, sport: 1111 }, 2, 500);
    const d = flow({ dst: [10, 42, 0, 10], sport: 1111 }, 2, 500);
    const outputs = coalesce([a[0]!, b[0]!, c[0]!, a[1]!, d[0]!, b[1]!, c[1]!, d[1]!, a[2]!]);
    expect(outputs.map((o) => o.segments)).toEqual([3, 2, 2, 2]);
    checkMerged(outputs[0]!, a);
    checkMerged(outputs[1]!, b);
    checkMerged(outputs[2]!, c);
    checkMerged(outputs[3]!, d);
  });

  it('never merges out of order: a gap or a retransmission ends the run', () => {
    const p = flow({}, 6, 400);
    expect(coalesce([p[0]!, p[2]!, p[1]!]).map((o) => o.segments)).toEqual([1, 1, 1]);
    expect(coalesce([p[0]!, p[1]!, p[3]!, p[4]!]).map((o) => o.segments)).toEqual([2, 2]);
    expect(coalesce([p[0]!, p[1]!, p[1]!, p[2]!]).map((o) => o.segments)).toEqual([2, 2]);
    expect(coalesce([p[1]!, p[0]!]).map((o) => o.segments)).toEqual([1, 1]);
  });

  it('stops at flags: SYN, FIN, RST, URG never merge; PSH ends a run; CWR only starts one', () => {
    const p = flow({}, 3, 400);
    const withFlags = (packet: Uint8Array, flags: number): Uint8Array => {
      const copy = packet.slice();
      copy[33] = flags;
      return fixChecksums(copy);
    };
    for (const flag of [FLAG.SYN, FLAG.FIN, FLAG.RST, FLAG.URG]) {
      expect(coalesce([p[0]!, withFlags(p[1]!, FLAG.ACK | flag), p[2]!]).map((o) => o.segments), `flag ${flag}`).toEqual([1, 1, 1]);
    }
    expect(coalesce([withFlags(p[0]!, 0), p[1]!]).map((o) => o.segments)).toEqual([1, 1]);
    const psh = coalesce([p[0]!, withFlags(p[1]!, FLAG.ACK | FLAG.PSH), p[2]!]);
    expect(psh.map((o) => o.segments)).toEqual([2, 1]);
    checkMerged(psh[0]!, [p[0]!, withFlags(p[1]!, FLAG.ACK | FLAG.PSH)]);
    expect(coalesce([withFlags(p[0]!, FLAG.ACK | FLAG.PSH), p[1]!, p[2]!]).map((o) => o.segments)).toEqual([1, 2]);
    const cwrFirst = [withFlags(p[0]!, FLAG.ACK | FLAG.CWR), p[1]!, p[2]!];
    const cwr = coalesce(cwrFirst);
    expect(cwr.map((o) => o.segments)).toEqual([3]);
    expect(cwr[0]!.header.ecn).toBe(true);
    checkMerged(cwr[0]!, cwrFirst);
    expect(coalesce([p[0]!, withFlags(p[1]!, FLAG.ACK | FLAG.CWR), p[2]!]).map((o) => o.segments)).toEqual([1, 2]);
    const ece = p.map((q) => withFlags(q, FLAG.ACK | FLAG.ECE));
    expect(coalesce(ece).map((o) => o.segments)).toEqual([3]);
    expect(coalesce([ece[0]!, p[1]!]).map((o) => o.segments)).toEqual([1, 1]);
  });

  it('lets a pure ACK or a malformed TCP packet of the flow end the run, keeping order', () => {
    const p = flow({}, 3, 400);
    const ack = buildTcp({ seq: readU32(p[1]!, 24) });
    expect(coalesce([p[0]!, p[1]!, ack, p[2]!]).map((o) => o.segments)).toEqual([2, 1, 1]);
    const badOffset = p[2]!.slice();
    badOffset[32] = 0x40;
    expect(coalesce([p[0]!, p[1]!, badOffset]).map((o) => o.segments)).toEqual([2, 1]);
  });

  it('requires equal ACK numbers, window and IP/TCP header fields; ignores the IPv4 ID', () => {
    const variants: [TcpSpec, boolean][] = [
      [{ ack: 78 }, false],
      [{ ttl: 63 }, false],
      [{ tos: 4 }, false],
      [{ df: false }, false],
      [{ options: timestampOption(2) }, false],
      [{ window: 9999 }, false],
      [{ id: 5 }, true],
    ];
    for (const [change, merges] of variants) {
      const first = buildTcp({ options: timestampOption(1), seq: 1000, payload: patternBytes(500, 1) });
      const second = buildTcp({ options: timestampOption(1), seq: 1500, payload: patternBytes(500, 2), ...change });
      expect(coalesce([first, second]).map((o) => o.segments), JSON.stringify(change)).toEqual(merges ? [2] : [1, 1]);
    }
    for (const change of [{ flowLabel: 7 }, { tos: 1 }, { ttl: 1 }]) {
      const first = buildTcp({ v6: true, seq: 1000, payload: patternBytes(500, 1) });
      const second = buildTcp({ v6: true, seq: 1500, payload: patternBytes(500, 2), ...change });
      expect(coalesce([first, second]).map((o) => o.segments), JSON.stringify(change)).toEqual([1, 1]);
    }
    const ipOptions = buildTcp({ ipOptions: Uint8Array.of(1, 1, 1, 0), seq: 1000, payload: patternBytes(500, 1) });
    expect(coalesce([ipOptions, buildTcp({ ipOptions: Uint8Array.of(1, 1, 1, 0), seq: 1500, payload: patternBytes(500, 1) })]).map((o) => o.segments)).toEqual([1, 1]);
  });

  it('takes equal sizes and a shorter last one, never a larger one after', () => {
    expect(coalesce(flow({}, 4, 1000, 500)).map((o) => o.segments)).toEqual([4]);
    const p = [buildTcp({ seq: 0, payload: patternBytes(1000, 1) }), buildTcp({ seq: 1000, payload: patternBytes(500, 1) }), buildTcp({ seq: 1500, payload: patternBytes(1000, 1) })];
    expect(coalesce(p).map((o) => o.segments)).toEqual([2, 1]);
    expect(coalesce([p[1]!, buildTcp({ seq: 1500, payload: patternBytes(1000, 1) })].reverse().reverse()).map((o) => o.segments)).toEqual([1, 1]);
  });

  it('respects the size limit: 64 KiB by default, or maxPacketLength', () => {
    const big = coalesce(flow({}, 50, 1400));
    // 40 header bytes + 46 * 1400 = 64440 fits; one more would be 65840.
    expect(big.map((o) => o.segments)).toEqual([46, 4]);
    expect(big[0]!.packet.length).toBe(64440);
    const small = coalesce(flow({}, 7, 1000), { maxPacketLength: 3040 });
    expect(small.map((o) => o.segments)).toEqual([3, 3, 1]);
    const v6 = coalesce(flow({ v6: true }, 50, 1400));
    expect(v6.map((o) => o.segments)).toEqual([46, 4]);
  });

  it('never merges a packet whose TCP or IPv4 header checksum is wrong', () => {
    const p = flow({}, 4, 400);
    const badTcp = p[1]!.slice();
    badTcp[50]! ^= 1;
    const outputs = coalesce([p[0]!, badTcp, p[2]!, p[3]!]);
    expect(outputs.map((o) => o.segments)).toEqual([1, 1, 2]);
    expect(outputs[1]!.packet).toEqual(badTcp);
    const badHead = p[0]!.slice();
    badHead[45]! ^= 1;
    expect(coalesce([badHead, p[1]!, p[2]!]).map((o) => o.segments)).toEqual([1, 2]);
    const badIp = p[1]!.slice();
    badIp[10]! ^= 1; // only the IPv4 header checksum is wrong
    expect(coalesce([p[0]!, badIp, p[2]!]).map((o) => o.segments)).toEqual([1, 1, 1]);
  });

  it('bounds flows, merged buffers and batch size', () => {
    const flows = [1, 2, 3].map((port) => flow({ sport: port }, 2, 300));
    const interleaved = [flows[0]![0]!, flows[1]![0]!, flows[2]![0]!, flows[0]![1]!, flows[1]![1]!, flows[2]![1]!];
    expect(coalesce(interleaved, { maxFlows: 2 }).map((o) => o.segments)).toEqual([2, 2, 1, 1]);
    expect(coalesce(interleaved, { maxMerged: 1 }).map((o) => o.segments)).toEqual([2, 1, 1, 1, 1]);
    const coalescer = new TcpCoalescer({ maxBatch: 2 });
    coalescer.reset();
    const p = flow({}, 4, 300);
    const other = buildTcp({ sport: 9, payload: patternBytes(10, 1) });
    expect(coalescer.add(p[0]!)).toBe(true);
    expect(coalescer.add(other)).toBe(true);
    expect(coalescer.add(p[1]!)).toBe(true); // merges: needs no new output
    expect(coalescer.add(buildTcp({ sport: 10 }))).toBe(false);
    expect(coalescer.finish()).toBe(2);
    expect(coalescer.segmentCount(0)).toBe(2);
    expect(() => new TcpCoalescer({ maxFlows: 0 })).toThrow(RangeError);
    expect(() => new TcpCoalescer({ maxPacketLength: 65536 })).toThrow(RangeError);
  });

  it('reuses its buffers across batches, and guards its outputs', () => {
    const coalescer = new TcpCoalescer({ maxMerged: 1 });
    const first = flow({ sport: 1 }, 3, 700);
    const second = flow({ sport: 2, v6: true }, 4, 600, 10);
    checkMerged(run(coalescer, first)[0]!, first);
    const buffer = coalescer.outputBuffer(0);
    checkMerged(run(coalescer, second)[0]!, second);
    expect(coalescer.outputBuffer(0)).toBe(buffer);
    const header = decodeVnetHeader(buffer, 0, coalescer.outputLength(0));
    expect(header.gsoSize).toBe(600);
    expect(() => coalescer.add(first[0]!)).toThrow(/reset/);
    coalescer.reset();
    coalescer.add(first[0]!);
    expect(() => coalescer.outputLength(0)).toThrow(RangeError);
    coalescer.finish();
    expect(() => coalescer.outputLength(1)).toThrow(RangeError);
    expect(() => coalescer.copyOutput(0, new Uint8Array(10), 0)).toThrow(RangeError);
  });
});

describe('segment, then coalesce: a round trip against the naive checksum', () => {
  const tcpSpec = fc.record({
    v6: fc.boolean(),
    payloadLength: fc.integer({ min: 1, max: 65000 }),
    seq: fc.nat({ max: 0xffffffff }),
    timestamps: fc.boolean(),
    psh: fc.boolean(),
    cwr: fc.boolean(),
    seed: fc.integer(),
  });
  const segmenter = new TcpSegmenter();
  const coalescer = new TcpCoalescer();
  const out = new Uint8Array(300_000);

  it(
    'random payloads and gso sizes come back as the original byte stream, every packet valid',
    () =>
      fuzz('offload round trip', 0.02, tcpSpec, fc.integer({ min: 1, max: 9000 }), (s, gsoPick) => {
        const options = s.timestamps ? timestampOption(s.seed) : undefined;
        const headers = (s.v6 ? 40 : 20) + (s.timestamps ? 32 : 20);
        // At most 512 segments per super-segment (a gso_size of 1 would be 65000 packets),
        // and the super-segment within 64 KiB.
        const payloadLength = Math.min(s.payloadLength, 65535 - headers);
        const gsoSize = Math.max(gsoPick, Math.ceil(payloadLength / 512));
        const flags = FLAG.ACK | (s.psh ? FLAG.PSH : 0) | (s.cwr ? FLAG.CWR : 0);
        const payload = patternBytes(payloadLength, s.seed);
        const { packet, header } = buildSuperSegment({ v6: s.v6, seq: s.seq, options, flags, payload }, gsoSize);
        const count = segmenter.split(packet, header, out);
        const segments: Uint8Array[] = [];
        for (let i = 0; i < count; i++) segments.push(out.subarray(segmenter.offsets[i]!, segmenter.offsets[i]! + segmenter.lengths[i]!));
        for (const segment of segments) {
          const problem = naiveTcpProblem(segment);
          if (problem !== null) throw new Error(problem);
        }
        // One coalescer batch at a time, as the receive path would feed it.
        const outputs: Output[] = [];
        for (let at = 0; at < count; at += coalescer.maxBatch) outputs.push(...run(coalescer, segments.slice(at, at + coalescer.maxBatch)));
        // Byte stream: the merged payloads in order are the original payload.
        const streamed = Buffer.concat(outputs.map((o) => o.packet.subarray(headers)));
        if (!streamed.equals(payload)) throw new Error('payload differs after the round trip');
        if (outputs.reduce((n, o) => n + o.segments, 0) !== count) throw new Error('segment count differs');
        // In one batch, in-order segments all merge: a run only ends at 64 KiB, a batch end, or PSH.
        if (count > 1 && outputs.length > Math.ceil(count / coalescer.maxBatch) * 2) throw new Error(`${count} segments came out as ${outputs.length} packets`);
        let seq = s.seq;
        for (const o of outputs) {
          if (readU32(o.packet, s.v6 ? 44 : 24) !== seq) throw new Error('sequence number of a merged packet');
          seq = (seq + o.packet.length - headers) >>> 0;
          const merged = segments.splice(0, o.segments);
          const problem = o.segments > 1 ? mergedProblem(o, merged) : merged[0] === o.packet || Buffer.from(merged[0]!).equals(o.packet) ? null : 'pass-through changed';
          if (problem !== null) throw new Error(problem);
        }
      }),
    FUZZ_TIMEOUT_MS,
  );
});
