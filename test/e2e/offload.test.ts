// End to end: TUN offloads and TCP super-segments on the wire (PROTOCOL.md#v-super-segments) with
// real daemons, real TUNs and the kernel's own TSO. Two nodes with offloads carry super-segments
// whole; a node with `offload = false` sends no C message, exactly as a node that predates the
// extension, and must get ordinary packets from both, with every byte intact either way.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, netnsUnavailable } from '../helpers/netns.js';
import { Mesh, METRICS_PORT, overlay, waitFor, type MeshNode } from '../helpers/netns-mesh.js';
import { sample, scrape, tcpTransfer } from '../helpers/traffic.js';

const skip = netnsUnavailable();
const MB = 1024 * 1024;

// An application's UDP GSO send (UDP_SEGMENT), made with the project's own batch sender: BURSTS
// sends of COUNT datagrams of SIZE bytes, each datagram's bytes derived from its number.
const BURSTS = 5;
const COUNT = 16;
const SIZE = 1000;
const GSO_SENDER = `
import dgram from 'node:dgram';
import { openBatchSender } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/src/quic/batch-send.js')).href)};
const [host, port] = process.argv.slice(1);
const socket = dgram.createSocket('udp4');
socket.bind(0, async () => {
  const sender = openBatchSender(socket);
  if (sender === null) { console.log('no batch sender'); process.exit(2); }
  for (let b = 0; b < ${BURSTS}; b++) {
    const buffer = new Uint8Array(${COUNT * SIZE});
    for (let i = 0; i < ${COUNT}; i++) buffer.fill((b * ${COUNT} + i) & 0xff, i * ${SIZE}, (i + 1) * ${SIZE});
    sender.send(buffer, new Uint32Array(${COUNT}).fill(${SIZE}), ${COUNT}, host, Number(port));
    await new Promise((r) => setTimeout(r, 20));
  }
  socket.close();
});
`;
// Counts the datagrams that arrive whole (SIZE bytes, all one value) until 1 s passes without one.
const UDP_RECEIVER = `
const dgram = require('node:dgram');
const [host, port] = process.argv.slice(1);
const socket = dgram.createSocket('udp4');
let whole = 0, broken = 0, timer = null;
const done = () => { console.log(JSON.stringify({ whole, broken })); process.exit(0); };
socket.on('message', (m) => {
  if (m.length === ${SIZE} && m.every((x) => x === m[0])) whole++; else broken++;
  clearTimeout(timer);
  timer = setTimeout(done, 1000);
});
socket.bind(Number(port), host, () => console.log('ready'));
setTimeout(done, 15000);
`;

function superSegments(node: MeshNode, direction: 'in' | 'out'): number {
  return sample(scrape(node.host.ns, METRICS_PORT), 'vibepn_forward_super_segments_total', 'network="corp"', `direction="${direction}"`);
}

describe.skipIf(skip !== null)(`TCP super-segments between real daemons${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('go whole between nodes that offer them, and as ordinary packets to and from one that does not', async () => {
    const m = new Mesh();
    try {
      const [a, b, old] = (await m.addNodes(3)) as [MeshNode, MeshNode, MeshNode];
      for (const node of [a, b, old]) {
        const others = [a, b, old].filter((n) => n !== node).map((n) => m.peer(n));
        m.configure(node, others, undefined, node === old ? { offload: false } : {});
        await m.start(node);
      }
      const ready = await waitFor(async () => (await Promise.all([a, b, old].map((n) => m.routes(n)))).every((r) => r?.length === 2), 20_000);
      if (ready === null) throw new Error(`the mesh did not form:\n${m.allLogs()}`);

      // Both offer: the sender's kernel TSO super-segments cross the tunnel as one frame each.
      const ab = await tcpTransfer(a.host.ns, b.host.ns, overlay(b), 20 * MB);
      expect(ab.received).toBe(ab.sent);
      const ba = await tcpTransfer(b.host.ns, a.host.ns, overlay(a), 20 * MB, 5202);
      expect(ba.received).toBe(ba.sent);
      const sentWhole = superSegments(a, 'out');
      expect(sentWhole).toBeGreaterThan(0);
      expect(superSegments(b, 'in')).toBeGreaterThan(0);
      expect(superSegments(b, 'out')).toBeGreaterThan(0);

      // The node without offloads: cut up on the sender's side, nothing whole reaches it.
      const toOld = await tcpTransfer(a.host.ns, old.host.ns, overlay(old), 20 * MB, 5203);
      expect(toOld.received).toBe(toOld.sent);
      const fromOld = await tcpTransfer(old.host.ns, a.host.ns, overlay(a), 20 * MB, 5204);
      expect(fromOld.received).toBe(fromOld.sent);
      expect(superSegments(a, 'out')).toBe(sentWhole);
      expect(superSegments(old, 'in')).toBe(0);
      expect(superSegments(old, 'out')).toBe(0);
    } finally {
      await m.destroy();
    }
  }, 180_000);

  it('carries an application\'s UDP GSO sends, which the kernel hands over as super-datagrams (USO)', async () => {
    const m = new Mesh();
    try {
      const [a, b] = (await m.addNodes(2)) as [MeshNode, MeshNode];
      m.configure(a, [m.peer(b)]);
      m.configure(b, [m.peer(a)]);
      await m.start(a);
      await m.start(b);
      const ready = await waitFor(async () => (await m.routes(a))?.length === 1 && (await m.routes(b))?.length === 1, 20_000);
      if (ready === null) throw new Error(`the pair did not connect:\n${m.allLogs()}`);
      const receiver = spawn('ip', ['netns', 'exec', b.host.ns, process.execPath, '-e', UDP_RECEIVER, overlay(b), '5301'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      receiver.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<void>((resolve) => receiver.on('exit', () => resolve()));
      if ((await waitFor(() => out.includes('ready'), 10_000)) === null) throw new Error('the UDP receiver did not start');
      const sender = spawn('ip', ['netns', 'exec', a.host.ns, process.execPath, '--input-type=module', '-e', GSO_SENDER, overlay(b), '5301'], { stdio: 'inherit' });
      await new Promise<void>((resolve) => sender.on('exit', () => resolve()));
      await exited;
      const result = JSON.parse(out.slice(out.indexOf('{'))) as { whole: number; broken: number };
      expect(result).toEqual({ whole: BURSTS * COUNT, broken: 0 });
      // Kernels before 6.2 have no USO: the sends are then cut by the kernel, and still arrive.
      if (!m.logs(a).includes('TSO and USO offload')) console.log('this kernel has no TUN USO: UDP GSO was cut by the kernel');
      expect(m.logs(a)).not.toMatch(/cannot split/);
    } finally {
      await m.destroy();
    }
  }, 120_000);
});

