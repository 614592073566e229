import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../src/log/logger.js';
import { openTun, TunDevice } from '../../../src/tun/device.js';
import type { Batch, ChildRequest } from '../../helpers/tun-netns-child.js';

// ---- Without root: the JS side of TunDevice against a fake addon --------------------------

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

describe('TunDevice (fake addon, no root needed)', () => {
  it('delivers a batch as views of the right bytes, reusing the array', () => {
    const { logger } = memoryLogger();
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, runIp: () => {} });
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
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, runIp: () => {} });
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
    const tun = new TunDevice('vt-fake', logger, { addon: fakeAddon, runIp: () => {} });
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

  it('configures MTU, address (nodad for IPv6), link and routes with ip, and undoes a failure', () => {
    const { logger } = memoryLogger();
    const calls: string[] = [];
    const tun = openTun({ name: 'vt6', address: 'fd00::1', prefixLength: 64, mtu: 1280, extraRoutes: ['fd01::/64'] }, logger, {
      addon: fakeAddon,
      runIp: (args) => void calls.push(args.join(' ')),
    });
    expect(calls).toEqual([
      'link set dev vt6 mtu 1280',
      'link set dev vt6 addrgenmode none',
      'addr add fd00::1/64 dev vt6 nodad',
      'link set dev vt6 up',
      'route replace fd01::/64 dev vt6',
    ]);
    tun.removeRoute('fd01::/64');
    expect(calls.at(-1)).toBe('route del fd01::/64 dev vt6');
    expect(() => tun.addRoute('10.0.0.1/8')).toThrow('cannot route 10.0.0.1/8 into vt6');

    const failing = () =>
      openTun({ name: 'vt4', address: '10.9.0.1', prefixLength: 24, mtu: 1400 }, logger, {
        addon: fakeAddon,
        runIp: (args) => {
          if (args[0] === 'addr') throw new Error('ip addr add 10.9.0.1/24 dev vt4: RTNETLINK answers: File exists');
        },
      });
    expect(failing).toThrow('cannot configure TUN device vt4: ip addr add 10.9.0.1/24 dev vt4: RTNETLINK answers: File exists');
    expect(FakeNativeTun.instances.at(-1)!.closed).toBe(1);
    expect(() => openTun({ name: 'vt6', address: 'fd00::1', prefixLength: 64, mtu: 1200 }, logger, { addon: fakeAddon })).toThrow(
      'mtu 1200 is not in 1280..65535',
    );
  });
});

// ---- As root: a real device inside a fresh network namespace -------------------------------

const isRoot = process.getuid?.() === 0;

function ipv4Checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i]! << 8) | header[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4/UDP packet; UDP checksum 0 (allowed for IPv4) keeps the builder short. */
function udp4(src: number[], dst: number[], srcPort: number, dstPort: number, payload: string): Uint8Array {
  const data = Buffer.from(payload);
  const p = new Uint8Array(28 + data.length);
  const view = new DataView(p.buffer);
  p[0] = 0x45;
  view.setUint16(2, p.length);
  p[8] = 64; // TTL
  p[9] = 17; // UDP
  p.set(src, 12);
  p.set(dst, 16);
  view.setUint16(10, ipv4Checksum(p.subarray(0, 20)));
  view.setUint16(20, srcPort);
  view.setUint16(22, dstPort);
  view.setUint16(24, 8 + data.length);
  p.set(data, 28);
  return p;
}

class NetnsChild {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  stderr = '';
  readonly ready: Promise<unknown>;

  constructor(private readonly proc: ChildProcess) {
    proc.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.ready = new Promise((resolve, reject) => {
      this.pending.set(0, { resolve, reject });
      proc.on('exit', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`netns child exited (${code}): ${this.stderr}`));
      });
    });
    proc.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
    });
  }

  call<T>(req: ChildRequest): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, req });
    });
  }

  /** Collects batches until `enough` says so; throws with what arrived if that takes too long. */
  async batchesUntil(enough: (batches: Batch[]) => boolean): Promise<Batch[]> {
    const all: Batch[] = [];
    const deadline = Date.now() + 5000;
    while (!enough(all)) {
      if (Date.now() > deadline) throw new Error(`packets expected from the TUN did not arrive; got ${JSON.stringify(all)}`);
      all.push(...(await this.call<Batch[]>({ op: 'takeBatches' })));
      await new Promise((r) => setTimeout(r, 20));
    }
    return all;
  }

  async receivedUntil(count: number): Promise<Array<{ from: string; data: string }>> {
    const all: Array<{ from: string; data: string }> = [];
    const deadline = Date.now() + 5000;
    while (all.length < count && Date.now() < deadline) {
      all.push(...(await this.call<Array<{ from: string; data: string }>>({ op: 'takeReceived' })));
      await new Promise((r) => setTimeout(r, 20));
    }
    return all;
  }

  stop(): void {
    if (this.proc.connected) this.proc.disconnect();
    this.proc.kill();
  }
}

