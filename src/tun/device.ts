// A real Linux TUN device: the native addon (src/tun/native/tun.c) owns the fd and batches
// packets; its rtnetlink calls (src/tun/native/netlink.c) configure the interface, and this file
// turns batches into TunLike calls.

import type { Logger } from '../log/logger.js';
import { loadAddon } from '../native/load.js';
import { formatIp, prefixProblem, type Prefix } from '../netgraph/addr.js';
import { interfaceNameProblem } from './name.js';
import { OffloadReader, expandedCapacity } from './offload-reader.js';
import { OffloadWriter } from './offload-writer.js';
import type { TunFactory, TunLike, TunOptions } from './types.js';

interface NativeTun {
  readonly name: string;
  /** Packets of the current batch, back to back; overwritten by the next batch. */
  readonly buffer: Uint8Array;
  readonly lengths: Uint32Array;
  /** Reads and writes carry a virtio_net_hdr; reads may be TCP super-segments. */
  readonly offload?: boolean;
  /** Reads may also be UDP super-datagrams (USO, Linux 6.2+). */
  readonly uso?: boolean;
  write(packet: Uint8Array): boolean;
  writeBatch(packets: Uint8Array[], count: number, status?: Uint8Array, headers?: Uint8Array): number;
  takeWriteError(): string | undefined;
  close(): void;
}

/**
 * Interface configuration over rtnetlink, one synchronous request + ACK per call (the addon's
 * functions by default). Addresses are 4 or 16 bytes. A failure throws an Error whose `code` is
 * the errno name (EEXIST, ESRCH, ENODEV, ...) and whose message names the operation, the device
 * and the kernel's reason, e.g. "add address 10.9.0.1/24 to vt4: File exists".
 */
export interface Netlink {
  setMtu(ifname: string, mtu: number): void;
  /** No IPv6 link-local address; fails where IPv6 is disabled. */
  setAddrGenModeNone(ifname: string): void;
  /** IPv6 addresses are added with nodad, so they are usable at once. */
  addAddress(ifname: string, address: Uint8Array, prefixLength: number): void;
  setUp(ifname: string): void;
  /** Creates or replaces the on-link route (main table) into ifname. */
  replaceRoute(ifname: string, destination: Uint8Array, prefixLength: number): void;
  /** Throws with code ESRCH when there is no such route. */
  deleteRoute(ifname: string, destination: Uint8Array, prefixLength: number): void;
}

interface NativeAddon extends Netlink {
  Tun: new (name: string, onBatch: (count: number, error?: string) => void, offload?: boolean) => NativeTun;
}

export function loadTunAddon(fromUrl: string = import.meta.url): NativeAddon {
  return loadAddon('vibepn_tun.node', fromUrl) as NativeAddon;
}

function explainOpenFailure(name: string, err: unknown): Error {
  const e = err as { code?: string; message?: string };
  const reasons: Record<string, string> = {
    EPERM: 'operation not permitted (run as root or grant CAP_NET_ADMIN)',
    EACCES: 'permission denied on /dev/net/tun (run as root or grant CAP_NET_ADMIN)',
    ENOENT: '/dev/net/tun does not exist (load the tun module with `modprobe tun`; in a container pass --device /dev/net/tun)',
    EBUSY: 'the name is in use by another TUN device (stop its owner or choose another interface name)',
    EINVAL: 'an interface with that name exists and is not a TUN device (choose another interface name)',
  };
  const reason = (e.code !== undefined ? reasons[e.code] : undefined) ?? e.message ?? String(err);
  return new Error(`cannot create TUN device ${name}: ${reason}`);
}

export interface TunDeviceDeps {
  /** Creates the device; the native addon unless given. */
  addon?: Pick<NativeAddon, 'Tun'>;
  /** Configures it; the native addon's functions unless given. */
  netlink?: Netlink;
}

export class TunDevice implements TunLike {
  onPackets: ((packets: Uint8Array[], count: number, gsoSizes: Uint16Array | null) => void) | null = null;
  private readonly native: NativeTun;
  private netlinkImpl: Netlink | undefined;
  /** Reused across batches: one view per packet, valid only during onPackets. */
  private readonly views: Uint8Array[] = [];
  /** Read and write problems already logged: each is logged once. */
  private readonly reportedOnce = new Set<string>();
  private closed = false;

