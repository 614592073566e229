// The data plane between two in-process daemons over real QUIC, with in-memory TUN devices:
// every packet injected on one side arrives intact on the other, in order, with counters.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newNetwork } from '../../src/config/write.js';
import { resolveNetworkAddress } from '../../src/config/address.js';
import { parseIp, formatIp } from '../../src/netgraph/addr.js';
import { memoryTunFactory, type MemoryTun } from '../../src/tun/memory.js';
import { createNode, peerOf, startNode, waitFor, writeNodeConfig, type TestNode } from '../helpers/cluster.js';

let root: string;
let nodes: TestNode[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vibepn-fwd-'));
  nodes = [];
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.daemon?.stop('test over')));
  rmSync(root, { recursive: true, force: true });
});

/** An IPv4 packet of `size` bytes from `src` to `dst` whose payload encodes `seq`. */
function ipv4(src: string, dst: string, size: number, seq: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(parseIp(src)!, 12);
  p.set(parseIp(dst)!, 16);
  for (let i = 20; i < size; i++) p[i] = (seq * 31 + i) & 0xff;
  p[20] = seq >> 24;
  p[21] = (seq >> 16) & 0xff;
  p[22] = (seq >> 8) & 0xff;
  p[23] = seq & 0xff;
  return p;
}

const CORP = newNetwork('corp', '10.42.0.0/24');

async function pair(): Promise<{ a: TestNode; b: TestNode; tunA: MemoryTun; tunB: MemoryTun }> {
  const [a, b] = await Promise.all([createNode(root, 'a'), createNode(root, 'b')]);
  nodes.push(a, b);
  const tunsA = memoryTunFactory();
  const tunsB = memoryTunFactory();
  // Only a dials, and b is up by then: one connection from the start. Were both to dial, a's dial
  // to b (not up yet) would be answered when quiche resends its Initial about a second later; if
  // that duplicate won the tie-break, the session would move to it in the middle of a test and
  // the packets sent on the old connection meanwhile would be lost.
  await startNode(b, writeNodeConfig(b, [peerOf(a, ['corp'], { address: '' })]), { tunFactory: tunsB.factory });
  await startNode(a, writeNodeConfig(a, [peerOf(b, ['corp'])]), { tunFactory: tunsA.factory });
  await waitFor(() => a.daemon!.routeList().length === 1 && b.daemon!.routeList().length === 1, 'a and b to exchange routes');
  return { a, b, tunA: tunsA.created[0]!, tunB: tunsB.created[0]! };
}

describe('forwarding between two daemons', () => {
  it('delivers every packet of many full-size batches intact and in order, written to the TUN in batches', async () => {
    const { a, b, tunA, tunB } = await pair();
    let writeCalls = 0;
    const writePackets = tunB.writePackets.bind(tunB);
    tunB.writePackets = (packets, count, status) => {
      writeCalls++;
      return writePackets(packets, count, status);
    };
    const src = formatIp(resolveNetworkAddress(CORP, a.fingerprint));
    const dst = formatIp(resolveNetworkAddress(CORP, b.fingerprint));
    const sent: Uint8Array[] = [];
    let seq = 0;
    for (let batch = 0; batch < 40; batch++) {
      const packets = Array.from({ length: 64 }, () => ipv4(src, dst, 40 + ((seq * 97) % 1241), seq++));
      sent.push(...packets);
      tunA.inject(...packets);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => tunB.written.length >= sent.length, `${sent.length} packets to arrive (got ${tunB.written.length})`, 15_000);
    expect(tunB.written.length).toBe(sent.length);
    // toEqual walks typed arrays element by element (~9 s for these 1.7 MB); compare bytes natively
    // and let toEqual describe only a packet that differs.
    for (let i = 0; i < sent.length; i++) {
      if (!Buffer.from(tunB.written[i]!).equals(sent[i]!)) expect(tunB.written[i], `packet ${i}`).toEqual(sent[i]);
    }
    const counters = a.daemon!.dataPlaneCounters('corp')!;
    expect(counters.packetsOut).toBe(sent.length);
    expect(b.daemon!.dataPlaneCounters('corp')!.packetsIn).toBe(sent.length);
    expect(Object.values(counters.drops).every((n) => n === 0)).toBe(true);
    // Many packets per call: one batch per chunk read from the stream, not one call per packet.
    expect(writeCalls).toBeLessThan(sent.length / 4);
  });

  it('counts and drops packets with no route, a spoofed source, or an unknown network', async () => {
    const { a, b, tunA, tunB } = await pair();
    const src = formatIp(resolveNetworkAddress(CORP, a.fingerprint));
    const dst = formatIp(resolveNetworkAddress(CORP, b.fingerprint));
    const nowhere = ['10.42.0.1', '10.42.0.2', '10.42.0.3'].find((ip) => ip !== src && ip !== dst)!;
    tunA.inject(ipv4(src, nowhere, 100, 1), ipv4(src, dst, 100, 2), new Uint8Array([0x45, 0, 0]));
    // b's own address as source: a packet a may not send.
    tunA.inject(ipv4(dst, dst, 100, 3));
    await waitFor(() => tunB.written.length === 1, 'the good packet to arrive');
    await waitFor(() => b.daemon!.dataPlaneCounters('corp')!.drops.spoofed === 1, 'the spoofed packet to be dropped');
    const out = a.daemon!.dataPlaneCounters('corp')!;
    expect(out.drops.no_route).toBe(1);
    expect(out.drops.malformed).toBe(1);
    expect(tunB.written[0]).toEqual(ipv4(src, dst, 100, 2));
  });
});