/** Transpile-only TypeScript loader for the child: Node 20 cannot run .ts by itself. */
function loaderImportUrl(): string {
  const typescriptUrl = pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href;
  const hooks = `
    import ts from ${JSON.stringify(typescriptUrl)};
    import { readFile } from 'node:fs/promises';
    import { fileURLToPath } from 'node:url';
    export async function resolve(specifier, context, next) {
      try { return await next(specifier, context); } catch (err) {
        if (/^\\.\\.?\\//.test(specifier) && specifier.endsWith('.js')) return next(specifier.slice(0, -3) + '.ts', context);
        throw err;
      }
    }
    export async function load(url, context, next) {
      if (!url.endsWith('.ts')) return next(url, context);
      const fileName = fileURLToPath(url);
      const { outputText } = ts.transpileModule(await readFile(fileName, 'utf8'), {
        fileName, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      return { format: 'module', source: outputText, shortCircuit: true };
    }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify('data:text/javascript,' + encodeURIComponent(hooks))});`;
  return 'data:text/javascript,' + encodeURIComponent(register);
}

function ipJson<T>(ns: string, args: string[]): T {
  return JSON.parse(execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' })) as T;
}

interface IpAddrInfo {
  ifname: string;
  mtu: number;
  flags: string[];
  addr_info: Array<{ family: string; local: string; prefixlen: number; tentative?: boolean }>;
}

describe.skipIf(!isRoot)('TunDevice in a network namespace (root)', () => {
  const ns = `vtest-${process.pid}-${randomBytes(3).toString('hex')}`;
  let child: NetnsChild;

  beforeAll(async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    const script = fileURLToPath(new URL('../../helpers/tun-netns-child.ts', import.meta.url));
    const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', loaderImportUrl(), script], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child = new NetnsChild(proc);
    await child.ready;
  });

  afterAll(() => {
    try {
      child?.stop();
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  it('creates the device with its address, MTU and extra routes', async () => {
    const name = await child.call<string>({
      op: 'open',
      opts: { name: 'vt0', address: '10.77.0.1', prefixLength: 24, mtu: 1400, extraRoutes: ['192.168.77.0/24'] },
    });
    expect(name).toBe('vt0');
    const [link] = ipJson<IpAddrInfo[]>(ns, ['addr', 'show', 'dev', 'vt0']);
    expect(link?.mtu).toBe(1400);
    expect(link?.flags).toContain('UP');
    expect(link?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.77.0.1/24']);
    const routes = ipJson<Array<{ dst: string }>>(ns, ['route', 'show', 'dev', 'vt0']).map((r) => r.dst);
    expect(routes).toEqual(expect.arrayContaining(['10.77.0.0/24', '192.168.77.0/24']));
  });

  it('reads packets the kernel routes into the device (network prefix and extra route)', async () => {
    await child.call({ op: 'send', address: '10.77.0.2', port: 9999, count: 1, payload: 'hello-' });
    await child.call({ op: 'send', address: '192.168.77.5', port: 9999, count: 1, payload: 'subnet-' });
    const batches = await child.batchesUntil((b) => b.flatMap((x) => x.packets).length >= 2);
    const packets = batches.flatMap((b) => b.packets).map((hex) => Buffer.from(hex, 'hex'));
    const [first, second] = packets;
    expect(first![0]! >> 4).toBe(4); // IPv4
    expect(first![9]).toBe(17); // UDP
    expect([...first!.subarray(16, 20)]).toEqual([10, 77, 0, 2]);
    expect(first!.subarray(28).toString()).toBe('hello-0');
    expect([...second!.subarray(16, 20)]).toEqual([192, 168, 77, 5]);
  });

  it('writes packets into the kernel, one at a time and batched', async () => {
    await child.call({ op: 'listen', address: '10.77.0.1', port: 7000 });
    const single = udp4([10, 77, 0, 2], [10, 77, 0, 1], 5555, 7000, 'single');
    expect(await child.call({ op: 'write', packets: [Buffer.from(single).toString('hex')], batched: false })).toBe(1);
    const batch = Array.from({ length: 50 }, (_, i) => Buffer.from(udp4([10, 77, 0, 2], [10, 77, 0, 1], 5555, 7000, `b${i}`)).toString('hex'));
    expect(await child.call({ op: 'write', packets: batch, batched: true })).toBe(50);
    const received = await child.receivedUntil(51);
    expect(received).toHaveLength(51);
    expect(received[0]).toEqual({ from: '10.77.0.2', data: 'single' });
    expect(new Set(received.map((r) => r.data)).size).toBe(51);
  });

  it('delivers a burst of 100 packets in batches of more than one', async () => {
    await child.call({ op: 'send', address: '10.77.0.3', port: 9998, count: 100, payload: 'burst-' });
    const isBurst = (hex: string) => Buffer.from(hex, 'hex').subarray(28).toString().startsWith('burst-');
    const batches = await child.batchesUntil((b) => b.flatMap((x) => x.packets).filter(isBurst).length >= 100);
    const burst = batches.flatMap((b) => b.packets).filter(isBurst);
    expect(burst).toHaveLength(100);
    expect(batches.length).toBeLessThan(100);
    expect(Math.max(...batches.map((b) => b.count))).toBeGreaterThan(1);
    for (const b of batches) expect(b.packets).toHaveLength(b.count);
  });

  it('assigns an IPv6 address usable at once and reads IPv6 packets', async () => {
    const name = await child.call<string>({ op: 'open', opts: { name: 'vt%d', address: 'fd77::1', prefixLength: 64, mtu: 1280 } });
    expect(name).toMatch(/^vt\d+$/);
    expect(name).not.toBe('vt0');
    const [link] = ipJson<IpAddrInfo[]>(ns, ['addr', 'show', 'dev', name]);
    const v6 = link?.addr_info.filter((a) => a.family === 'inet6');
    expect(v6).toEqual([expect.objectContaining({ local: 'fd77::1', prefixlen: 64 })]);
    expect(v6?.[0]?.tentative).toBeUndefined();
    await child.call({ op: 'send', address: 'fd77::2', port: 9999, count: 1, payload: 'v6-' });
    const batches = await child.batchesUntil((b) => b.some((x) => x.device === name));
    const packet = Buffer.from(batches.find((b) => b.device === name)!.packets[0]!, 'hex');
    expect(packet[0]! >> 4).toBe(6);
    expect(packet[6]).toBe(17); // next header: UDP
    expect(packet.subarray(48).toString()).toBe('v6-0');
    await child.call({ op: 'close', name });
  });

  it('refuses a name that is already in use with a clear message', async () => {
    await expect(child.call({ op: 'open', opts: { name: 'vt0', address: '10.78.0.1', prefixLength: 24, mtu: 1400 } })).rejects.toThrow(
      'cannot create TUN device vt0: the name is in use by another TUN device',
    );
  });

  it('close() removes the device and its routes', async () => {
    await child.call({ op: 'close', name: 'vt0' });
    expect(() => execFileSync('ip', ['-n', ns, 'link', 'show', 'dev', 'vt0'], { stdio: 'pipe' })).toThrow(/does not exist/);
    const routes = ipJson<Array<{ dst: string }>>(ns, ['route', 'show']).map((r) => r.dst);
    expect(routes).not.toContain('192.168.77.0/24');
  });
});
