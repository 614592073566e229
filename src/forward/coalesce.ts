// GRO in userspace for the receive side: with IFF_VNET_HDR one TUN write can carry a TCP
// super-segment that the kernel takes as if its own GRO had built it, so the local TCP stack sees
// a few large packets instead of many small ones. The rules follow wireguard-go's tcpGRO /
// tcpPacketsCanCoalesce (tun/offload_linux.go) and the kernel's tcp_gro_receive, but append only
// (a packet out of order ends its flow's run instead of being prepended or slotted in):
//   - TCP with ACK and payload, maybe PSH (ends the run) and CWR (first packet only); never SYN,
//     FIN, RST, URG; IPv4 without options or fragmentation;
//   - same flow, the next expected sequence number, and the same IP and TCP header bytes apart
//     from lengths, checksums, the IPv4 ID and those flags. Window and urgent pointer included
//     (stricter than the kernel, which keeps the first packet's), so splitting a merged packet
//     gives back its inputs byte for byte but for the IPv4 ID;
//   - the first packet's payload size throughout, except a shorter last one; maxPacketLength.
// A merged packet goes out under NEEDS_CSUM, which the kernel turns into CHECKSUM_PARTIAL and
// trusts, so a packet joins a run only once its TCP (and IPv4 header) checksum verifies: merging
// must never launder a corrupt packet past the kernel's check.
// Outputs come in the order of each run's first packet, and a TCP packet that cannot join its
// flow's open run ends it, so nothing of a flow moves behind a later packet of the same flow.
// Unmerged packets pass through untouched (the caller's array, a 'none' header); a super-segment
// from a peer (addSuperSegment) passes through too, under a GSO header, its checksum fields
// rewritten in the caller's array. Bounded per batch; records are preallocated, merge buffers
// allocated on first use and then reused; the only per-packet allocation is the subarray view
// that Uint8Array.set copies from.

import { VNET_HEADER_LENGTH, encodeVnetHeader, noneVnetHeader } from '../tun/vnet-header.js';
import { PROTOCOL_TCP, internetChecksum, ipv4HeaderChecksum, pseudoHeaderSum, transportChecksumValid } from './checksum.js';

export interface CoalescerOptions {
  maxBatch?: number; // packets per batch (default 128)
  maxFlows?: number; // flows tracked per batch (default 32); packets of further flows pass through
  maxMerged?: number; // merged packets per batch, each owning 10 + maxPacketLength bytes (default 16)
  maxPacketLength?: number; // largest merged IP packet (default and maximum 65535)
}

const ACK = 0x10;
const PSH = 0x08;
const CWR = 0x80;
const NEVER = 0x01 | 0x02 | 0x04 | 0x20; // FIN, SYN, RST, URG
// What classify() found: not TCP with a readable header (passes, flow unknown); TCP that
// cannot merge (passes, and ends its flow's open run); or a candidate.
const OTHER = 0;
const BLOCKER = 1;
const CANDIDATE = 2;

/** One output: a run of merged packets, or a packet passed through. Reused across batches. */
class Run {
  source: Uint8Array | null = null;
  slot = -1; // index of the buffer holding the merged packet, once a second packet joined
  length = 0; // IP packet bytes so far
  ip = 0;
  tcp = 0;
  gsoSize = 0; // the first packet's payload
  segments = 1;
  nextSeq = 0;
  open = false; // may take another packet
  checksum = 0; // the first packet's TCP checksum: 0 not checked yet, 1 valid, 2 invalid
  superGso = 0; // > 0: a super-segment from a peer, passed through under its own GSO header
}

/** A flow seen this batch: addresses (IPv4 zero-padded), ports and IP version; its open run or -1. */
class Flow {
  readonly key = new Uint8Array(37);
  hash = 0;
  run = -1;
}

function writeU16(out: Uint8Array, at: number, value: number): void {
  out[at] = value >> 8;
  out[at + 1] = value & 0xff;
}

