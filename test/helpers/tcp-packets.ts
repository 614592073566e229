// TCP/IP packets for the offload tests (checksum, segment, coalesce), built and checked with a
// naive checksum written independently of src/forward/checksum.ts: one 16-bit word at a time,
// end-around carry after every add, straight from RFC 1071's description.

import type { VnetHeader } from '../../src/tun/vnet-header.js';

/** RFC 1071, naively: the folded ones'-complement sum of `bytes` (odd length padded), plus `initial`. */
export function naiveSum(bytes: ArrayLike<number>, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += bytes[i]! * 256 + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return sum;
}

/** The naive pseudo-header sum of the IP packet `p` for `protocol` and `length` bytes of transport. */
export function naivePseudoSum(p: Uint8Array, protocol: number, length: number): number {
  const v6 = p[0]! >> 4 === 6;
  const addresses = v6 ? p.subarray(8, 40) : p.subarray(12, 20);
  const tail = v6 ? [length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff, 0, 0, 0, protocol] : [0, protocol, length >> 8, length & 0xff];
  return naiveSum(tail, naiveSum(addresses));
}

export function ipHeaderLength(p: Uint8Array): number {
  return p[0]! >> 4 === 6 ? 40 : (p[0]! & 0x0f) * 4;
}

/** Why `p` (IPv4/IPv6 + TCP) is not a valid packet by the naive checks, or null. */
export function naiveTcpProblem(p: Uint8Array): string | null {
  const v6 = p[0]! >> 4 === 6;
  const ip = ipHeaderLength(p);
  if (v6) {
    if (40 + p[4]! * 256 + p[5]! !== p.length) return `IPv6 payload length ${p[4]! * 256 + p[5]!} for ${p.length} bytes`;
  } else {
    if (p[2]! * 256 + p[3]! !== p.length) return `IPv4 total length ${p[2]! * 256 + p[3]!} for ${p.length} bytes`;
    if (naiveSum(p.subarray(0, ip)) !== 0xffff) return 'bad IPv4 header checksum';
  }
  if (naiveSum(p.subarray(ip), naivePseudoSum(p, 6, p.length - ip)) !== 0xffff) return 'bad TCP checksum';
  return null;
}

export interface TcpSpec {
  v6?: boolean;
  src?: number[];
  dst?: number[];
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** TCP options, padded to a multiple of 4 by the caller. */
  options?: Uint8Array;
  /** IPv4 options, a multiple of 4 bytes. */
  ipOptions?: Uint8Array;
  payload?: Uint8Array;
  id?: number;
  ttl?: number;
  tos?: number;
  flowLabel?: number;
  df?: boolean;
}

export const FLAG = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

/** TCP timestamps (kind 8) preceded by two NOPs: the 12 bytes Linux puts on every segment. */
export function timestampOption(tsval: number, tsecr = 0): Uint8Array {
  const o = new Uint8Array(12);
  o.set([1, 1, 8, 10]);
  new DataView(o.buffer).setUint32(4, tsval >>> 0);
  new DataView(o.buffer).setUint32(8, tsecr >>> 0);
  return o;
}

