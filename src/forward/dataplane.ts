// The data plane of one daemon: a TUN device per network, the TUN → route → peer send path, the
// raw-stream → TUN receive path, and the kernel routes derived from each network's route table.
// Route tables store the peer itself, so a destination lookup yields the peer's sender in one
// step; the data plane never calls back up to find a connection.

import type { NetworkConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { newForwardCounters, type ForwardCounters } from '../metrics/forward-counters.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatIp } from '../netgraph/addr.js';
import type { RouteTable } from '../netgraph/table.js';
import type { QuicStream } from '../quic/stream.js';
import { deriveInterfaceName } from '../tun/name.js';
import type { TunFactory, TunLike } from '../tun/types.js';
import { FrameEncoder, MAX_PACKET_LENGTH } from './frame.js';
import { KernelRoutes } from './kernel-routes.js';
import { destinationOffset } from './packet.js';
import { StreamReceiver } from './receive.js';
import { DEFAULT_MAX_SEGMENTS, SuperSegmentLayout, TcpSegmenter } from './segment.js';
import type { PeerSender } from './send.js';
import { TunWriter } from './tun-writer.js';

/** A route's destination as the forwarder sees it: the peer's sender while it is connected. */
export interface ForwardTarget {
  readonly sender: PeerSender | null;
  /** "name (fingerprint…)" for log lines. */
  readonly label: string;
}

interface NetworkPlane<P> {
  config: NetworkConfig;
  tun: TunLike | null;
  writer: TunWriter | null;
  table: RouteTable<P>;
  counters: ForwardCounters;
  encoder: FrameEncoder;
  kernelRoutes: KernelRoutes | null;
}

export interface DataPlaneDeps {
  metrics: Metrics;
  logger: Logger;
  /** Absent: a control-plane-only daemon (no interfaces, no forwarding). */
  tunFactory: TunFactory | undefined;
  /** Open TUNs with offloads (config daemon.offload). */
  offload: boolean;
}

/** A split super-segment: at most 2048 segments, each repeating at most 120 header bytes, of 64 KiB. */
const SPLIT_BYTES = MAX_PACKET_LENGTH + DEFAULT_MAX_SEGMENTS * 120;

export class DataPlane<P extends ForwardTarget> {
  private readonly planes = new Map<string, NetworkPlane<P>>();
  /** Senders with frames waiting for the end of the current TUN batch; reused across batches. */
  private readonly touched: PeerSender[] = [];
  /** For super-segments bound to a peer that does not take them whole. */
  private readonly layout = new SuperSegmentLayout();
  private segmenter: TcpSegmenter | null = null;
  private splitBuffer: Uint8Array | null = null;
  /** Networks whose kernel routes are re-derived at the end of this event-loop turn. */
  private readonly routeSyncs = new Set<string>();
  private routeSyncImmediate: NodeJS.Immediate | null = null;

  constructor(private readonly deps: DataPlaneDeps) {}

  addNetwork(config: NetworkConfig, address: Uint8Array, table: RouteTable<P>): void {
    const plane: NetworkPlane<P> = {
      config,
      tun: null,
      writer: null,
      table,
      counters: newForwardCounters(),
      encoder: new FrameEncoder(config.name),
      kernelRoutes: null,
    };
    if (this.deps.tunFactory) {
      const taken = new Set([...this.planes.values()].map((p) => p.tun?.name ?? '').filter(Boolean));
      const name = config.interface ?? deriveInterfaceName(config.name, taken);
      const shown = formatIp(address);
      plane.tun = this.deps.tunFactory({ name, address, prefixLength: config.prefix.length, mtu: config.mtu, offload: this.deps.offload });
      plane.tun.onPackets = (packets, count, gsoSizes) => this.send(plane, packets, count, gsoSizes);
      plane.writer = new TunWriter(plane.tun, plane.counters);
      plane.kernelRoutes = new KernelRoutes(plane.tun, config.prefix, this.deps.logger);
      this.deps.logger.info(`network ${config.name}: interface ${plane.tun.name} up, ${shown}/${config.prefix.length}, mtu ${config.mtu}`);
    }
    this.planes.set(config.name, plane);
    this.deps.metrics.registerForwardSource(config.name, plane.counters);
  }

  removeNetwork(name: string): void {
    const plane = this.planes.get(name);
    if (!plane) return;
    this.planes.delete(name);
    this.routeSyncs.delete(name);
    this.deps.metrics.unregisterForwardSource(name);
    if (plane.tun) {
      plane.tun.onPackets = null;
      plane.tun.close();
      this.deps.logger.info(`network ${name}: interface ${plane.tun.name} removed`);
    }
  }

  interfaceName(network: string): string | undefined {
    return this.planes.get(network)?.tun?.name;
  }

  /** Whether `name` is one of this daemon's TUN interfaces. */
  ownsInterface(name: string): boolean {
    for (const plane of this.planes.values()) if (plane.tun?.name === name) return true;
    return false;
  }

  counters(network: string): ForwardCounters | undefined {
    return this.planes.get(network)?.counters;
  }

  /** A raw stream the peer opened: its frames go to the TUN of the network they name. */
  acceptStream(peer: P, stream: QuicStream): void {
    new StreamReceiver(peer, stream, {
      plane: (network) => this.planes.get(network),
      unattributed: this.deps.metrics.unattributedForward,
      onMalformed: (reason) => this.deps.logger.debug(`reset a raw stream from ${peer.label}: ${reason}`),
    });
  }

  /**
   * The network's route table changed: its kernel routes are re-derived once, at the end of this
   * event-loop turn, however many routes one announcement added.
   */
  routesChanged(network: string): void {
    if (!this.planes.get(network)?.kernelRoutes) return;
    this.routeSyncs.add(network);
    this.routeSyncImmediate ??= setImmediate(() => this.syncRoutes());
  }

  /** Applies pending kernel-route changes now (also what the end of the turn does). */
  syncRoutes(): void {
    if (this.routeSyncImmediate) clearImmediate(this.routeSyncImmediate);
    this.routeSyncImmediate = null;
    for (const network of this.routeSyncs) {
      const plane = this.planes.get(network);
      plane?.kernelRoutes?.sync(plane.table.prefixes());
    }
    this.routeSyncs.clear();
  }

  /** Routes currently installed into a network's TUN, by CIDR text. */
  kernelRoutes(network: string): string[] {
    return this.planes.get(network)?.kernelRoutes?.routes ?? [];
  }

  close(): void {
    if (this.routeSyncImmediate) clearImmediate(this.routeSyncImmediate);
    this.routeSyncImmediate = null;
    for (const name of [...this.planes.keys()]) this.removeNetwork(name);
  }

  /**
   * HOT PATH, once per TUN batch: destination → longest-prefix route → peer's sender. Nothing is
   * awaited and nothing queues without bound; every packet that cannot go is counted by reason.
   */
  private send(plane: NetworkPlane<P>, packets: Uint8Array[], count: number, gsoSizes: Uint16Array | null): void {
    const { counters, table, encoder } = plane;
    const touched = this.touched;
    for (let i = 0; i < count; i++) {
      const packet = packets[i]!;
      const destination = destinationOffset(packet);
      if (destination < 0) {
        counters.drops.malformed++;
        continue;
      }
      const peer = table.lookupAt(packet, destination, packet[0]! >> 4 === 4 ? 4 : 6);
      if (peer === undefined) {
        counters.drops.no_route++;
        continue;
      }
      const sender = peer.sender;
      if (sender === null) {
        counters.drops.peer_down++;
        continue;
      }
      const gsoSize = gsoSizes === null ? 0 : gsoSizes[i]!;
      if (gsoSize > 0) {
        this.sendSuperSegment(counters, encoder, sender, packet, gsoSize);
      } else if (sender.add(encoder, packet)) {
        counters.packetsOut++;
        counters.bytesOut += packet.length;
      } else {
        counters.drops.queue_full++;
        continue;
      }
      if (!sender.pendingFlush) {
        sender.pendingFlush = true;
        touched.push(sender);
      }
    }
    for (let i = 0; i < touched.length; i++) touched[i]!.flush();
    touched.length = 0;
  }

  /**
   * One frame for a peer that takes super-segments (and one that fits a frame); the packets it
   * stands for, cut here, for any other. Counted as the packets either way.
   */
  private sendSuperSegment(counters: ForwardCounters, encoder: FrameEncoder, sender: PeerSender, packet: Uint8Array, gsoSize: number): void {
    const layout = this.layout;
    if (!layout.accepts(packet, gsoSize, DEFAULT_MAX_SEGMENTS)) {
      counters.drops.malformed++;
      return;
    }
    const segments = layout.count;
    if (sender.takesSuperSegments && packet.length <= MAX_PACKET_LENGTH) {
      if (!sender.addSuperSegment(encoder, packet, gsoSize)) {
        counters.drops.queue_full += segments;
        return;
      }
      counters.packetsOut += segments;
      counters.bytesOut += packet.length + (segments - 1) * layout.headerLength;
      counters.superSegmentsOut++;
      return;
    }
    const segmenter = (this.segmenter ??= new TcpSegmenter());
    const buffer = (this.splitBuffer ??= new Uint8Array(SPLIT_BYTES));
    const n = segmenter.splitSuperSegment(packet, layout, gsoSize, buffer);
    for (let s = 0; s < n; s++) {
      const start = segmenter.offsets[s]!;
      const length = segmenter.lengths[s]!;
      if (sender.add(encoder, buffer.subarray(start, start + length))) {
        counters.packetsOut++;
        counters.bytesOut += length;
      } else {
        counters.drops.queue_full++;
      }
    }
  }
}