  private readonly offloadReader: OffloadReader | null = null;
  private readonly offloadWriter: OffloadWriter | null = null;
  private scratchStatus: Uint8Array = new Uint8Array(0);
  /** Segment sizes of the batch being delivered (0: an ordinary packet). */
  private readonly gsoSizes: Uint16Array | null = null;
  private readonly headeredWrite = (packets: Uint8Array[], count: number, status: Uint8Array, headers: Uint8Array): number =>
    this.native.writeBatch(packets, count, status, headers);

  /**
   * Creates the interface without configuring it; openTun() is the usual entry point. With
   * `offload`, TSO and checksum offload are asked of the kernel; one that refuses gets a plain device.
   */
  constructor(
    requestedName: string,
    private readonly logger: Logger,
    deps: TunDeviceDeps = {},
    offload = false,
  ) {
    const problem = interfaceNameProblem(requestedName);
    if (problem !== null) throw new Error(`cannot create TUN device '${requestedName}': the name ${problem}`);
    const addon = deps.addon ?? loadTunAddon();
    this.netlinkImpl = deps.netlink;
    const onBatch = (count: number, error?: string): void => this.deliver(count, error);
    let native: NativeTun | null = null;
    if (offload) {
      try {
        native = new addon.Tun(requestedName, onBatch, true);
      } catch (err) {
        logger.info(`${requestedName}: no TUN offloads (${(err as Error).message}); reading packet by packet`);
      }
    }
    try {
      this.native = native ?? new addon.Tun(requestedName, onBatch);
    } catch (err) {
      throw explainOpenFailure(requestedName, err);
    }
    if (this.native.offload === true) {
      this.offloadReader = new OffloadReader();
      this.offloadWriter = new OffloadWriter();
      this.gsoSizes = new Uint16Array(expandedCapacity(this.native.lengths.length));
    }
  }

  /** Whether reads and writes may be TCP super-segments (TunLike.offload). */
  get offload(): boolean {
    return this.offloadReader !== null;
  }

  /** Whether reads may also be UDP super-datagrams, which the device cuts up. */
  get uso(): boolean {
    return this.native.uso === true;
  }

  get name(): string {
    return this.native.name;
  }

  writePacket(packet: Uint8Array): boolean {
    const written = this.native.write(packet);
    if (!written) this.reportWriteError();
    return written;
  }

  writePackets(packets: Uint8Array[], count: number = packets.length, status?: Uint8Array, gsoSizes?: Uint16Array): number {
    const written =
      this.offloadWriter === null
        ? this.native.writeBatch(packets, count, status)
        : this.offloadWriter.write(packets, count, status ?? (this.scratchStatus = growTo(this.scratchStatus, count)), this.headeredWrite, gsoSizes);
    if (written < count) this.reportWriteError();
    return written;
  }

  addRoute(prefix: Prefix): void {
    checkPrefix(prefix, this.name);
    this.netlink.replaceRoute(this.name, prefix.bytes, prefix.length);
  }

  removeRoute(prefix: Prefix): void {
    if (this.closed) return;
    checkPrefix(prefix, this.name);
    try {
      this.netlink.deleteRoute(this.name, prefix.bytes, prefix.length);
    } catch (err) {
      // ESRCH ("No such process") is how the kernel says the route is already gone.
      if ((err as { code?: unknown }).code !== 'ESRCH') throw err;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    this.logger.info(`removed ${this.name}`);
  }

  /** Loaded on first use, so a test that fakes only `addon` needs no native build. */
  private get netlink(): Netlink {
    return (this.netlinkImpl ??= loadTunAddon());
  }

  private deliver(count: number, error?: string): void {
    if (error !== undefined) this.logger.error(`${error}; no further packets will be read from ${this.name}`);
    const handler = this.onPackets;
    if (count === 0 || handler === null) return;
    const { buffer, lengths } = this.native;
    let packets = count;
    if (this.offloadReader !== null) {
      packets = this.offloadReader.expand(buffer, lengths, count, this.views, this.gsoSizes);
      for (const [reason, n] of this.offloadReader.takeRefused()) this.reportRefusedRead(reason, n);
    } else {
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const length = lengths[i]!;
        this.views[i] = buffer.subarray(offset, offset + length);
        offset += length;
      }
    }
    if (packets === 0) return;
    try {
      handler(this.views, packets, this.gsoSizes);
    } catch (err) {
      // One bad packet must not take the daemon down; the bug still shows in the log.
      this.logger.error(`packet handler for ${this.name} threw: ${(err as Error).stack ?? String(err)}`);
    }
  }

