// The data plane of one daemon: a TUN device per network, the TUN → route → peer send path, the
// raw-stream → TUN receive path, and the kernel routes for prefixes that lie outside a network's
// own prefix (subnet routes other nodes export). The daemon tells it about networks, peers and
// routes; it never decides those itself.

import type { NetworkConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { newForwardCounters, type ForwardCounters } from '../metrics/forward-counters.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatPrefix, parseCidr, prefixCovers, type Prefix } from '../netgraph/addr.js';
import type { NetGraph } from '../netgraph/graph.js';
import type { RouteTable } from '../netgraph/table.js';
import type { QuicConnection } from '../quic/connection.js';
import type { QuicStream } from '../quic/stream.js';
import { deriveInterfaceName } from '../tun/name.js';
import type { TunFactory, TunLike } from '../tun/types.js';
import { FrameEncoder } from './frame.js';
import { readDestination } from './packet.js';
import { StreamReceiver } from './receive.js';
import { TunWriter } from './tun-writer.js';
import { PeerSender } from './send.js';

interface NetworkPlane {
  config: NetworkConfig;
  prefix: Prefix;
  tun: TunLike | null;
  writer: TunWriter | null;
  table: RouteTable;
  counters: ForwardCounters;
  encoder: FrameEncoder;
  /** Out-of-prefix routes routed into the TUN, with the peers that announced each. */
  kernelRoutes: Map<string, Set<string>>;
}

export interface DataPlaneDeps {
  graph: NetGraph;
  metrics: Metrics;
  logger: Logger;
  tunFactory: TunFactory | undefined;
  /** The connection currently carrying the peer's session, if any. */
  peerStream(fingerprint: string): QuicConnection | null;
}

export class DataPlane {
  private readonly planes = new Map<string, NetworkPlane>();
  private readonly senders = new Map<string, PeerSender>();
  /** Senders with frames waiting for the end of the current TUN batch; reused across batches. */
  private readonly touched: PeerSender[] = [];
  private readonly dst4 = new Uint8Array(4);
  private readonly dst16 = new Uint8Array(16);

  constructor(private readonly deps: DataPlaneDeps) {}

  addNetwork(config: NetworkConfig, address: string): void {
    const parsed = parseCidr(config.prefix);
    if (!parsed.ok) throw new Error(`network ${config.name}: ${parsed.error}`);
    const plane: NetworkPlane = {
      config,
      prefix: parsed.prefix,
      tun: null,
      writer: null,
      table: this.deps.graph.ensure(config.name),
      counters: newForwardCounters(),
      encoder: new FrameEncoder(config.name),
      kernelRoutes: new Map(),
    };
    if (this.deps.tunFactory) {
      const taken = new Set([...this.planes.values()].map((p) => p.tun?.name ?? '').filter(Boolean));
      const name = config.interface ?? deriveInterfaceName(config.name, taken);
      plane.tun = this.deps.tunFactory({ name, address, prefixLength: parsed.prefix.length, mtu: config.mtu });
      plane.tun.onPackets = (packets, count) => this.send(plane, packets, count);
      plane.writer = new TunWriter(plane.tun, plane.counters);
      this.deps.logger.info(`network ${config.name}: interface ${plane.tun.name} up, ${address}/${parsed.prefix.length}, mtu ${config.mtu}`);
    }
    this.planes.set(config.name, plane);
    this.deps.metrics.registerForwardSource(config.name, plane.counters);
  }

  removeNetwork(name: string): void {
    const plane = this.planes.get(name);
    if (!plane) return;
    this.planes.delete(name);
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

  counters(network: string): ForwardCounters | undefined {
    return this.planes.get(network)?.counters;
  }

  peerUp(fingerprint: string): void {
    this.senders.get(fingerprint)?.close();
    this.senders.set(fingerprint, new PeerSender(() => this.deps.peerStream(fingerprint)));
  }

  peerDown(fingerprint: string): void {
    this.senders.get(fingerprint)?.close();
    this.senders.delete(fingerprint);
  }

  acceptStream(peerFingerprint: string, stream: QuicStream): void {
    new StreamReceiver(peerFingerprint, stream, {
      plane: (network) => this.planes.get(network),
      unattributed: this.deps.metrics.unattributedForward,
      onMalformed: (reason) => this.deps.logger.debug(`reset a raw stream from ${peerFingerprint.slice(0, 8)}…: ${reason}`),
    });
  }

  /** A route entered a table: prefixes outside the network's own need a kernel route into the TUN. */
  routeAdded(network: string, prefix: Prefix, peer: string): void {
    const plane = this.planes.get(network);
    if (!plane || prefixCovers(plane.prefix, prefix)) return;
    const text = formatPrefix(prefix);
    let peers = plane.kernelRoutes.get(text);
    if (!peers) {
      plane.kernelRoutes.set(text, (peers = new Set()));
      try {
        plane.tun?.addRoute(text);
      } catch (error) {
        this.deps.logger.warn(`network ${network}: cannot route ${text} into ${plane.tun?.name}: ${(error as Error).message}`);
      }
    }
    peers.add(peer);
  }

  routeRemoved(network: string, prefix: Prefix, peer: string): void {
    const plane = this.planes.get(network);
    if (!plane) return;
    const text = formatPrefix(prefix);
    const peers = plane.kernelRoutes.get(text);
    if (!peers || !peers.delete(peer) || peers.size > 0) return;
    plane.kernelRoutes.delete(text);
    plane.tun?.removeRoute(text);
  }

  close(): void {
    for (const sender of this.senders.values()) sender.close();
    this.senders.clear();
    for (const name of [...this.planes.keys()]) this.removeNetwork(name);
  }

  /**
   * HOT PATH, once per TUN batch: destination → longest-prefix route → peer's sender. Nothing is
   * awaited and nothing queues without bound; every packet that cannot go is counted by reason.
   */
  private send(plane: NetworkPlane, packets: Uint8Array[], count: number): void {
    const { counters, table, encoder } = plane;
    const touched = this.touched;
    for (let i = 0; i < count; i++) {
      const packet = packets[i]!;
      const destination = readDestination(packet, this.dst4, this.dst16);
      if (!destination) {
        counters.drops.malformed++;
        continue;
      }
      const peer = table.lookup(destination);
      if (peer === undefined) {
        counters.drops.no_route++;
        continue;
      }
      const sender = this.senders.get(peer);
      if (!sender) {
        counters.drops.peer_down++;
        continue;
      }
      if (!sender.add(encoder, packet)) {
        counters.drops.queue_full++;
        continue;
      }
      counters.packetsOut++;
      counters.bytesOut += packet.length;
      if (!sender.pendingFlush) {
        sender.pendingFlush = true;
        touched.push(sender);
      }
    }
    for (let i = 0; i < touched.length; i++) touched[i]!.flush();
    touched.length = 0;
  }
}
