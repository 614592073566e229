// As root: real TUN devices inside a fresh network namespace, created by the native addon (driven
// over IPC in test/helpers/tun-netns-child.ts) and checked from outside with `ip -j`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Netlink } from '../../../src/tun/device.js';
import type { Batch, ChildRequest, NetlinkOutcome } from '../../helpers/tun-netns-child.js';

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
  addr_info: Array<{ family: string; local: string; prefixlen: number; tentative?: boolean; nodad?: boolean }>;
}

/** `ip -j -d link`: the details include the IPv6 address generation mode. */
interface IpLinkInfo {
  ifname: string;
  mtu: number;
  flags: string[];
  inet6_addr_gen_mode?: string;
}

/** `ip -j -d route`; `protocol` is only shown with -d when it is "boot". */
interface IpRoute {
  dst: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  table?: string;
}

describe.skipIf(!isRoot)('TunDevice in a network namespace (root)', () => {
  const ns = `vtunA-${randomBytes(4).toString('hex')}`;
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
    const [link] = ipJson<IpLinkInfo[]>(ns, ['-d', 'link', 'show', 'dev', 'vt0']);
    expect(link?.mtu).toBe(1400);
    expect(link?.flags).toContain('UP');
    expect(link?.inet6_addr_gen_mode).toBe('none');
    const [addrs] = ipJson<IpAddrInfo[]>(ns, ['addr', 'show', 'dev', 'vt0']);
    // No fe80:: address either: addrgenmode none took effect before the link came up.
    expect(addrs?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.77.0.1/24']);
    const routes = ipJson<IpRoute[]>(ns, ['-d', 'route', 'show', 'table', 'all', 'dev', 'vt0']);
    expect(routes.map((r) => r.dst)).toEqual(expect.arrayContaining(['10.77.0.0/24', '192.168.77.0/24']));
    // What `ip route replace 192.168.77.0/24 dev vt0` used to create.
    expect(routes.filter((r) => r.dst === '192.168.77.0/24')).toEqual([
      expect.objectContaining({ protocol: 'boot', scope: 'link', table: 'main' }),
    ]);
  });

  it('replaces a route idempotently and deletes it, twice without complaint', async () => {
    const routesTo = (dst: string) => ipJson<IpRoute[]>(ns, ['-d', 'route', 'show', 'table', 'all', 'to', dst]);
    // A route someone else made with other attributes is taken over, not duplicated or refused.
    execFileSync('ip', ['-n', ns, 'route', 'add', '192.168.80.0/24', 'dev', 'vt0', 'proto', 'static']);
    await child.call({ op: 'addRoute', name: 'vt0', cidr: '192.168.80.0/24' });
    await child.call({ op: 'addRoute', name: 'vt0', cidr: '192.168.80.0/24' });
    expect(routesTo('192.168.80.0/24')).toEqual([
      expect.objectContaining({ dst: '192.168.80.0/24', dev: 'vt0', protocol: 'boot', scope: 'link', table: 'main' }),
    ]);
    await child.call({ op: 'removeRoute', name: 'vt0', cidr: '192.168.80.0/24' });
    expect(routesTo('192.168.80.0/24')).toEqual([]);
    await child.call({ op: 'removeRoute', name: 'vt0', cidr: '192.168.80.0/24' });
    expect(routesTo('192.168.80.0/24')).toEqual([]);
    // The routes openTun made are untouched.
    const dsts = ipJson<IpRoute[]>(ns, ['route', 'show', 'dev', 'vt0']).map((r) => r.dst);
    expect(dsts).toEqual(expect.arrayContaining(['10.77.0.0/24', '192.168.77.0/24']));
  });

  it('reports kernel refusals with the errno code, the operation, the device and the reason', async () => {
    const netlink = (fn: keyof Netlink, ...args: Array<string | number | number[]>) =>
      child.call<NetlinkOutcome>({ op: 'netlink', fn, args });
    expect(await netlink('addAddress', 'vt0', [10, 77, 0, 1], 24)).toEqual({
      code: 'EEXIST',
      message: expect.stringMatching(/^add address 10\.77\.0\.1\/24 to vt0: File exists/),
    });
    expect(await netlink('deleteRoute', 'vt0', [192, 168, 99, 0], 24)).toEqual({
      code: 'ESRCH',
      message: expect.stringMatching(/^delete route 192\.168\.99\.0\/24 dev vt0: No such process/),
    });
    expect(await netlink('setMtu', 'vt0', 20)).toEqual({ code: 'EINVAL', message: expect.stringMatching(/^set mtu 20 on vt0: Invalid argument/) });
    expect(await netlink('setUp', 'vt-missing')).toEqual({ code: 'ENODEV', message: 'set vt-missing up: No such device' });
    const usage = await netlink('addAddress', 'vt0', [10, 77, 0], 24);
    expect(usage?.message).toMatch(/^usage: addAddress\(/);
    // None of that changed the device.
    const [link] = ipJson<IpAddrInfo[]>(ns, ['addr', 'show', 'dev', 'vt0']);
    expect(link?.mtu).toBe(1400);
    expect(link?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.77.0.1/24']);
  });

  it('removes the device when the kernel refuses its configuration', async () => {
    // ::1 belongs to loopback only, so the kernel refuses it on any other device.
    await expect(child.call({ op: 'open', opts: { name: 'vtbad', address: '::1', prefixLength: 128, mtu: 1280 } })).rejects.toThrow(
      /^cannot configure TUN device vtbad: add address ::1\/128 to vtbad: Cannot assign requested address/,
    );
    expect(() => execFileSync('ip', ['-n', ns, 'link', 'show', 'dev', 'vtbad'], { stdio: 'pipe' })).toThrow(/does not exist/);
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

  it('assigns an IPv6 address usable at once, routes IPv6 and reads IPv6 packets', async () => {
    const opts = { name: 'vt%d', address: 'fd77::1', prefixLength: 64, mtu: 1280, extraRoutes: ['fd78::/64'] };
    const name = await child.call<string>({ op: 'open', opts });
    expect(name).toMatch(/^vt\d+$/);
    expect(name).not.toBe('vt0');
    const [link] = ipJson<IpLinkInfo[]>(ns, ['-d', 'link', 'show', 'dev', name]);
    expect(link?.mtu).toBe(1280);
    expect(link?.flags).toContain('UP');
    expect(link?.inet6_addr_gen_mode).toBe('none');
    const [addrs] = ipJson<IpAddrInfo[]>(ns, ['addr', 'show', 'dev', name]);
    // Exactly one address: no fe80:: link-local (addrgenmode none), and no DAD pending (nodad).
    expect(addrs?.addr_info).toEqual([expect.objectContaining({ family: 'inet6', local: 'fd77::1', prefixlen: 64, nodad: true })]);
    expect(addrs?.addr_info[0]?.tentative).toBeUndefined();

    const routesTo = (dst: string) => ipJson<IpRoute[]>(ns, ['-6', '-d', 'route', 'show', 'table', 'all', 'to', dst]);
    expect(routesTo('fd78::/64')).toEqual([expect.objectContaining({ dev: name, protocol: 'boot', table: 'main' })]);
    await child.call({ op: 'addRoute', name, cidr: 'fd78::/64' });
    expect(routesTo('fd78::/64')).toHaveLength(1);
    await child.call({ op: 'removeRoute', name, cidr: 'fd78::/64' });
    await child.call({ op: 'removeRoute', name, cidr: 'fd78::/64' });
    expect(routesTo('fd78::/64')).toEqual([]);
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
