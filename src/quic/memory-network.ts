// An in-process datagram network for tests, in the spirit of wireguard-go's conn/bindtest: QUIC
// endpoints (and whole daemons) exchange real, encrypted quiche datagrams through it without
// touching the kernel, and a test can cut links, take hosts down, lose or rewrite packets.
//
// Delivery is asynchronous: a sent datagram waits until the network's next turn (one
// setImmediate drains everything queued so far), so a handler never runs inside the send that
// triggered it — as with a real socket. Partitions, downed hosts and the filter are applied when
// a datagram lands, so cutting a link also loses what was in flight on it.

import { isIP } from 'node:net';
import { formatHostPort } from '../netgraph/hostport.js';
import type { DatagramSocket } from './datagram.js';

/** A datagram in flight; a filter may change any field (e.g. rewrite bytes, simulate NAT). */
export interface MemoryPacket {
  fromHost: string;
  fromPort: number;
  toHost: string;
  toPort: number;
  data: Uint8Array;
}

/** Decides each datagram's fate as it lands: false drops it. */
export type MemoryPacketFilter = (packet: MemoryPacket) => boolean;

export interface MemoryNetworkCounters {
  /** Datagrams handed to the network by sockets. */
  sent: number;
  /** Datagrams that reached a bound socket, and their bytes. */
  delivered: number;
  deliveredBytes: number;
  droppedByPartition: number;
  droppedByDown: number;
  droppedByFilter: number;
  /** No socket is bound at the destination (or it closed while the datagram was in flight). */
  droppedUnreachable: number;
}

export interface MemoryNetworkOptions {
  /** Datagrams larger than this are dropped as unreachable, like a path MTU (default 65507). */
  maxDatagramBytes?: number;
}

const MAPPED_PREFIX = '::ffff:';
const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST;
// Sent datagrams are views into slabs that are never reused, so nothing is copied on send.
const SLAB_BYTES = 256 * 1024;
// Our endpoints never send more than 1500 bytes: that is the largest UDP payload they accept (tls.ts).
const MIN_FREE_BYTES = 1500;

export class MemoryNetwork {
  readonly counters: MemoryNetworkCounters = {
    sent: 0,
    delivered: 0,
    deliveredBytes: 0,
    droppedByPartition: 0,
    droppedByDown: 0,
    droppedByFilter: 0,
    droppedUnreachable: 0,
  };
  /** Runs for every datagram as it lands, after partitions and downed hosts. */
  filter: MemoryPacketFilter | null = null;

  readonly maxDatagramBytes: number;
  private readonly bound = new Map<string, MemoryDatagramSocket>();
  private readonly partitions = new Set<string>();
  private readonly downHosts = new Set<string>();
  private readonly nextEphemeral = new Map<string, number>();
  private inFlight: MemoryPacket[] = [];
  private spareInFlight: MemoryPacket[] = [];
  private turn: NodeJS.Immediate | null = null;

  constructor(options: MemoryNetworkOptions = {}) {
    this.maxDatagramBytes = options.maxDatagramBytes ?? 65507;
  }

  /**
   * A socket on this network. With `host`, it belongs to that machine: bind("0.0.0.0") or
   * bind("::") then means that address, as a daemon listening on every interface would.
   */
  socket(host?: string): MemoryDatagramSocket {
    if (host !== undefined && (isIP(host) === 0 || isWildcard(host))) {
      throw new Error(`memory network host "${host}" must be a specific IP address, e.g. 10.0.0.1`);
    }
    return new MemoryDatagramSocket(this, host ?? null);
  }

  /** Cuts the link between two hosts, both ways. */
  partition(hostA: string, hostB: string): void {
    this.partitions.add(pairKey(hostA, hostB));
  }

  /** Restores the link between two hosts; without arguments, every link. */
  heal(hostA?: string, hostB?: string): void {
    if (hostA === undefined || hostB === undefined) this.partitions.clear();
    else this.partitions.delete(pairKey(hostA, hostB));
  }

  /** Drops everything to and from `host` until up(host). */
  down(host: string): void {
    this.downHosts.add(host);
  }

  up(host: string): void {
    this.downHosts.delete(host);
  }

  /** Datagrams sent but not yet landed. */
  get pending(): number {
    return this.inFlight.length;
  }

  // ---- used by MemoryDatagramSocket ----

  /** Reserves host:port (0 = a free ephemeral port) for `socket`; returns the port. */
  attach(socket: MemoryDatagramSocket, host: string, port: number): number {
    if (port === 0) port = this.freePort(host);
    const key = formatHostPort(host, port);
    if (this.bound.has(key)) throw new Error(`cannot bind ${key} on the memory network: address already in use; pick another port or 0`);
    this.bound.set(key, socket);
    return port;
  }

  detach(socket: MemoryDatagramSocket, host: string, port: number): void {
    const key = formatHostPort(host, port);
    if (this.bound.get(key) === socket) this.bound.delete(key);
  }

