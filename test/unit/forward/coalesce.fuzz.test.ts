// Fuzzing the GRO coalescer with fast-check: it takes packets from peers (hostile ones too) and
// builds super-segments that the kernel will trust (NEEDS_CSUM). The properties, for batches of
// interleaved flows that are reordered, duplicated, corrupted, re-checksummed and mixed with
// garbage: add() never throws; every output is either an input passed through untouched (the same
// array, a 'none' header) or a merged packet whose vnet header decodes against its length, fits
// the size limit and splits back into valid packets; every input comes out exactly once, and
// only packets with correct checksums are ever merged.
// Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { describe, it } from 'vitest';
import { TcpCoalescer } from '../../../src/forward/coalesce.js';
import { TcpSegmenter } from '../../../src/forward/segment.js';
import { VNET_HEADER_LENGTH, decodeVnetHeader } from '../../../src/tun/vnet-header.js';
import { FUZZ_TIMEOUT_MS, editsArb, fuzz, mutateBytes, type Edit } from '../../helpers/fuzz.js';
import { FLAG, buildTcp, fixChecksums, ipHeaderLength, naiveTcpProblem, patternBytes, timestampOption } from '../../helpers/tcp-packets.js';

interface FlowSpec {
  v6: boolean;
  sport: number;
  timestamps: boolean;
  size: number;
  count: number;
  last: number;
  seq: number;
  pshAt: number;
}

type Op =
  | { kind: 'swap'; i: number; j: number }
  | { kind: 'duplicate'; i: number }
  | { kind: 'mutate'; i: number; edits: Edit[]; fix: boolean }
  | { kind: 'flags'; i: number; flags: number }
  | { kind: 'garbage'; at: number; bytes: Uint8Array };

const flowArb: fc.Arbitrary<FlowSpec> = fc.record({
  v6: fc.boolean(),
  sport: fc.constantFrom(1000, 1001, 1002),
  timestamps: fc.boolean(),
  size: fc.integer({ min: 1, max: 300 }),
  count: fc.integer({ min: 1, max: 8 }),
  last: fc.integer({ min: 1, max: 300 }),
  seq: fc.oneof(fc.nat({ max: 0xffffffff }), fc.constant(0xffffff00)),
  pshAt: fc.integer({ min: -1, max: 8 }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('swap' as const), i: fc.nat(), j: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), i: fc.nat() }),
  fc.record({ kind: fc.constant('mutate' as const), i: fc.nat(), edits: editsArb, fix: fc.boolean() }),
  fc.record({ kind: fc.constant('flags' as const), i: fc.nat(), flags: fc.constantFrom(FLAG.SYN, FLAG.FIN, FLAG.RST, FLAG.URG, FLAG.PSH, FLAG.CWR, FLAG.ECE, 0) }),
  fc.record({ kind: fc.constant('garbage' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 80 }) }),
);

const optionsArb = fc.record({
  maxFlows: fc.integer({ min: 1, max: 4 }),
  maxMerged: fc.integer({ min: 1, max: 4 }),
  maxPacketLength: fc.oneof(fc.constant(65535), fc.integer({ min: 100, max: 2000 })),
});

/** In-order data packets per flow, interleaved by `picks`. */
function buildBatch(flows: FlowSpec[], picks: number[]): Uint8Array[] {
  const queues = flows.map((f) => {
    const packets: Uint8Array[] = [];
    let seq = f.seq;
    for (let i = 0; i < f.count; i++) {
      const length = i === f.count - 1 ? Math.min(f.last, f.size) : f.size;
      const flags = FLAG.ACK | (i === f.pshAt ? FLAG.PSH : 0);
      const options = f.timestamps ? timestampOption(77) : undefined;
      packets.push(buildTcp({ v6: f.v6, sport: f.sport, seq, flags, options, id: i, payload: patternBytes(length, seq) }));
      seq = (seq + length) >>> 0;
    }
    return packets;
  });
  const batch: Uint8Array[] = [];
  for (const pick of picks) {
    const queue = queues[pick % queues.length]!;
    if (queue.length > 0) batch.push(queue.shift()!);
  }
  for (const queue of queues) batch.push(...queue);
  return batch;
}

function applyOps(batch: Uint8Array[], ops: Op[]): Uint8Array[] {
  const out = [...batch];
  for (const op of ops) {
    if (out.length === 0) break;
    const i = 'i' in op ? op.i % out.length : 0;
    switch (op.kind) {
      case 'swap': {
        const j = op.j % out.length;
        [out[i], out[j]] = [out[j]!, out[i]!];
        break;
      }
      case 'duplicate':
        out.splice(i, 0, out[i]!);
        break;
      case 'mutate': {
        const mutated = mutateBytes(out[i]!, op.edits);
        // Re-checksummed mutations reach the merge rules instead of the checksum check.
        if (op.fix && mutated.length >= 60 && naiveTcpProblem(mutated) !== null && ipHeaderLength(mutated) + 20 <= mutated.length) {
          try {
            fixChecksums(mutated);
          } catch {
            // the mutation left no room for a checksum field: keep it as it is
          }
        }
        out[i] = mutated;
        break;
      }
      case 'flags': {
        const p = out[i]!.slice();
        const ip = ipHeaderLength(p);
        if (ip + 20 <= p.length) p[ip + 13] = FLAG.ACK | op.flags;
        out[i] = ip + 20 <= p.length ? fixChecksums(p) : p;
        break;
      }
      case 'garbage':
        out.splice(op.at % (out.length + 1), 0, op.bytes);
        break;
    }
  }
  return out;
}

