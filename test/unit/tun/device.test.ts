// The JS side of TunDevice and openTun against a fake addon and a fake netlink: no root needed.
// device-netns.test.ts runs the real addon in a network namespace.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../src/log/logger.js';
import { formatIp } from '../../../src/netgraph/addr.js';
import { openTun, TunDevice, type Netlink } from '../../../src/tun/device.js';
import { cidrOf, ipBytes } from '../../helpers/bytes.js';

/** A prefix the parser would never produce: the TUN layer still refuses it. */
const HOST_BITS = { family: 4 as const, bytes: ipBytes('10.0.0.1'), length: 8 };

class FakeNativeTun {
  static instances: FakeNativeTun[] = [];
  readonly buffer = new Uint8Array(4096);
  readonly lengths = new Uint32Array(256);
  written: Uint8Array[] = [];
  writeError: string | undefined;
  full = false;
  closed = 0;
  constructor(
    readonly name: string,
    readonly onBatch: (count: number, error?: string) => void,
  ) {
    if (name.startsWith('busy')) throw Object.assign(new Error(`TUNSETIFF ${name}: Device or resource busy`), { code: 'EBUSY' });
    if (name.startsWith('noperm')) throw Object.assign(new Error(`TUNSETIFF ${name}: Operation not permitted`), { code: 'EPERM' });
    FakeNativeTun.instances.push(this);
  }
  /** Lays packets out back to back, as tun.c does, and fires one batch. */
  deliver(packets: number[][]): void {
    let offset = 0;
    packets.forEach((p, i) => {
      this.buffer.set(p, offset);
      this.lengths[i] = p.length;
      offset += p.length;
    });
    this.onBatch(packets.length);
  }
  write(packet: Uint8Array): boolean {
    if (this.full) return false;
    this.written.push(packet);
    return true;
  }
  writeBatch(packets: Uint8Array[], count: number): number {
    let n = 0;
    while (n < count && this.write(packets[n]!)) n++;
    if (n < count) this.writeError = `write ${this.name}: Input/output error`;
    return n;
  }
  takeWriteError(): string | undefined {
    const e = this.writeError;
    this.writeError = undefined;
    return e;
  }
  close(): void {
    this.closed++;
  }
}

const fakeAddon = { Tun: FakeNativeTun };

/** An Error shaped like the addon's: errno name in `code`. */
function netlinkError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Records each rtnetlink call as "op args" (addresses formatted, so a wrong family or byte shows);
 * an operation listed in `fail` throws that error after being recorded.
 */
function fakeNetlink(): Netlink & { calls: string[]; fail: Partial<Record<keyof Netlink, Error>> } {
  const calls: string[] = [];
  const fail: Partial<Record<keyof Netlink, Error>> = {};
  const record = (op: keyof Netlink, args: string): void => {
    calls.push(`${op} ${args}`);
    const err = fail[op];
    if (err !== undefined) throw err;
  };
  const prefix = (bytes: Uint8Array, length: number) => `${formatIp(bytes)}/${length} (${bytes.length} bytes)`;
  return {
    calls,
    fail,
    setMtu: (ifname, mtu) => record('setMtu', `${ifname} ${mtu}`),
    setAddrGenModeNone: (ifname) => record('setAddrGenModeNone', ifname),
    addAddress: (ifname, address, length) => record('addAddress', `${ifname} ${prefix(address, length)}`),
    setUp: (ifname) => record('setUp', ifname),
    replaceRoute: (ifname, destination, length) => record('replaceRoute', `${ifname} ${prefix(destination, length)}`),
    deleteRoute: (ifname, destination, length) => record('deleteRoute', `${ifname} ${prefix(destination, length)}`),
  };
}