function positive(value: number | undefined, fallback: number, max: number, name: string): number {
  const result = value ?? fallback;
  if (!(Number.isInteger(result) && result >= 1 && result <= max)) throw new RangeError(`${name} must be an integer in 1..${max}, got ${result}`);
  return result;
}

export class TcpCoalescer {
  readonly maxBatch: number;
  readonly maxFlows: number;
  readonly maxMerged: number;
  readonly maxPacketLength: number;
  /** The vnet header of output i at i * VNET_HEADER_LENGTH, valid after finish(). */
  readonly headers: Uint8Array;
  /** The output the packet of the last successful add() went into (to map results back to inputs). */
  lastOutput = -1;

  private count = 0;
  private finished = false;
  private readonly runs: Run[];
  private flowCount = 0;
  private readonly flows: Flow[];
  private slotCount = 0;
  private readonly slots: Uint8Array[] = [];
  // classify()'s findings about the packet being added.
  private v6 = false;
  private ip = 0;
  private tcp = 0;
  private payload = 0;
  private flags = 0;
  private seq = 0;
  private readonly header = noneVnetHeader();

  constructor(options: CoalescerOptions = {}) {
    this.maxBatch = positive(options.maxBatch, 128, 1 << 16, 'maxBatch');
    this.maxFlows = positive(options.maxFlows, 32, 1 << 16, 'maxFlows');
    this.maxMerged = positive(options.maxMerged, 16, 1 << 16, 'maxMerged');
    this.maxPacketLength = positive(options.maxPacketLength, 0xffff, 0xffff, 'maxPacketLength');
    this.headers = new Uint8Array(this.maxBatch * VNET_HEADER_LENGTH);
    this.runs = Array.from({ length: this.maxBatch }, () => new Run());
    this.flows = Array.from({ length: this.maxFlows }, () => new Flow());
  }

  /**
   * Adds one IP packet to the batch. The coalescer keeps a reference: `packet` must stay
   * unchanged until reset(). Returns false when the batch is full and the packet was not
   * taken: finish the batch, reset, and add it again.
   */
  add(packet: Uint8Array): boolean {
    if (this.finished) throw new Error('TcpCoalescer: reset() before adding to a new batch');
    const kind = this.classify(packet);
    const flow = kind === OTHER ? null : this.findFlow(packet, kind === CANDIDATE);
    const open = flow === null || flow.run < 0 ? null : this.runs[flow.run]!;
    // Read before append(), which closes the flow's run when this packet ends it.
    const openIndex = flow === null ? -1 : flow.run;
    if (kind === CANDIDATE && open !== null && this.append(open, flow!, packet)) {
      this.lastOutput = openIndex;
      return true;
    }
    if (this.count === this.maxBatch) return false;
    if (open !== null) {
      open.open = false;
      flow!.run = -1;
    }
    const run = this.startRun(packet, 0);
    if (kind === CANDIDATE && flow !== null) {
      run.ip = this.ip;
      run.tcp = this.tcp;
      run.gsoSize = this.payload;
      run.nextSeq = (this.seq + this.payload) >>> 0;
      // A PSH packet ends a run, so it cannot start one.
      if ((this.flags & PSH) === 0) {
        run.open = true;
        flow.run = this.count;
      }
    }
    this.lastOutput = this.count++;
    return true;
  }

  /**
   * Adds a TCP super-segment that arrived whole (SuperSegmentLayout-checked by the caller, two or
   * more segments of `gsoSize`). It passes through, ending its flow's open run, and finish()
   * gives it a GSO header and rewrites, in `packet` itself, the checksums the kernel relies on.
   * False when the batch is full, as add().
   */
  addSuperSegment(packet: Uint8Array, gsoSize: number): boolean {
    if (this.finished) throw new Error('TcpCoalescer: reset() before adding to a new batch');
    if (this.count === this.maxBatch) return false;
    const flow = this.classify(packet) === OTHER ? null : this.findFlow(packet, false);
    if (flow !== null && flow.run >= 0) {
      this.runs[flow.run]!.open = false;
      flow.run = -1;
    }
    this.startRun(packet, gsoSize);
    this.lastOutput = this.count++;
    return true;
  }