/** The bytes that may differ between an input and the same packet split back out of a merge: IPv4 ID and checksums. */
function normalized(p: Uint8Array): string {
  const copy = Uint8Array.from(p);
  const ip = ipHeaderLength(copy);
  if (copy[0]! >> 4 === 4) copy.fill(0, 4, 6).fill(0, 10, 12);
  copy.fill(0, ip + 16, ip + 18); // checksum
  return Buffer.from(copy).toString('hex');
}

function checkBatch(coalescer: TcpCoalescer, inputs: Uint8Array[]): void {
  const snapshots = inputs.map((p) => Uint8Array.from(p));
  coalescer.reset();
  for (const p of inputs) if (!coalescer.add(p)) throw new Error('batch reported full');
  const count = coalescer.finish();
  if (count > inputs.length) throw new Error(`${count} outputs for ${inputs.length} inputs`);
  const unused = new Set(inputs.map((_, i) => i));
  const merged: number[] = [];
  for (let i = 0; i < count; i++) {
    const length = coalescer.outputLength(i);
    const header = decodeVnetHeader(coalescer.headers, i * VNET_HEADER_LENGTH, length);
    if (!coalescer.isMerged(i)) {
      if (header.gsoType !== 'none' || header.needsChecksum) throw new Error('a pass-through got a GSO header');
      const buffer = coalescer.outputBuffer(i);
      const index = [...unused].find((j) => inputs[j] === buffer);
      if (index === undefined || coalescer.outputOffset(i) !== 0 || length !== buffer.length) throw new Error(`output ${i} is not an unused input`);
      unused.delete(index);
    } else {
      merged.push(i);
    }
  }
  const segmenter = new TcpSegmenter();
  for (const i of merged) {
    const length = coalescer.outputLength(i);
    if (length > coalescer.maxPacketLength) throw new Error(`merged packet of ${length} bytes exceeds the limit`);
    const contiguous = new Uint8Array(VNET_HEADER_LENGTH + length);
    coalescer.copyOutput(i, contiguous, 0);
    const offset = coalescer.outputOffset(i);
    if (!Buffer.from(coalescer.outputBuffer(i).subarray(offset - VNET_HEADER_LENGTH, offset + length)).equals(contiguous)) throw new Error('merged output is not contiguous with its header');
    const header = decodeVnetHeader(contiguous);
    const out = new Uint8Array(length + coalescer.segmentCount(i) * header.hdrLen);
    const n = segmenter.split(contiguous.subarray(VNET_HEADER_LENGTH), header, out);
    if (n !== coalescer.segmentCount(i) || n < 2) throw new Error(`merged output splits into ${n}, stands for ${coalescer.segmentCount(i)}`);
    for (let k = 0; k < n; k++) {
      const packet = out.subarray(segmenter.offsets[k]!, segmenter.offsets[k]! + segmenter.lengths[k]!);
      const problem = naiveTcpProblem(packet);
      if (problem !== null) throw new Error(`split back: ${problem}`);
      const key = normalized(packet);
      const index = [...unused].find((j) => normalized(inputs[j]!) === key && naiveTcpProblem(inputs[j]!) === null);
      if (index === undefined) throw new Error(`merged output ${i} holds a packet that is not a valid unused input`);
      unused.delete(index);
    }
  }
  if (unused.size > 0) throw new Error(`inputs ${[...unused].join(',')} were lost`);
  for (const [j, p] of inputs.entries()) if (!Buffer.from(p).equals(snapshots[j]!)) throw new Error(`input ${j} was changed`);
}

describe('GRO coalescer fuzz (fast-check)', () => {
  it(
    'interleaved, reordered, duplicated, corrupted batches: inputs come out exactly once, merges valid',
    () =>
      fuzz(
        'coalesce: batches',
        0.7,
        fc.array(flowArb, { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 24 }),
        fc.array(opArb, { maxLength: 6 }),
        optionsArb,
        (flows, picks, ops, options) => checkBatch(new TcpCoalescer({ ...options, maxBatch: 64 }), applyOps(buildBatch(flows, picks), ops)),
      ),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'arbitrary bytes and mutated packets only: nothing throws, everything passes through or merges validly',
    () => {
      const coalescer = new TcpCoalescer({ maxBatch: 64, maxMerged: 2 });
      const packet = fc.oneof(
        fc.uint8Array({ maxLength: 120 }),
        fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 200 }), editsArb).map(([v6, n, edits]) => mutateBytes(buildTcp({ v6, payload: patternBytes(n, n) }), edits)),
      );
      fuzz('coalesce: arbitrary', 0.3, fc.array(packet, { maxLength: 20 }), (packets) => checkBatch(coalescer, packets));
    },
    FUZZ_TIMEOUT_MS,
  );
});
