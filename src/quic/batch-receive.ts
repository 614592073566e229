// Batched UDP receive for the QUIC endpoint: a native poll (UdpReceiver in src/quic/native/udp.c)
// drains the socket with recvmmsg() and UDP GRO into one reused buffer and crosses into JS once
// per batch, instead of node's dgram emitting one 'message' event with a new Buffer and address
// object per datagram. node's dgram keeps owning the socket (bind, sends, close); its own reader
// is stopped, since two readers would split the datagrams between them.
//
// Both the fd and the reader switch are node internals. When either is missing, or the addon is
// not built, openBatchReceiver() returns null and the endpoint keeps its 'message' listener.

import type dgram from 'node:dgram';
import { loadAddon } from '../native/load.js';
import { dgramHandle } from './batch-send.js';

/** Called for every received datagram; `data` is valid only until the handler returns. */
export type DatagramHandler = (data: Buffer, host: string, port: number) => void;

export interface BatchReceiver {
  /** The kernel coalesces bursts (UDP GRO); each is still handed over datagram by datagram. */
  readonly gro: boolean;
  /** Stops receiving; call before the socket closes (closing the socket also does it). Idempotent. */
  close(): void;
}

interface NativeReceiver {
  readonly buffer: Uint8Array;
  readonly lengths: Uint32Array;
  readonly sources: Uint32Array;
  readonly gro: boolean;
  host(index: number): string;
  close(): void;
}

type UdpReceiverConstructor = new (fd: number, onBatch: (count: number, error?: string) => void) => NativeReceiver;

// Layout of receiver.sources per datagram (udp.c): 4 address words, port | IPv6 flag, scope id.
const SOURCE_WORDS = 6;
const SOURCE_IPV6 = 0x10000;
// Sources are few (peers); the bound only matters against spoofed floods.
const MAX_CACHED_HOSTS = 1024;

/**
 * Takes over receiving on `socket` (bound): node's reader is stopped and `onDatagram` runs for
 * every datagram. Null where that is not possible; node's reader is then untouched.
 */
export function openBatchReceiver(
  socket: dgram.Socket,
  onDatagram: DatagramHandler,
  onError: (message: string) => void,
): BatchReceiver | null {
  if (process.platform !== 'linux') return null;
  const handle = dgramHandle(socket);
  const fd = handle?.fd;
  const recvStop = handle?.recvStop;
  const recvStart = handle?.recvStart;
  if (typeof fd !== 'number' || fd < 0 || typeof recvStop !== 'function' || typeof recvStart !== 'function') return null;
  let UdpReceiver: UdpReceiverConstructor | undefined;
  try {
    UdpReceiver = (loadAddon('vibepn_udp.node') as { UdpReceiver?: UdpReceiverConstructor }).UdpReceiver;
  } catch {
    return null;
  }
  if (UdpReceiver === undefined) return null;
  // Before the native reader exists: with GRO on, node's reader would get coalesced datagrams.
  // Datagrams arriving meanwhile wait in the socket buffer.
  if (recvStop.call(handle) !== 0) return null;
  const receiver = new DatagramBatches(onDatagram, onError);
  try {
    receiver.attach(new UdpReceiver(fd, receiver.onBatch));
  } catch (error) {
    recvStart.call(handle);
    onError(`native UDP receive unavailable, using node's dgram: ${(error as Error).message}`);
    return null;
  }
  // Our fd is a dup: left open, it would keep the port bound after node closed the socket.
  socket.once('close', () => receiver.close());
  return receiver;
}

class DatagramBatches implements BatchReceiver {
  private native: NativeReceiver | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private lengths: Uint32Array = new Uint32Array(0);
  private sources: Uint32Array = new Uint32Array(0);
  // The previous datagram's source: consecutive datagrams almost always share it.
  private readonly last = new Uint32Array(SOURCE_WORDS);
  private lastHost = '';
  private readonly hosts = new Map<number | string, string>();

  constructor(
    private readonly onDatagram: DatagramHandler,
    private readonly onError: (message: string) => void,
  ) {}

  attach(native: NativeReceiver): void {
    this.native = native;
    this.buffer = Buffer.from(native.buffer.buffer, native.buffer.byteOffset, native.buffer.byteLength);
    this.lengths = native.lengths;
    this.sources = native.sources;
  }

  get gro(): boolean {
    return this.native?.gro ?? false;
  }

  close(): void {
    this.native?.close();
    this.native = null;
  }

  readonly onBatch = (count: number, error?: string): void => {
    if (error !== undefined) this.onError(error);
    const { buffer, lengths, sources, last } = this;
    let offset = 0;
    for (let i = 0; i < count && this.native !== null; i++) {
      const length = lengths[i]!;
      const at = i * SOURCE_WORDS;
      if (
        sources[at] !== last[0] || sources[at + 1] !== last[1] || sources[at + 2] !== last[2] ||
        sources[at + 3] !== last[3] || sources[at + 4] !== last[4] || sources[at + 5] !== last[5] ||
        this.lastHost === ''
      ) {
        for (let w = 0; w < SOURCE_WORDS; w++) last[w] = sources[at + w]!;
        this.lastHost = this.hostOf(i, at);
      }
      this.onDatagram(buffer.subarray(offset, offset + length), this.lastHost, last[4]! & 0xffff);
      offset += length;
    }
  };

  private hostOf(index: number, at: number): string {
    const s = this.sources;
    const key = (s[at + 4]! & SOURCE_IPV6) === 0 ? s[at]! : `${s[at]},${s[at + 1]},${s[at + 2]},${s[at + 3]},${s[at + 5]}`;
    let host = this.hosts.get(key);
    if (host === undefined) {
      if (this.hosts.size >= MAX_CACHED_HOSTS) this.hosts.clear();
      host = this.native!.host(index);
      this.hosts.set(key, host);
    }
    return host;
  }
}