  /** The next output, holding `packet` alone and closed; the caller opens it or counts it. */
  private startRun(packet: Uint8Array, superGso: number): Run {
    const run = this.runs[this.count]!;
    run.source = packet;
    run.slot = -1;
    run.length = packet.length;
    run.segments = 1;
    run.open = false;
    run.checksum = 0;
    run.superGso = superGso;
    return run;
  }

  /** Completes the batch: fixes up merged packets and writes every output's vnet header. Returns the output count. */
  finish(): number {
    if (this.finished) return this.count;
    this.finished = true;
    this.headers.fill(0, 0, this.count * VNET_HEADER_LENGTH);
    for (let i = 0; i < this.count; i++) {
      const run = this.runs[i]!;
      if (run.superGso > 0) {
        const p = run.source!;
        const ip = p[0]! >> 4 === 6 ? 40 : (p[0]! & 0x0f) * 4;
        this.writeGso(p, 0, ip, (p[ip + 12]! >> 4) * 4, run.length, run.superGso, i);
      } else if (run.segments > 1) {
        const buffer = this.slots[run.slot]!;
        this.writeGso(buffer, VNET_HEADER_LENGTH, run.ip, run.tcp, run.length, run.gsoSize, i);
        buffer.set(this.headers.subarray(i * VNET_HEADER_LENGTH, (i + 1) * VNET_HEADER_LENGTH), 0);
      }
    }
    return this.count;
  }

  /**
   * Makes the IP packet at buffer[base..] a valid GSO write: its length fields, IPv4 header
   * checksum and, as CHECKSUM_PARTIAL wants, the pseudo-header sum in the TCP checksum field
   * (the kernel adds the rest); output i's vnet header goes into `headers`.
   */
  private writeGso(buffer: Uint8Array, base: number, ip: number, tcp: number, length: number, gsoSize: number, i: number): void {
    const v6 = buffer[base]! >> 4 === 6;
    if (v6) {
      writeU16(buffer, base + 4, length - ip);
    } else {
      writeU16(buffer, base + 2, length);
      writeU16(buffer, base + 10, 0);
      writeU16(buffer, base + 10, ipv4HeaderChecksum(buffer, base, ip));
    }
    writeU16(buffer, base + ip + 16, pseudoHeaderSum(buffer, base, v6, PROTOCOL_TCP, length - ip));
    const header = this.header;
    header.needsChecksum = true;
    header.gsoType = v6 ? 'tcpv6' : 'tcpv4';
    header.ecn = (buffer[base + ip + 13]! & CWR) !== 0; // as tcp_gro_complete sets SKB_GSO_TCP_ECN
    header.hdrLen = ip + tcp;
    header.gsoSize = gsoSize;
    header.csumStart = ip;
    header.csumOffset = 16;
    encodeVnetHeader(header, this.headers, i * VNET_HEADER_LENGTH);
  }

  /** Starts a new batch; outputs of the last one become invalid. */
  reset(): void {
    for (let i = 0; i < this.count; i++) this.runs[i]!.source = null;
    this.count = 0;
    this.flowCount = 0;
    this.slotCount = 0;
    this.finished = false;
  }

  /** True when output i is a merged super-segment (a GSO header), false when it passes through. */
  isMerged(i: number): boolean {
    return this.output(i).segments > 1;
  }

  /** How many input packets output i stands for. */
  segmentCount(i: number): number {
    return this.output(i).segments;
  }

  /**
   * The array holding output i's IP packet, at outputOffset(i) for outputLength(i) bytes. A
   * merged packet has its vnet header right in front (one write from offset - 10); a
   * passed-through one is the caller's own array: write headers[i * 10..] with it (writev), or
   * use copyOutput.
   */
  outputBuffer(i: number): Uint8Array {
    const run = this.output(i);
    return run.segments > 1 ? this.slots[run.slot]! : run.source!;
  }

