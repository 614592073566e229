// A real Linux TUN device: the native addon (src/tun/native/tun.c) owns the fd and batches
// packets; this file configures the interface with iproute2 and turns batches into TunLike calls.

import { execFileSync } from 'node:child_process';
import type { Logger } from '../log/logger.js';
import { loadAddon } from '../native/load.js';
import { familyOf, parseCidr, parseIp } from '../netgraph/addr.js';
import { interfaceNameProblem } from './name.js';
import type { TunFactory, TunLike, TunOptions } from './types.js';


interface NativeTun {
  readonly name: string;
  /** Packets of the current batch, back to back; overwritten by the next batch. */
  readonly buffer: Uint8Array;
  readonly lengths: Uint32Array;
  write(packet: Uint8Array): boolean;
  writeBatch(packets: Uint8Array[], count: number): number;
  takeWriteError(): string | undefined;
  close(): void;
}

interface NativeAddon {
  Tun: new (name: string, onBatch: (count: number, error?: string) => void) => NativeTun;
}

/** Runs one `ip` (iproute2) command; throws an Error carrying ip's own complaint. */
export type IpRunner = (args: string[]) => void;

export function runIpCommand(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error("the 'ip' command was not found (install iproute2)");
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
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
  runIp?: IpRunner;
  addon?: NativeAddon;
}

export class TunDevice implements TunLike {
  onPackets: ((packets: Uint8Array[], count: number) => void) | null = null;
  private readonly native: NativeTun;
  private readonly runIp: IpRunner;
  /** Reused across batches: one view per packet, valid only during onPackets. */
  private readonly views: Uint8Array[] = [];
  private readonly reportedWriteErrors = new Set<string>();
  private closed = false;

  /** Creates the interface without configuring it; openTun() is the usual entry point. */
  constructor(
    requestedName: string,
    private readonly logger: Logger,
    deps: TunDeviceDeps = {},
  ) {
    const problem = interfaceNameProblem(requestedName);
    if (problem !== null) throw new Error(`cannot create TUN device '${requestedName}': the name ${problem}`);
    const addon = deps.addon ?? loadTunAddon();
    this.runIp = deps.runIp ?? runIpCommand;
    try {
      this.native = new addon.Tun(requestedName, (count, error) => this.deliver(count, error));
    } catch (err) {
      throw explainOpenFailure(requestedName, err);
    }
  }

  get name(): string {
    return this.native.name;
  }

  writePacket(packet: Uint8Array): boolean {
    const written = this.native.write(packet);
    if (!written) this.reportWriteError();
    return written;
  }

  writePackets(packets: Uint8Array[], count: number = packets.length): number {
    const written = this.native.writeBatch(packets, count);
    if (written < count) this.reportWriteError();
    return written;
  }

  addRoute(cidr: string): void {
    this.runIp(['route', 'replace', checkedCidr(cidr, this.name), 'dev', this.name]);
  }

  removeRoute(cidr: string): void {
    if (this.closed) return;
    try {
      this.runIp(['route', 'del', checkedCidr(cidr, this.name), 'dev', this.name]);
    } catch (err) {
      // "No such process" is how the kernel says the route is already gone.
      if (!/No such process/.test((err as Error).message)) throw err;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    this.logger.info(`removed ${this.name}`);
  }

  private deliver(count: number, error?: string): void {
    if (error !== undefined) this.logger.error(`${error}; no further packets will be read from ${this.name}`);
    const handler = this.onPackets;
    if (count === 0 || handler === null) return;
    const { buffer, lengths } = this.native;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      this.views[i] = buffer.subarray(offset, offset + length);
      offset += length;
    }
    try {
      handler(this.views, count);
    } catch (err) {
      // One bad packet must not take the daemon down; the bug still shows in the log.
      this.logger.error(`packet handler for ${this.name} threw: ${(err as Error).stack ?? String(err)}`);
    }
  }

  private reportWriteError(): void {
    const message = this.native.takeWriteError();
    if (message === undefined || this.reportedWriteErrors.has(message)) return;
    this.reportedWriteErrors.add(message);
    this.logger.warn(`${message}; packets dropped (repeats of this error are not logged)`);
  }
}

function checkedCidr(cidr: string, device: string): string {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new Error(`cannot route ${cidr} into ${device}: ${parsed.error}`);
  return cidr;
}

/**
 * Creates and configures a TUN device: MTU, address (IPv6 with nodad, usable at once), link up,
 * and opts.extraRoutes routed into it. Any failure removes the half-made device and throws one
 * line naming the device and the fix.
 */
export function openTun(opts: TunOptions, logger: Logger, deps: TunDeviceDeps = {}): TunDevice {
  const address = parseIp(opts.address);
  if (address === null) throw new Error(`cannot create TUN device ${opts.name}: '${opts.address}' is not an IP address`);
  const v6 = familyOf(address) === 6;
  const maxLength = v6 ? 128 : 32;
  if (!Number.isInteger(opts.prefixLength) || opts.prefixLength < 0 || opts.prefixLength > maxLength) {
    throw new Error(`cannot create TUN device ${opts.name}: prefix length ${opts.prefixLength} is not in 0..${maxLength}`);
  }
  const minMtu = v6 ? 1280 : 68; // the kernel disables IPv6 on a link below 1280
  if (!Number.isInteger(opts.mtu) || opts.mtu < minMtu || opts.mtu > 65535) {
    throw new Error(`cannot create TUN device ${opts.name}: mtu ${opts.mtu} is not in ${minMtu}..65535`);
  }

  const device = new TunDevice(opts.name, logger, deps);
  const runIp = deps.runIp ?? runIpCommand;
  const name = device.name;
  try {
    runIp(['link', 'set', 'dev', name, 'mtu', String(opts.mtu)]);
    try {
      // Without a link-local address the kernel sends no router solicitations or MLD reports
      // into the tunnel; best effort because it fails where IPv6 is disabled.
      runIp(['link', 'set', 'dev', name, 'addrgenmode', 'none']);
    } catch (err) {
      logger.debug(`${name}: ${(err as Error).message}`);
    }
    runIp(['addr', 'add', `${opts.address}/${opts.prefixLength}`, 'dev', name, ...(v6 ? ['nodad'] : [])]);
    runIp(['link', 'set', 'dev', name, 'up']);
    for (const route of opts.extraRoutes ?? []) device.addRoute(route);
  } catch (err) {
    device.close();
    throw new Error(`cannot configure TUN device ${name}: ${(err as Error).message}`);
  }
  logger.info(`created ${name} ${opts.address}/${opts.prefixLength} mtu ${opts.mtu}`);
  return device;
}

/** The production TunFactory. */
export function tunDeviceFactory(logger: Logger, deps: TunDeviceDeps = {}): TunFactory {
  return (opts) => openTun(opts, logger, deps);
}
