// Runs inside a network namespace for test/unit/tun/device-netns.test.ts (started with `ip netns exec`,
// TypeScript loaded through a transpile-only loader hook). A TUN device belongs to the namespace
// of the process that opens it, so the device, its addressing and the sockets that exercise it
// all live here; the test drives this process over the IPC channel and asserts on the answers.

import { createSocket, type Socket } from 'node:dgram';
import { Logger } from '../../src/log/logger.js';
import { loadTunAddon, openTun, type Netlink, type TunDevice } from '../../src/tun/device.js';
import type { TunOptions } from '../../src/tun/types.js';
import { cidrOf, ipBytes } from './bytes.js';

/** TunOptions as text, since IPC carries JSON; the child parses them. */
export interface TextTunOptions extends Omit<TunOptions, 'address' | 'extraRoutes'> {
  address: string;
  extraRoutes?: string[];
}

export type ChildRequest =
  | { op: 'open'; opts: TextTunOptions }
  | { op: 'takeBatches' }
  | { op: 'write'; packets: string[]; batched: boolean }
  | { op: 'listen'; address: string; port: number }
  | { op: 'takeReceived' }
  | { op: 'send'; address: string; port: number; count: number; payload: string }
  | { op: 'close'; name: string }
  | { op: 'addRoute' | 'removeRoute'; name: string; cidr: string }
  // The addon's function called directly; number[] arguments become Uint8Array (IPC sends JSON).
  | { op: 'netlink'; fn: keyof Netlink; args: Array<string | number | number[]> };

/** What a direct netlink call threw, or null if it returned. */
export type NetlinkOutcome = { code: unknown; message: string } | null;

export interface Batch {
  device: string;
  count: number;
  packets: string[];
}

const devices = new Map<string, TunDevice>();
const sockets: Socket[] = [];
let batches: Batch[] = [];
let received: Array<{ from: string; data: string }> = [];
const logger = new Logger('tun-child', { level: 'debug' });

async function handle(req: ChildRequest): Promise<unknown> {
  switch (req.op) {
    case 'open': {
      const { address, extraRoutes, ...rest } = req.opts;
      const tun = openTun({ ...rest, address: ipBytes(address), extraRoutes: extraRoutes?.map(cidrOf) }, logger);
      // Copy during the call: the views are only valid until the handler returns.
      tun.onPackets = (packets, count) => {
        const copies: string[] = [];
        for (let i = 0; i < count; i++) copies.push(Buffer.from(packets[i]!).toString('hex'));
        batches.push({ device: tun.name, count, packets: copies });
      };
      devices.set(tun.name, tun);
      return tun.name;
    }
    case 'takeBatches': {
      const taken = batches;
      batches = [];
      return taken;
    }
    case 'write': {
      const tun = [...devices.values()][0]!;
      const packets = req.packets.map((hex) => Buffer.from(hex, 'hex'));
      if (req.batched) return tun.writePackets(packets);
      return packets.filter((p) => tun.writePacket(p)).length;
    }
    case 'listen': {
      const socket = createSocket(req.address.includes(':') ? 'udp6' : 'udp4');
      socket.on('message', (msg, rinfo) => received.push({ from: rinfo.address, data: msg.toString() }));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(req.port, req.address, () => resolve());
      });
      sockets.push(socket);
      return null;
    }
    case 'takeReceived': {
      const taken = received;
      received = [];
      return taken;
    }
    case 'send': {
      const socket = createSocket(req.address.includes(':') ? 'udp6' : 'udp4');
      sockets.push(socket);
      await new Promise<void>((resolve) => socket.bind(0, () => resolve()));
      // All sends in one tick: the TUN read callback cannot run in between, so the kernel
      // queues every packet and the device must hand them over in batches.
      const sent = Array.from({ length: req.count }, (_, i) => {
        return new Promise<void>((resolve, reject) =>
          socket.send(`${req.payload}${i}`, req.port, req.address, (err) => (err ? reject(err) : resolve())),
        );
      });
      await Promise.all(sent);
      return req.count;
    }
    case 'addRoute':
    case 'removeRoute': {
      const tun = devices.get(req.name);
      if (tun === undefined) throw new Error(`no open device ${req.name}`);
      tun[req.op](cidrOf(req.cidr));
      return null;
    }
    case 'netlink': {
      const fn = loadTunAddon()[req.fn] as (...args: unknown[]) => void;
      try {
        fn(...req.args.map((a) => (Array.isArray(a) ? Uint8Array.from(a) : a)));
        return null;
      } catch (err) {
        const e = err as Error & { code?: unknown };
        return { code: e.code, message: e.message } satisfies NetlinkOutcome;
      }
    }
    case 'close': {
      const tun = devices.get(req.name);
      tun?.close();
      tun?.close(); // twice on purpose: must be harmless
      devices.delete(req.name);
      return null;
    }
  }
}

process.on('message', (message: { id: number; req: ChildRequest }) => {
  handle(message.req).then(
    (value) => process.send!({ id: message.id, ok: true, value }),
    (err: Error) => process.send!({ id: message.id, ok: false, error: err.message }),
  );
});
process.on('disconnect', () => {
  for (const tun of devices.values()) tun.close();
  for (const socket of sockets) socket.close();
});
process.send!({ id: 0, ok: true, value: 'ready' });