  outputOffset(i: number): number {
    return this.output(i).segments > 1 ? VNET_HEADER_LENGTH : 0;
  }

  outputLength(i: number): number {
    return this.output(i).length;
  }

  /** Copies output i's vnet header and packet, contiguous, to dest[destOffset]; returns the offset past them. */
  copyOutput(i: number, dest: Uint8Array, destOffset: number): number {
    const length = this.outputLength(i);
    const end = destOffset + VNET_HEADER_LENGTH + length;
    if (!(Number.isInteger(destOffset) && destOffset >= 0 && end <= dest.length)) {
      throw new RangeError(`output ${i} needs ${VNET_HEADER_LENGTH + length} bytes at ${destOffset}, buffer holds ${dest.length}`);
    }
    dest.set(this.headers.subarray(i * VNET_HEADER_LENGTH, (i + 1) * VNET_HEADER_LENGTH), destOffset);
    const offset = this.outputOffset(i);
    dest.set(this.outputBuffer(i).subarray(offset, offset + length), destOffset + VNET_HEADER_LENGTH);
    return end;
  }

  private output(i: number): Run {
    if (!this.finished || !(Number.isInteger(i) && i >= 0 && i < this.count)) {
      throw new RangeError(`no output ${i}: ${this.finished ? `the batch has ${this.count}` : 'finish() the batch first'}`);
    }
    return this.runs[i]!;
  }

  /** OTHER, BLOCKER or CANDIDATE; for a candidate, its layout goes into the scratch fields. */
  private classify(p: Uint8Array): number {
    const length = p.length;
    if (length < 40) return OTHER;
    const version = p[0]! >> 4;
    const ip = version === 6 ? 40 : (p[0]! & 0x0f) * 4;
    if (version === 4) {
      // Fragments carry no TCP header (or only the first part of the segment): not ours.
      if (ip < 20 || ip + 20 > length || p[9] !== PROTOCOL_TCP || ((p[2]! << 8) | p[3]!) !== length || (p[6]! & 0x3f) !== 0 || p[7] !== 0) return OTHER;
    } else if (version !== 6 || length < 60 || p[6] !== PROTOCOL_TCP || 40 + ((p[4]! << 8) | p[5]!) !== length) {
      return OTHER;
    }
    // Options or a bad header checksum: IPv4 packets the kernel would check itself.
    const candidate = version === 6 || (ip === 20 && internetChecksum(p, 0, 20) === 0);
    const tcp = (p[ip + 12]! >> 4) * 4;
    const flags = p[ip + 13]!;
    if (tcp < 20 || ip + tcp >= length) return BLOCKER; // a bad data offset, or no payload
    if ((flags & ACK) === 0 || (flags & NEVER) !== 0 || !candidate) return BLOCKER;
    this.v6 = version === 6;
    this.ip = ip;
    this.tcp = tcp;
    this.payload = length - ip - tcp;
    this.flags = flags;
    this.seq = ((p[ip + 4]! << 24) | (p[ip + 5]! << 16) | (p[ip + 6]! << 8) | p[ip + 7]!) >>> 0;
    return CANDIDATE;
  }