describe('TunDevice (fake addon, no root needed)', () => {
  it('delivers a batch as views of the right bytes, reusing the array', () => {
    const { logger } = memoryLogger();
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, netlink: fakeNetlink() });
    const native = FakeNativeTun.instances.at(-1)!;
    const seen: number[][][] = [];
    const arrays: Uint8Array[][] = [];
    tun.onPackets = (packets, count) => {
      arrays.push(packets);
      seen.push(packets.slice(0, count).map((p) => [...p]));
    };
    native.deliver([[0x45, 1, 2], [0x60, 3], [0x45, 4, 5, 6]]);
    native.deliver([[0x45, 9]]);
    expect(seen).toEqual([[[0x45, 1, 2], [0x60, 3], [0x45, 4, 5, 6]], [[0x45, 9]]]);
    expect(arrays[0]).toBe(arrays[1]);
  });

  it('logs a throwing packet handler and a read error instead of crashing', () => {
    const { logger, lines } = memoryLogger();
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, netlink: fakeNetlink() });
    const native = FakeNativeTun.instances.at(-1)!;
    tun.onPackets = () => {
      throw new Error('boom');
    };
    native.deliver([[0x45]]);
    native.onBatch(0, 'read vt-fake: File descriptor in bad state');
    expect(lines.join('\n')).toContain('packet handler for vt-fake threw: Error: boom');
    expect(lines.join('\n')).toContain('read vt-fake: File descriptor in bad state; no further packets will be read from vt-fake');
  });

  it('reports dropped writes and logs each distinct write error once', () => {
    const { logger, lines } = memoryLogger();
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, netlink: fakeNetlink() });
    const native = FakeNativeTun.instances.at(-1)!;
    const p = new Uint8Array([0x45]);
    expect(tun.writePackets([p, p, p])).toBe(3);
    native.full = true;
    expect(tun.writePacket(p)).toBe(false);
    expect(tun.writePackets([p, p])).toBe(0);
    expect(tun.writePackets([p, p])).toBe(0);
    expect(lines.filter((l) => l.includes('write vt-fake: Input/output error; packets dropped'))).toHaveLength(1);
  });

  it('turns open failures into one line naming the device and the fix', () => {
    const { logger } = memoryLogger();
    expect(() => new TunDevice('noperm0', logger, { addon: fakeAddon })).toThrow(
      'cannot create TUN device noperm0: operation not permitted (run as root or grant CAP_NET_ADMIN)',
    );
    expect(() => new TunDevice('busy0', logger, { addon: fakeAddon })).toThrow(
      'cannot create TUN device busy0: the name is in use by another TUN device',
    );
    expect(() => new TunDevice('much-too-long-name', logger, { addon: fakeAddon })).toThrow(
      "cannot create TUN device 'much-too-long-name': the name is longer than 15 bytes",
    );
  });

  // That IPv6 addresses get nodad is the addon's part; the namespace tests below check it.
  it('configures MTU, addrgenmode, address, link and routes over netlink, and undoes a failure', () => {
    const { logger } = memoryLogger();
    const netlink = fakeNetlink();
    const tun = openTun({ name: 'vt6', address: ipBytes('fd00::1'), prefixLength: 64, mtu: 1280, extraRoutes: [cidrOf('fd01::/64')] }, logger, {
      addon: fakeAddon,
      netlink,
    });
    expect(netlink.calls).toEqual([
      'setMtu vt6 1280',
      'setAddrGenModeNone vt6',
      'addAddress vt6 fd00::1/64 (16 bytes)',
      'setUp vt6',
      'replaceRoute vt6 fd01::/64 (16 bytes)',
    ]);
    tun.removeRoute(cidrOf('fd01::/64'));
    expect(netlink.calls.at(-1)).toBe('deleteRoute vt6 fd01::/64 (16 bytes)');
    const callsBefore = netlink.calls.length;
    expect(() => tun.addRoute(HOST_BITS)).toThrow('cannot route into vt6: prefix 10.0.0.1/8 has host bits set');
    expect(() => tun.removeRoute(HOST_BITS)).toThrow('cannot route into vt6: prefix 10.0.0.1/8 has host bits set');
    expect(netlink.calls).toHaveLength(callsBefore);

    const failingNetlink = fakeNetlink();
    failingNetlink.fail.addAddress = netlinkError('EEXIST', 'add address 10.9.0.1/24 to vt4: File exists');
    const failing = () =>
      openTun({ name: 'vt4', address: ipBytes('10.9.0.1'), prefixLength: 24, mtu: 1400 }, logger, { addon: fakeAddon, netlink: failingNetlink });
    expect(failing).toThrow('cannot configure TUN device vt4: add address 10.9.0.1/24 to vt4: File exists');
    expect(FakeNativeTun.instances.at(-1)!.closed).toBe(1);
    expect(failingNetlink.calls.at(-1)).toBe('addAddress vt4 10.9.0.1/24 (4 bytes)');
    expect(() => openTun({ name: 'vt6', address: ipBytes('fd00::1'), prefixLength: 64, mtu: 1200 }, logger, { addon: fakeAddon })).toThrow(
      'mtu 1200 is not in 1280..65535',
    );
  });

  it('logs a failing addrgenmode at debug only and carries on', () => {
    const { logger, lines } = memoryLogger();
    const netlink = fakeNetlink();
    netlink.fail.setAddrGenModeNone = netlinkError('EAFNOSUPPORT', 'set addrgenmode none on vt4: Address family not supported by protocol');
    openTun({ name: 'vt4', address: ipBytes('10.9.0.1'), prefixLength: 24, mtu: 1400 }, logger, { addon: fakeAddon, netlink });
    expect(netlink.calls.at(-1)).toBe('setUp vt4');
    const logged = lines.filter((l) => l.includes('set addrgenmode none on vt4'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('DEBUG');
    expect(logged[0]).toContain('vt4: set addrgenmode none on vt4: Address family not supported by protocol');
    expect(FakeNativeTun.instances.at(-1)!.closed).toBe(0);
  });

  it('removes the half-made device when an extra route fails', () => {
    const { logger } = memoryLogger();
    const netlink = fakeNetlink();
    netlink.fail.replaceRoute = netlinkError('ENETUNREACH', 'replace route 10.8.0.0/16 dev vt4: Network is unreachable');
    expect(() =>
      openTun({ name: 'vt4', address: ipBytes('10.9.0.1'), prefixLength: 24, mtu: 1400, extraRoutes: [cidrOf('10.8.0.0/16')] }, logger, {
        addon: fakeAddon,
        netlink,
      }),
    ).toThrow('cannot configure TUN device vt4: replace route 10.8.0.0/16 dev vt4: Network is unreachable');
    expect(FakeNativeTun.instances.at(-1)!.closed).toBe(1);
  });

  it('removeRoute: a route already gone (ESRCH) is fine, other failures throw, and a closed device is left alone', () => {
    const { logger } = memoryLogger();
    const netlink = fakeNetlink();
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, netlink });
    netlink.fail.deleteRoute = netlinkError('ESRCH', 'delete route 10.8.0.0/16 dev vt-fake: No such process');
    expect(() => tun.removeRoute(cidrOf('10.8.0.0/16'))).not.toThrow();
    netlink.fail.deleteRoute = netlinkError('EPERM', 'delete route 10.8.0.0/16 dev vt-fake: Operation not permitted');
    expect(() => tun.removeRoute(cidrOf('10.8.0.0/16'))).toThrow('delete route 10.8.0.0/16 dev vt-fake: Operation not permitted');
    // A message that merely mentions the errno text is not the errno.
    netlink.fail.deleteRoute = new Error('delete route 10.8.0.0/16 dev vt-fake: No such process');
    expect(() => tun.removeRoute(cidrOf('10.8.0.0/16'))).toThrow('No such process');
    expect(netlink.calls).toEqual(Array(3).fill('deleteRoute vt-fake 10.8.0.0/16 (4 bytes)'));
    tun.close();
    tun.removeRoute(cidrOf('10.8.0.0/16'));
    expect(netlink.calls).toHaveLength(3);
  });

  it('src/tun starts no child processes (configuration goes through netlink)', () => {
    const dir = fileURLToPath(new URL('../../../src/tun/', import.meta.url));
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files).toContain('device.ts');
    for (const file of files) {
      expect(readFileSync(join(dir, file), 'utf8'), file).not.toMatch(/child_process|execFileSync|execSync|spawnSync/);
    }
  });
});