  send(packet: MemoryPacket): void {
    // A dual-stack socket dials IPv4 peers as ::ffff:a.b.c.d; on the wire that is plain IPv4.
    if (packet.toHost.startsWith(MAPPED_PREFIX) && isIP(packet.toHost.slice(MAPPED_PREFIX.length)) === 4) {
      packet.toHost = packet.toHost.slice(MAPPED_PREFIX.length);
    }
    this.counters.sent++;
    this.inFlight.push(packet);
    if (this.turn === null) this.turn = setImmediate(this.land);
  }

  private readonly land = (): void => {
    this.turn = null;
    // Swap queues: datagrams sent by receive handlers land on the next turn, never re-entrantly.
    const batch = this.inFlight;
    this.inFlight = this.spareInFlight;
    this.spareInFlight = batch;
    const counters = this.counters;
    for (let i = 0; i < batch.length; i++) {
      const packet = batch[i]!;
      if (this.downHosts.has(packet.fromHost) || this.downHosts.has(packet.toHost)) {
        counters.droppedByDown++;
        continue;
      }
      if (this.partitions.size > 0 && this.partitions.has(pairKey(packet.fromHost, packet.toHost))) {
        counters.droppedByPartition++;
        continue;
      }
      if (this.filter !== null && !this.filter(packet)) {
        counters.droppedByFilter++;
        continue;
      }
      const socket = this.bound.get(formatHostPort(packet.toHost, packet.toPort));
      if (socket === undefined || packet.data.byteLength > this.maxDatagramBytes) {
        counters.droppedUnreachable++;
        continue;
      }
      counters.delivered++;
      counters.deliveredBytes += packet.data.byteLength;
      socket.receive(packet);
    }
    batch.length = 0;
  };

  private freePort(host: string): number {
    let candidate = this.nextEphemeral.get(host) ?? EPHEMERAL_FIRST;
    for (let tried = 0; tried < EPHEMERAL_COUNT; tried++) {
      const port = candidate;
      candidate = port === 65535 ? EPHEMERAL_FIRST : port + 1;
      if (!this.bound.has(formatHostPort(host, port))) {
        this.nextEphemeral.set(host, candidate);
        return port;
      }
    }
    throw new Error(`cannot bind ${host}:0 on the memory network: no free port left`);
  }
}

export class MemoryDatagramSocket implements DatagramSocket {
  onDatagram: (data: Uint8Array, host: string, port: number) => void = () => {};
  /** Datagrams this socket sent and received. */
  datagramsSent = 0;
  datagramsReceived = 0;

  private host: string | null = null;
  private boundPort = 0;
  private closed = false;
  // Bound to "::" on an IPv4 host: like a Linux dual-stack socket, it sees IPv4 peers as ::ffff:a.b.c.d.
  private mapsIPv4 = false;
  private slab = new Uint8Array(SLAB_BYTES);
  private slabOffset = 0;

  constructor(
    private readonly network: MemoryNetwork,
    private readonly machine: string | null,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  /** The address datagrams from this socket carry as their source, once bound. */
  get address(): string | null {
    return this.host === null ? null : formatHostPort(this.host, this.boundPort);
  }

  async bind(host: string, port: number): Promise<void> {
    const where = formatHostPort(host, port);
    if (this.closed || this.host !== null) throw new Error(`cannot bind ${where} on the memory network: the socket is already bound or closed`);
    let address = host;
    if (isWildcard(host)) {
      if (this.machine === null) {
        throw new Error(`cannot bind ${where} on the memory network: a socket made without a host needs a specific address, e.g. 10.0.0.1`);
      }
      address = this.machine;
      this.mapsIPv4 = host === '::' && isIP(address) === 4;
    } else if (isIP(host) === 0) {
      throw new Error(`cannot bind ${where} on the memory network: "${host}" is not an IP address`);
    } else if (this.machine !== null && host !== this.machine) {
      throw new Error(`cannot bind ${where} on the memory network: this socket's host is ${this.machine}; bind that or 0.0.0.0`);
    }
    this.boundPort = this.network.attach(this, address, port);
    this.host = address;
  }

  buffer(): Uint8Array {
    if (this.slab.byteLength - this.slabOffset < MIN_FREE_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabOffset = 0;
    }
    return this.slab.subarray(this.slabOffset);
  }

  queue(length: number, host: string, port: number): void {
    if (this.host === null || this.closed) return;
    const data = this.slab.subarray(this.slabOffset, this.slabOffset + length);
    this.slabOffset += (length + 7) & ~7;
    this.datagramsSent++;
    this.network.send({ fromHost: this.host, fromPort: this.boundPort, toHost: host, toPort: port, data });
  }

  flush(): void {
    // Every queued datagram is already on the network; it lands on the network's next turn.
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.host !== null) this.network.detach(this, this.host, this.boundPort);
  }

  /** Called by the network when a datagram lands here. */
  receive(packet: MemoryPacket): void {
    if (this.closed) return;
    this.datagramsReceived++;
    const from = this.mapsIPv4 && !packet.fromHost.includes(':') ? MAPPED_PREFIX + packet.fromHost : packet.fromHost;
    this.onDatagram(packet.data, from, packet.fromPort);
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function pairKey(hostA: string, hostB: string): string {
  return hostA < hostB ? `${hostA}|${hostB}` : `${hostB}|${hostA}`;
}