  /** The flow of a TCP packet, added if `insert` and there is room; or null. */
  private findFlow(p: Uint8Array, insert: boolean): Flow | null {
    const v6 = p[0]! >> 4 === 6;
    const from = v6 ? 8 : 12;
    const addressBytes = v6 ? 32 : 8;
    const ports = v6 ? 40 : (p[0]! & 0x0f) * 4;
    // FNV-1a over the key: a cheap filter before the byte comparison.
    let hash = v6 ? 0x811c9dc5 : 0x050c5d1f;
    for (let j = 0; j < addressBytes; j++) hash = Math.imul(hash ^ p[from + j]!, 0x01000193);
    for (let j = 0; j < 4; j++) hash = Math.imul(hash ^ p[ports + j]!, 0x01000193);
    for (let f = 0; f < this.flowCount; f++) {
      const flow = this.flows[f]!;
      if (flow.hash !== hash) continue;
      const key = flow.key;
      let same = key[36] === p[0]! >> 4 && key[32] === p[ports] && key[33] === p[ports + 1] && key[34] === p[ports + 2] && key[35] === p[ports + 3];
      for (let j = 0; same && j < 32; j++) same = key[j] === (j < addressBytes ? p[from + j]! : 0);
      if (same) return flow;
    }
    if (!insert || this.flowCount === this.maxFlows) return null;
    const flow = this.flows[this.flowCount++]!;
    for (let j = 0; j < 32; j++) flow.key[j] = j < addressBytes ? p[from + j]! : 0;
    for (let j = 0; j < 4; j++) flow.key[32 + j] = p[ports + j]!;
    flow.key[36] = p[0]! >> 4;
    flow.hash = hash;
    flow.run = -1;
    return flow;
  }

  /** Appends candidate `p` (just classified) to its flow's open run, if every rule allows. */
  private append(run: Run, flow: Flow, p: Uint8Array): boolean {
    const { ip, tcp, payload, flags } = this;
    if (this.seq !== run.nextSeq || tcp !== run.tcp || payload > run.gsoSize || run.length + payload > this.maxPacketLength || (flags & CWR) !== 0) return false;
    const head = run.slot >= 0 ? this.slots[run.slot]! : run.source!;
    const base = run.slot >= 0 ? VNET_HEADER_LENGTH : 0;
    if (((flags ^ head[base + ip + 13]!) & ~(PSH | CWR)) !== 0 || !this.sameHeaders(head, base, p)) return false;
    if (run.checksum === 0) run.checksum = transportChecksumValid(head, base, this.v6, PROTOCOL_TCP, base + ip, base + run.length) ? 1 : 2;
    if (run.checksum !== 1 || !transportChecksumValid(p, 0, this.v6, PROTOCOL_TCP, ip, p.length)) return false;
    let buffer = head;
    if (run.slot < 0) {
      if (this.slotCount === this.maxMerged) return false;
      run.slot = this.slotCount++;
      if (this.slots.length === run.slot) this.slots.push(new Uint8Array(VNET_HEADER_LENGTH + this.maxPacketLength));
      buffer = this.slots[run.slot]!;
      buffer.set(head, VNET_HEADER_LENGTH);
    }
    buffer.set(p.subarray(ip + tcp), VNET_HEADER_LENGTH + run.length);
    run.length += payload;
    run.segments++;
    run.nextSeq = (this.seq + payload) >>> 0;
    if ((flags & PSH) !== 0) buffer[VNET_HEADER_LENGTH + ip + 13]! |= PSH;
    // PSH or a short packet is the last of a run.
    if ((flags & PSH) !== 0 || payload < run.gsoSize) {
      run.open = false;
      flow.run = -1;
    }
    return true;
  }

  /** IP and TCP header bytes that must match, beyond the flow key: all but lengths, checksums, ID, seq and flags. */
  private sameHeaders(head: Uint8Array, base: number, p: Uint8Array): boolean {
    if (this.v6) {
      if (head[base] !== p[0] || head[base + 1] !== p[1] || head[base + 2] !== p[2] || head[base + 3] !== p[3] || head[base + 7] !== p[7]) return false;
    } else if (head[base] !== p[0] || head[base + 1] !== p[1] || head[base + 6] !== p[6] || head[base + 8] !== p[8]) {
      return false;
    }
    const ip = this.ip;
    for (let j = 8; j < this.tcp; j++) {
      if (j === 13 || j === 16 || j === 17) continue; // flags (compared by the caller) and checksum
      if (head[base + ip + j] !== p[ip + j]) return false;
    }
    return true;
  }
}
