// An in-process TUN for daemon tests without root. It keeps the real device's contract,
// including the awkward part: delivered packets are views into a buffer that is reused, and
// here it is scribbled over after each batch, so a consumer that keeps a view without copying
// fails in tests instead of in production.

import { formatPrefix, prefixProblem, type Prefix } from '../netgraph/addr.js';
import type { TunFactory, TunLike, TunOptions } from './types.js';

const POISON = 0xee;

export class MemoryTun implements TunLike {
  readonly name: string;
  /** Offloads as asked for (TunOptions.offload), unless the registry forces them off. */
  readonly offload: boolean;
  onPackets: ((packets: Uint8Array[], count: number, gsoSizes: Uint16Array | null) => void) | null = null;
  /** Copies of every packet the daemon wrote, oldest first. */
  readonly written: Uint8Array[] = [];
  /** The gso size each written packet went with: 0, or a TCP super-segment's segment size. */
  readonly writtenGsoSizes: number[] = [];
  /** Called with a copy of each written packet, after it is appended to `written`. */
  onWrite: ((packet: Uint8Array) => void) | null = null;
  /** Routes currently pointed into this device, as CIDR text: extraRoutes plus addRoute minus removeRoute. */
  readonly routes = new Set<string>();
  /** When true, writes are dropped as if the kernel queue were full. */
  dropWrites = false;
  closed = false;
  private readonly scratch = new Uint8Array(1 << 20);
  private readonly views: Uint8Array[] = [];
  private readonly gsoSizes = new Uint16Array(4096);

  constructor(
    readonly options: TunOptions,
    private readonly onClose: (tun: MemoryTun) => void = () => {},
    offloadAllowed = true,
  ) {
    this.offload = options.offload === true && offloadAllowed;
    // Same expansion the kernel does for "%d", enough for tests that ask for it.
    this.name = options.name.replace('%d', '0');
    for (const route of options.extraRoutes ?? []) this.addRoute(route);
  }

  /** Delivers packets as one batch, as if the kernel had routed them into the device. */
  inject(...packets: Uint8Array[]): void {
    this.injectBatch(packets, null);
  }

  /**
   * Delivers one batch in which packet i is a TCP super-segment when gsoSizes[i] > 0, as a device
   * with offloads reads them (only such a device may be given any).
   */
  injectBatch(packets: Uint8Array[], gsoSizes: readonly number[] | null): void {
    if (this.closed) throw new Error(`MemoryTun ${this.name}: inject after close`);
    if (gsoSizes !== null && !this.offload) throw new Error(`MemoryTun ${this.name}: super-segments from a device without offloads`);
    const handler = this.onPackets;
    if (handler === null || packets.length === 0) return;
    if (gsoSizes !== null) this.gsoSizes.set(gsoSizes.slice(0, packets.length));
    let offset = 0;
    packets.forEach((packet, i) => {
      this.scratch.set(packet, offset);
      this.views[i] = this.scratch.subarray(offset, offset + packet.length);
      offset += packet.length;
    });
    try {
      handler(this.views, packets.length, gsoSizes === null ? (this.offload ? this.gsoSizes.fill(0, 0, packets.length) : null) : this.gsoSizes);
    } finally {
      this.scratch.fill(POISON, 0, offset);
    }
  }

  writePacket(packet: Uint8Array, gsoSize = 0): boolean {
    if (this.closed || this.dropWrites) return false;
    if (gsoSize > 0 && !this.offload) throw new Error(`MemoryTun ${this.name}: a super-segment written to a device without offloads`);
    const copy = packet.slice();
    this.written.push(copy);
    this.writtenGsoSizes.push(gsoSize);
    this.onWrite?.(copy);
    return true;
  }

  writePackets(packets: Uint8Array[], count: number = packets.length, status?: Uint8Array, gsoSizes?: Uint16Array): number {
    let written = 0;
    for (let i = 0; i < count && i < packets.length; i++) {
      // Like a full kernel queue: once one is refused, the rest of the batch is too.
      const ok = written === i && this.writePacket(packets[i]!, gsoSizes === undefined ? 0 : gsoSizes[i]!);
      if (ok) written++;
      if (status) status[i] = ok ? 1 : 0;
    }
    return written;
  }

  addRoute(prefix: Prefix): void {
    const problem = prefixProblem(prefix);
    if (problem !== null) throw new Error(`cannot route into ${this.name}: ${problem}`);
    this.routes.add(formatPrefix(prefix));
  }

  removeRoute(prefix: Prefix): void {
    this.routes.delete(formatPrefix(prefix));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.routes.clear();
    this.onClose(this);
  }
}

export interface MemoryTunRegistry {
  factory: TunFactory;
  /** Open devices by name; a closed device is removed, like a real interface. */
  devices: Map<string, MemoryTun>;
  /** Every device ever created, in order, including closed ones. */
  created: MemoryTun[];
}

/**
 * A TunFactory handing out MemoryTuns; like the kernel, it refuses a name that is already open.
 * `offload: false` makes every device refuse offloads, as a kernel without them would.
 */
export function memoryTunFactory(options: { offload?: boolean } = {}): MemoryTunRegistry {
  const devices = new Map<string, MemoryTun>();
  const created: MemoryTun[] = [];
  const factory: TunFactory = (opts) => {
    let name = opts.name;
    for (let n = 0; name.includes('%d'); n++) {
      if (!devices.has(opts.name.replace('%d', String(n)))) name = opts.name.replace('%d', String(n));
    }
    if (devices.has(name)) {
      throw new Error(`cannot create TUN device ${name}: the name is in use by another TUN device (choose another interface name)`);
    }
    const tun = new MemoryTun(
      { ...opts, name },
      (closed) => {
        if (devices.get(closed.name) === closed) devices.delete(closed.name);
      },
      options.offload !== false,
    );
    devices.set(tun.name, tun);
    created.push(tun);
    return tun;
  };
  return { factory, devices, created };
}
