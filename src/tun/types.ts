// The daemon talks to a TUN device only through TunLike, so tests can swap in MemoryTun and run
// without root, and the forwarding path does not care whether packets come from the kernel.
// Addresses and prefixes arrive parsed (the config loader did that once); nothing here reads text.

import type { Prefix } from '../netgraph/addr.js';

export interface TunOptions {
  /** Interface name, at most 15 bytes; may contain "%d" for a kernel-assigned number. */
  name: string;
  /** This node's address on the network: 4 (IPv4) or 16 (IPv6) bytes. */
  address: Uint8Array;
  /** Prefix length of the network, so the whole network is routed into the device. */
  prefixLength: number;
  mtu: number;
  /** Extra prefixes routed into this device (e.g. subnets other nodes export). */
  extraRoutes?: Prefix[];
  /**
   * Ask the kernel for TSO and checksum offload (IFF_VNET_HDR): reads may then be TCP
   * super-segments and writes may be too (see TunLike.offload).
   */
  offload?: boolean;
}

export interface TunLike {
  /** The actual interface name (differs from TunOptions.name when that contained "%d"). */
  readonly name: string;
  /**
   * The device runs with offloads: a batch may hold TCP super-segments (gsoSizes[i] > 0, the
   * payload bytes per segment; its checksums are not final, whoever segments it computes them),
   * and writePackets takes super-segments the same way.
   */
  readonly offload?: boolean;
  /**
   * Called once per batch of packets read from the kernel. Only packets[0..count) are valid:
   * the arrays are reused across batches and may be longer. Each packet is a view into a buffer
   * that the next batch overwrites, so the handler must finish with (or copy) every packet
   * before returning. gsoSizes is null on a device without `offload`.
   */
  onPackets: ((packets: Uint8Array[], count: number, gsoSizes: Uint16Array | null) => void) | null;
  /** Hands one IP packet to the kernel. false = dropped (queue full, device gone); never throws for that. */
  writePacket(packet: Uint8Array): boolean;
  /**
   * Writes packets[0..count) (count defaults to packets.length) with one native call. Returns how
   * many were written; the rest were dropped, from anywhere in the batch (a full queue drops the
   * tail, a refused packet just itself). If `written` is given, written[i] becomes 1 for each
   * packet the kernel took and 0 for each dropped one. Never throws for a dropped packet.
   * gsoSizes, only on a device with `offload`, marks TCP super-segments as onPackets does.
   */
  writePackets?(packets: Uint8Array[], count?: number, written?: Uint8Array, gsoSizes?: Uint16Array): number;
  /** Routes `prefix` into this device (idempotent). Throws an Error naming the route on failure. */
  addRoute(prefix: Prefix): void;
  /** Removes a route added with addRoute; a route that is already gone is not an error. */
  removeRoute(prefix: Prefix): void;
  /** Stops reading and deletes the interface (its routes go with it). Safe to call twice. */
  close(): void;
}

export type TunFactory = (opts: TunOptions) => TunLike;