const V4_SRC = [10, 42, 0, 7];
const V4_DST = [10, 42, 0, 9];
const V6_SRC = [0xfd, 0, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const V6_DST = [0xfd, 0, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

/** A TCP packet with correct lengths and checksums (or, with `partial`, the pseudo-header sum in the TCP checksum field). */
export function buildTcp(spec: TcpSpec = {}, partial = false): Uint8Array {
  const v6 = spec.v6 ?? false;
  const options = spec.options ?? new Uint8Array(0);
  const ipOptions = v6 ? new Uint8Array(0) : (spec.ipOptions ?? new Uint8Array(0));
  const payload = spec.payload ?? new Uint8Array(0);
  const ip = v6 ? 40 : 20 + ipOptions.length;
  const tcp = 20 + options.length;
  const p = new Uint8Array(ip + tcp + payload.length);
  const view = new DataView(p.buffer);
  if (v6) {
    view.setUint32(0, (0x6 << 28) | ((spec.tos ?? 0) << 20) | (spec.flowLabel ?? 0x12345));
    view.setUint16(4, p.length - 40);
    p[6] = 6;
    p[7] = spec.ttl ?? 64;
    p.set(spec.src ?? V6_SRC, 8);
    p.set(spec.dst ?? V6_DST, 24);
  } else {
    p[0] = 0x40 | (ip / 4);
    p[1] = spec.tos ?? 0;
    view.setUint16(2, p.length);
    view.setUint16(4, spec.id ?? 0x1c46);
    p[6] = (spec.df ?? true) ? 0x40 : 0;
    p[8] = spec.ttl ?? 64;
    p[9] = 6;
    p.set(spec.src ?? V4_SRC, 12);
    p.set(spec.dst ?? V4_DST, 16);
    p.set(ipOptions, 20);
    view.setUint16(10, ~naiveSum(p.subarray(0, ip)) & 0xffff);
  }
  view.setUint16(ip, spec.sport ?? 40000);
  view.setUint16(ip + 2, spec.dport ?? 5201);
  view.setUint32(ip + 4, (spec.seq ?? 1000) >>> 0);
  view.setUint32(ip + 8, (spec.ack ?? 77) >>> 0);
  p[ip + 12] = (tcp / 4) << 4;
  p[ip + 13] = spec.flags ?? FLAG.ACK;
  view.setUint16(ip + 14, spec.window ?? 502);
  p.set(options, ip + 20);
  p.set(payload, ip + tcp);
  const pseudo = naivePseudoSum(p, 6, p.length - ip);
  view.setUint16(ip + 16, partial ? pseudo : ~naiveSum(p.subarray(ip), pseudo) & 0xffff);
  return p;
}

/** Recomputes the IPv4 header and TCP checksums of `p` in place (after a test edits fields). */
export function fixChecksums(p: Uint8Array): Uint8Array {
  const ip = ipHeaderLength(p);
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (p[0]! >> 4 === 4) {
    view.setUint16(10, 0);
    view.setUint16(10, ~naiveSum(p.subarray(0, ip)) & 0xffff);
  }
  view.setUint16(ip + 16, 0);
  view.setUint16(ip + 16, ~naiveSum(p.subarray(ip), naivePseudoSum(p, 6, p.length - ip)) & 0xffff);
  return p;
}

/** A TSO super-segment as the kernel hands it over: pseudo-header sum in the TCP checksum, and its vnet header. */
export function buildSuperSegment(spec: TcpSpec, gsoSize: number): { packet: Uint8Array; header: VnetHeader } {
  const packet = buildTcp(spec, true);
  const ip = ipHeaderLength(packet);
  const tcp = 20 + (spec.options?.length ?? 0);
  const header: VnetHeader = {
    needsChecksum: true,
    dataValid: false,
    gsoType: spec.v6 ? 'tcpv6' : 'tcpv4',
    ecn: ((spec.flags ?? FLAG.ACK) & FLAG.CWR) !== 0,
    hdrLen: ip + tcp,
    gsoSize,
    csumStart: ip,
    csumOffset: 16,
  };
  return { packet, header };
}

/** Deterministic pseudo-random bytes (xorshift), so big payloads do not come from fast-check. */
export function patternBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function readU32(p: Uint8Array, at: number): number {
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}

export function readU16(p: Uint8Array, at: number): number {
  return (p[at]! << 8) | p[at + 1]!;
}

/** The stable `reason` of the typed error `f` throws (SegmentError, VnetHeaderError), or 'no error'. */
export function reasonOf<R extends string>(f: () => unknown, kind: abstract new (...args: never[]) => { readonly reason: R }): R | 'no error' {
  try {
    f();
  } catch (error) {
    if (error instanceof kind) return error.reason;
    throw error;
  }
  return 'no error';
}
