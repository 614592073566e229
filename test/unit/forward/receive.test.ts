import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../../src/forward/frame.js';
import { StreamReceiver, type ReceivePlane } from '../../../src/forward/receive.js';
import { TunWriter } from '../../../src/forward/tun-writer.js';
import { newForwardCounters, type ForwardCounters } from '../../../src/metrics/forward-counters.js';
import { parseCidr, type Prefix } from '../../../src/netgraph/addr.js';
import { RouteTable } from '../../../src/netgraph/table.js';
import { APP_PROTOCOL_VIOLATION } from '../../../src/quic/errors.js';
import { MemoryTun } from '../../../src/tun/memory.js';
import { FakeStream, concatBytes, ipv4Packet, ipv6Packet } from '../../helpers/unit-fakes.js';
import { ipBytes } from '../../helpers/bytes.js';

interface TestPeer {
  id: string;
}

const alice: TestPeer = { id: 'a'.repeat(64) };
const mallory: TestPeer = { id: 'b'.repeat(64) };

function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

interface Plane extends ReceivePlane<TestPeer> {
  tun: MemoryTun;
  table: RouteTable<TestPeer>;
  counters: ForwardCounters;
  batches: number[];
}

function plane(name: string, routes: Array<[string, TestPeer]>, withWriter = true): Plane {
  const tun = new MemoryTun({ name: `vpn-${name}`, address: ipBytes('10.0.0.1'), prefixLength: 24, mtu: 1280 });
  const batches: number[] = [];
  const write = tun.writePackets.bind(tun);
  tun.writePackets = (packets, count = packets.length, status) => {
    batches.push(count);
    return write(packets, count, status);
  };
  const table = new RouteTable<TestPeer>((p) => p.id);
  for (const [text, peer] of routes) table.add(prefix(text), peer, 1);
  const counters = newForwardCounters();
  return { tun, table, counters, batches, writer: withWriter ? new TunWriter(tun, counters) : null };
}

function setup(planes: Record<string, Plane>, peer: TestPeer = alice) {
  const stream = new FakeStream();
  const unattributed = newForwardCounters();
  const malformed: string[] = [];
  new StreamReceiver(peer, stream.asQuic(), {
    plane: (network) => planes[network],
    unattributed,
    onMalformed: (reason) => malformed.push(reason),
  });
  return { stream, unattributed, malformed };
}

function corpAndHome(): { corp: Plane; home: Plane } {
  return {
    corp: plane('corp', [
      ['10.42.0.7/32', alice],
      ['192.168.7.0/24', alice],
      ['10.42.0.9/32', mallory],
    ]),
    home: plane('home', [['fd00:1::7/128', alice]]),
  };
}

describe('StreamReceiver delivery', () => {
  it("writes each frame's packet to the TUN of the network it names", () => {
    const planes = corpAndHome();
    const { stream } = setup(planes);
    const p1 = ipv4Packet('10.42.0.7', '10.42.0.1', 8, 1);
    const p2 = ipv6Packet('fd00:1::7', 'fd00:1::1', 8, 2);
    const p3 = ipv4Packet('192.168.7.20', '10.42.0.1', 16, 3);
    stream.onData(concatBytes([encodeFrame('corp', p1), encodeFrame('home', p2), encodeFrame('corp', p3)]));
    expect(planes.corp.tun.written).toEqual([p1, p3]);
    expect(planes.home.tun.written).toEqual([p2]);
    expect(planes.corp.counters.packetsIn).toBe(2);
    expect(planes.corp.counters.bytesIn).toBe(p1.length + p3.length);
    expect(planes.home.counters.packetsIn).toBe(1);
  });

  it('hands the packets of one chunk to each TUN in one batch', () => {
    const planes = corpAndHome();
    const { stream } = setup(planes);
    const packets = [1, 2, 3].map((seed) => ipv4Packet('10.42.0.7', '10.42.0.1', 8, seed));
    stream.onData(concatBytes(packets.map((p) => encodeFrame('corp', p))));
    expect(planes.corp.batches).toEqual([3]);
    expect(planes.home.batches).toEqual([]);
    stream.onData(encodeFrame('corp', packets[0]!));
    expect(planes.corp.batches).toEqual([3, 1]);
  });

  it('delivers a frame split across chunks once, when its last byte arrives', () => {
    const planes = corpAndHome();
    const { stream, unattributed } = setup(planes);
    const packet = ipv4Packet('10.42.0.7', '10.42.0.1', 100, 4);
    const frame = encodeFrame('corp', packet);
    stream.onData(frame.subarray(0, 2));
    stream.onData(frame.subarray(2, 9));
    expect(planes.corp.tun.written).toHaveLength(0);
    stream.onData(frame.subarray(9));
    expect(planes.corp.tun.written).toEqual([packet]);
    expect(unattributed.drops.malformed).toBe(0);
    stream.onEnd();
    expect(stream.ended).toBe(true);
    expect(stream.resetCode).toBeNull();
  });

  it('delivers packets whose chunk buffer is reused right after the callback', () => {
    const planes = corpAndHome();
    const { stream } = setup(planes);
    const packet = ipv4Packet('10.42.0.7', '10.42.0.1', 8, 5);
    const chunk = encodeFrame('corp', packet);
    stream.onData(chunk);
    chunk.fill(0xee);
    expect(planes.corp.tun.written).toEqual([packet]);
  });
});