  private reportRefusedRead(reason: string, count: number): void {
    const key = `read:${reason}`;
    if (this.reportedOnce.has(key)) return;
    this.reportedOnce.add(key);
    this.logger.warn(`${this.name}: dropped ${count} packet(s) the kernel handed over with an offload header we cannot split (${reason}); repeats are not logged`);
  }

  private reportWriteError(): void {
    const message = this.native.takeWriteError();
    if (message === undefined || this.reportedOnce.has(message)) return;
    this.reportedOnce.add(message);
    this.logger.warn(`${message}; packets dropped (repeats of this error are not logged)`);
  }
}

function growTo(array: Uint8Array, length: number): Uint8Array {
  return array.length >= length ? array : new Uint8Array(Math.max(length, array.length * 2));
}

function checkPrefix(prefix: Prefix, device: string): void {
  const problem = prefixProblem(prefix);
  if (problem !== null) throw new Error(`cannot route into ${device}: ${problem}`);
}

/**
 * Creates and configures a TUN device: MTU, address (IPv6 with nodad, usable at once), link up,
 * and opts.extraRoutes routed into it. Any failure removes the half-made device and throws one
 * line naming the device and the fix.
 */
export function openTun(opts: TunOptions, logger: Logger, deps: TunDeviceDeps = {}): TunDevice {
  const address = opts.address;
  if (address.length !== 4 && address.length !== 16) {
    throw new Error(`cannot create TUN device ${opts.name}: an address has 4 or 16 bytes, not ${address.length}`);
  }
  const v6 = address.length === 16;
  const maxLength = v6 ? 128 : 32;
  if (!Number.isInteger(opts.prefixLength) || opts.prefixLength < 0 || opts.prefixLength > maxLength) {
    throw new Error(`cannot create TUN device ${opts.name}: prefix length ${opts.prefixLength} is not in 0..${maxLength}`);
  }
  const minMtu = v6 ? 1280 : 68; // the kernel disables IPv6 on a link below 1280
  if (!Number.isInteger(opts.mtu) || opts.mtu < minMtu || opts.mtu > 65535) {
    throw new Error(`cannot create TUN device ${opts.name}: mtu ${opts.mtu} is not in ${minMtu}..65535`);
  }

  const device = new TunDevice(opts.name, logger, deps, opts.offload === true);
  const name = device.name;
  try {
    const netlink = deps.netlink ?? loadTunAddon();
    netlink.setMtu(name, opts.mtu);
    try {
      // Without a link-local address the kernel sends no router solicitations or MLD reports
      // into the tunnel; best effort because it fails where IPv6 is disabled.
      netlink.setAddrGenModeNone(name);
    } catch (err) {
      logger.debug(`${name}: ${(err as Error).message}`);
    }
    netlink.addAddress(name, address, opts.prefixLength);
    netlink.setUp(name);
    for (const route of opts.extraRoutes ?? []) device.addRoute(route);
  } catch (err) {
    device.close();
    throw new Error(`cannot configure TUN device ${name}: ${(err as Error).message}`);
  }
  const offloads = device.offload ? (device.uso ? ', TSO and USO offload' : ', TSO offload') : '';
  logger.info(`created ${name} ${formatIp(address)}/${opts.prefixLength} mtu ${opts.mtu}${offloads}`);
  return device;
}

/** The production TunFactory. */
export function tunDeviceFactory(logger: Logger, deps: TunDeviceDeps = {}): TunFactory {
  return (opts) => openTun(opts, logger, deps);
}
