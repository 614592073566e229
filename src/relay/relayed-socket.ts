// The end node's side of relaying: connections to a peer through a relay are ordinary QUIC
// connections of the daemon's one endpoint, to a virtual address (src/quic/virtual-path.ts) that
// stands for "peer X via relay R". This socket wrapper sits between the endpoint and the UDP
// socket: datagrams to a virtual address go to the relay inside a DATAGRAM frame (send), and
// relayed datagrams come back in through deliver() as if they had arrived from that address.
// Everything else passes through untouched, and nothing from the real network may claim a
// virtual address.

import type { DatagramSocket } from '../quic/datagram.js';
import { VIRTUAL_PATH_MAX, VIRTUAL_PORT, isVirtualHost, virtualHost, virtualPathId } from '../quic/virtual-path.js';

/** Paths kept at most: one per (relay, remote peer) pair that ever carried a packet. */
const MAX_PATHS = 4096;

export interface VirtualPath {
  readonly id: number;
  /** Fingerprint of the relay that carries it. */
  readonly relay: string;
  /** Fingerprint of the peer at the other end. */
  readonly remote: string;
  /** Its address as this endpoint's connections see it. */
  readonly host: string;
}

/** Carries one packet of a virtual path to its relay; false when it cannot (counted by the sender). */
export type RelaySender = (path: VirtualPath, packet: Uint8Array) => boolean;

export class VirtualPaths {
  /** Set by the composition root once the relay side exists; until then packets are dropped. */
  sender: RelaySender = () => false;
  private readonly byId = new Map<number, VirtualPath>();
  private readonly byPair = new Map<string, VirtualPath>();
  private nextId = 1;
  private socket: RelayedSocket | null = null;
  /** IPv6 endpoints see IPv4 literals as ::ffff:a.b.c.d; their virtual addresses follow. */
  private mapped = false;

  /** Wraps the endpoint's socket (QuicEndpointOptions.wrapSocket). */
  wrap(inner: DatagramSocket): DatagramSocket {
    this.socket = new RelayedSocket(inner, this);
    return this.socket;
  }

  set ipv6(mapped: boolean) {
    this.mapped = mapped;
  }

  /** The path to `remote` through `relay`, made on first use; null when the table is full. */
  path(relay: string, remote: string): VirtualPath | null {
    const key = `${relay}/${remote}`;
    const known = this.byPair.get(key);
    if (known) return known;
    if (this.byId.size >= MAX_PATHS || this.nextId > VIRTUAL_PATH_MAX) return null;
    const id = this.nextId++;
    const path: VirtualPath = { id, relay, remote, host: virtualHost(id) };
    this.byId.set(id, path);
    this.byPair.set(key, path);
    return path;
  }

  /** The path behind a connection's remote host, if it is a virtual one. */
  pathOf(host: string): VirtualPath | undefined {
    const id = virtualPathId(host);
    return id === null ? undefined : this.byId.get(id);
  }

  /** A packet the relay delivered from `remote`: into the endpoint as if from the path's address. */
  deliver(relay: string, remote: string, packet: Uint8Array): boolean {
    const socket = this.socket;
    const path = this.path(relay, remote);
    if (socket === null || path === null) return false;
    socket.onDatagram(packet, this.mapped ? `::ffff:${path.host}` : path.host, VIRTUAL_PORT);
    return true;
  }

  /** A datagram the endpoint queued for a virtual address. */
  send(host: string, packet: Uint8Array): boolean {
    const path = this.pathOf(host);
    return path !== undefined && this.sender(path, packet);
  }
}

class RelayedSocket implements DatagramSocket {
  onDatagram: (data: Uint8Array, host: string, port: number) => void = () => {};
  private current: Uint8Array | null = null;

  constructor(
    private readonly inner: DatagramSocket,
    private readonly paths: VirtualPaths,
  ) {
    inner.onDatagram = (data, host, port) => {
      if (!isVirtualHost(host)) this.onDatagram(data, host, port);
    };
  }

  get port(): number {
    return this.inner.port;
  }

  async bind(host: string, port: number): Promise<void> {
    this.paths.ipv6 = host.includes(':');
    await this.inner.bind(host, port);
  }

  buffer(): Uint8Array {
    return (this.current = this.inner.buffer());
  }

  queue(length: number, host: string, port: number): void {
    if (!isVirtualHost(host)) return this.inner.queue(length, host, port);
    // Not queued below: the inner socket hands out the same space again for the next datagram.
    if (this.current !== null) this.paths.send(host, this.current.subarray(0, length));
  }

  flush(): void {
    this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
