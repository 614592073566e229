// Peer → TUN. Every raw stream a peer opens is decoded frame by frame (one frame per stream as the
// original sends, or many back to back as we send); each packet goes to the TUN of the network it
// names, if its source address is one the peer may use. Accepted packets (and TCP super-segments,
// which the TunWriter checks) go to the network's TunWriter and reach the kernel in one batch
// per chunk read from the stream.

import type { QuicStream } from '../quic/stream.js';
import { APP_PROTOCOL_VIOLATION } from '../quic/errors.js';
import type { ForwardCounters } from '../metrics/forward-counters.js';
import type { RouteTable } from '../netgraph/table.js';
import { FrameDecoder } from './frame.js';
import { readSource } from './packet.js';
import type { TunWriter } from './tun-writer.js';

export interface ReceivePlane<P> {
  /** null: a network without an interface (control-plane-only daemon). */
  writer: TunWriter | null;
  table: RouteTable<P>;
  counters: ForwardCounters;
}

export interface ReceiveDeps<P> {
  plane(network: string): ReceivePlane<P> | undefined;
  /** Counters for frames that name no local network. */
  unattributed: ForwardCounters;
  onMalformed(reason: string): void;
}

export class StreamReceiver<P> {
  private readonly decoder = new FrameDecoder();
  private readonly src4 = new Uint8Array(4);
  private readonly src16 = new Uint8Array(16);
  private readonly onFrame = (network: string, packet: Uint8Array, gsoSize: number): void => this.deliver(network, packet, gsoSize);
  /** A failed stream is reset; what still arrives on it is neither delivered nor counted again. */
  private failed = false;
  /** Writers with packets queued from the current chunk; reused across chunks. */
  private readonly touched: TunWriter[] = [];

  constructor(
    private readonly peer: P,
    private readonly stream: QuicStream,
    private readonly deps: ReceiveDeps<P>,
  ) {
    stream.onData = (chunk) => {
      if (this.failed) return;
      const error = this.decoder.push(chunk, this.onFrame);
      this.flush();
      if (error !== null) this.fail(error);
    };
    stream.onEnd = () => {
      if (this.failed) return;
      const error = this.decoder.end();
      if (error !== null) this.fail(error);
      else stream.end();
    };
  }

  private deliver(network: string, packet: Uint8Array, gsoSize: number): void {
    const plane = this.deps.plane(network);
    if (!plane || !plane.writer) {
      this.deps.unattributed.drops.unknown_network++;
      return;
    }
    const counters = plane.counters;
    const source = readSource(packet, this.src4, this.src16);
    if (!source) {
      counters.drops.malformed++;
      return;
    }
    // Like WireGuard's allowed IPs on receive: a peer may only send from addresses it routes.
    if (!plane.table.routesTo(source, this.peer)) {
      counters.drops.spoofed++;
      return;
    }
    const writer = plane.writer;
    writer.queue(packet, gsoSize);
    if (!writer.pendingFlush) {
      writer.pendingFlush = true;
      this.touched.push(writer);
    }
  }

  private flush(): void {
    const touched = this.touched;
    for (let i = 0; i < touched.length; i++) touched[i]!.flush();
    touched.length = 0;
  }

  /** PROTOCOL.md: a malformed frame resets that raw stream, not the connection. */
  private fail(reason: string): void {
    this.failed = true;
    this.deps.unattributed.drops.malformed++;
    this.deps.onMalformed(reason);
    this.stream.reset(APP_PROTOCOL_VIOLATION);
  }
}