describe('StreamReceiver drops', () => {
  it('drops and counts as spoofed a packet whose source routes to another peer or nowhere', () => {
    const planes = corpAndHome();
    const { stream, unattributed } = setup(planes);
    const good = ipv4Packet('10.42.0.7', '10.42.0.1', 8, 1);
    stream.onData(
      concatBytes([
        encodeFrame('corp', ipv4Packet('10.42.0.9', '10.42.0.1')), // mallory's address
        encodeFrame('corp', ipv4Packet('172.16.0.1', '10.42.0.1')), // not routed at all
        encodeFrame('corp', good),
        encodeFrame('home', ipv6Packet('fd00:1::9', 'fd00:1::1')),
      ]),
    );
    expect(planes.corp.tun.written).toEqual([good]);
    expect(planes.corp.counters.drops.spoofed).toBe(2);
    expect(planes.home.counters.drops.spoofed).toBe(1);
    expect(planes.home.tun.written).toHaveLength(0);
    expect(unattributed.drops.spoofed).toBe(0);
  });

  it('checks the source against the routes of the network the frame names', () => {
    const planes = corpAndHome();
    const { stream } = setup(planes);
    // alice's corp address, but framed for home, where alice routes only fd00:1::7.
    stream.onData(encodeFrame('home', ipv4Packet('10.42.0.7', '10.42.0.1')));
    expect(planes.home.counters.drops.spoofed).toBe(1);
    expect(planes.corp.tun.written).toHaveLength(0);
    expect(planes.home.tun.written).toHaveLength(0);
  });

  it('counts a frame naming no local network, or one without an interface, as unknown_network', () => {
    const planes = { ...corpAndHome(), dark: plane('dark', [['10.43.0.7/32', alice]], false) };
    const { stream, unattributed, malformed } = setup(planes);
    stream.onData(
      concatBytes([
        encodeFrame('nowhere', ipv4Packet('10.42.0.7', '10.42.0.1')),
        encodeFrame('dark', ipv4Packet('10.43.0.7', '10.43.0.1')),
        encodeFrame('corp', ipv4Packet('10.42.0.7', '10.42.0.1')),
      ]),
    );
    expect(unattributed.drops.unknown_network).toBe(2);
    expect(planes.corp.tun.written).toHaveLength(1);
    expect(planes.dark.tun.written).toHaveLength(0);
    expect(malformed).toEqual([]);
    expect(stream.resetCode).toBeNull();
  });

  it('counts a frame whose packet is not a readable IP packet as malformed in its network, without a reset', () => {
    const planes = corpAndHome();
    const { stream, unattributed, malformed } = setup(planes);
    stream.onData(encodeFrame('corp', Uint8Array.of(0x45, 0, 0)));
    stream.onData(encodeFrame('corp', ipv4Packet('10.42.0.7', '10.42.0.1')));
    expect(planes.corp.counters.drops.malformed).toBe(1);
    expect(unattributed.drops.malformed).toBe(0);
    expect(malformed).toEqual([]);
    expect(stream.resetCode).toBeNull();
    expect(planes.corp.tun.written).toHaveLength(1);
  });
});

describe('StreamReceiver malformed frames', () => {
  it('resets only that stream with the protocol-violation code, counts it once, and ignores what follows', () => {
    const planes = corpAndHome();
    const bad = setup(planes);
    const good = setup(planes);
    const before = ipv4Packet('10.42.0.7', '10.42.0.1', 8, 1);
    // A valid frame, then a frame whose network name length is 0.
    bad.stream.onData(concatBytes([encodeFrame('corp', before), Uint8Array.of(0, 0, 4, 1, 2, 3, 4)]));
    expect(bad.stream.resetCode).toBe(APP_PROTOCOL_VIOLATION);
    expect(bad.unattributed.drops.malformed).toBe(1);
    expect(bad.malformed).toHaveLength(1);
    expect(bad.malformed[0]).toMatch(/network name length is 0/);
    // The frame before the bad one was delivered.
    expect(planes.corp.tun.written).toEqual([before]);

    bad.stream.onData(encodeFrame('corp', ipv4Packet('10.42.0.7', '10.42.0.1', 8, 2)));
    bad.stream.onData(Uint8Array.of(0, 0));
    bad.stream.onEnd();
    expect(planes.corp.tun.written).toHaveLength(1);
    expect(bad.unattributed.drops.malformed).toBe(1);
    expect(bad.malformed).toHaveLength(1);
    expect(bad.stream.ended).toBe(false);

    // Another stream from the same peer is unaffected.
    const after = ipv4Packet('10.42.0.7', '10.42.0.1', 8, 3);
    good.stream.onData(encodeFrame('corp', after));
    expect(planes.corp.tun.written).toEqual([before, after]);
    expect(good.stream.resetCode).toBeNull();
  });

  it('resets a stream that ends in the middle of a frame', () => {
    const planes = corpAndHome();
    const { stream, unattributed, malformed } = setup(planes);
    stream.onData(encodeFrame('corp', ipv4Packet('10.42.0.7', '10.42.0.1')).subarray(0, 10));
    stream.onEnd();
    expect(stream.resetCode).toBe(APP_PROTOCOL_VIOLATION);
    expect(stream.ended).toBe(false);
    expect(unattributed.drops.malformed).toBe(1);
    expect(malformed[0]).toMatch(/truncated frame/);
    expect(planes.corp.tun.written).toHaveLength(0);
  });

  it('ends its own side when the peer ends the stream cleanly', () => {
    const planes = corpAndHome();
    const { stream, unattributed } = setup(planes);
    stream.onData(encodeFrame('corp', ipv4Packet('10.42.0.7', '10.42.0.1')));
    stream.onEnd();
    expect(stream.ended).toBe(true);
    expect(stream.resetCode).toBeNull();
    expect(unattributed.drops.malformed).toBe(0);
  });
});
