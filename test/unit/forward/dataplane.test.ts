import { afterEach, describe, expect, it, vi } from 'vitest';
import { newNetwork } from '../../../src/config/write.js';
import type { NetworkConfig } from '../../../src/config/types.js';
import { DataPlane, type ForwardTarget } from '../../../src/forward/dataplane.js';
import { encodeFrame } from '../../../src/forward/frame.js';
import { KernelRoutes } from '../../../src/forward/kernel-routes.js';
import { PeerSender, SEND_QUEUE_LIMIT } from '../../../src/forward/send.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { parseCidr, parseIp, type Prefix } from '../../../src/netgraph/addr.js';
import { RouteTable } from '../../../src/netgraph/table.js';
import { APP_PROTOCOL_VIOLATION } from '../../../src/quic/errors.js';
import { memoryTunFactory, type MemoryTunRegistry } from '../../../src/tun/memory.js';
import { FakeConnection, FakeStream, decodeFrames, ipv4Packet, nextTurn } from '../../helpers/unit-fakes.js';
import { ipBytes } from '../../helpers/bytes.js';

interface Target extends ForwardTarget {
  readonly id: string;
  sender: PeerSender | null;
}

function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

function target(name: string, fill: string): { peer: Target; conn: FakeConnection } {
  const conn = new FakeConnection();
  const peer: Target = { id: fill.repeat(64), label: `${name} (${fill.repeat(8)}…)`, sender: new PeerSender(conn.asQuic(), { superSegments: false }) };
  return { peer, conn };
}

interface Setup {
  plane: DataPlane<Target>;
  registry: MemoryTunRegistry;
  metrics: Metrics;
  lines: string[];
  corp: NetworkConfig;
  table: RouteTable<Target>;
}

function setup(withTun = true): Setup {
  const registry = memoryTunFactory();
  const metrics = new Metrics({ processMetrics: false });
  const { logger, lines } = memoryLogger('forward');
  const plane = new DataPlane<Target>({ metrics, logger, tunFactory: withTun ? registry.factory : undefined, offload: true });
  const corp = newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.1' });
  const table = new RouteTable<Target>((p) => p.id);
  plane.addNetwork(corp, parseIp('10.42.0.1')!, table);
  return { plane, registry, metrics, lines, corp, table };
}

async function sample(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return found?.value;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('DataPlane networks', () => {
  it('creates a TUN per network with its address, prefix length and MTU, named after the network', () => {
    const { plane, registry, lines } = setup();
    const tun = registry.devices.get('vpn-corp')!;
    expect(tun).toBeDefined();
    expect(tun.options).toMatchObject({ address: ipBytes('10.42.0.1'), prefixLength: 24, mtu: 8000 });
    expect(plane.interfaceName('corp')).toBe('vpn-corp');
    plane.addNetwork(newNetwork('lab', 'fd00:7::/64', { interface: 'tun-lab', mtu: 1400 }), parseIp('fd00:7::1')!, new RouteTable<Target>());
    expect(plane.interfaceName('lab')).toBe('tun-lab');
    expect(registry.devices.get('tun-lab')!.options).toMatchObject({ address: ipBytes('fd00:7::1'), prefixLength: 64, mtu: 1400 });
    expect(lines.some((l) => l.includes('network corp: interface vpn-corp up, 10.42.0.1/24, mtu 8000'))).toBe(true);
  });

  it('removeNetwork closes the TUN, stops reading it and unregisters the network', async () => {
    const { plane, registry, metrics } = setup();
    const tun = registry.devices.get('vpn-corp')!;
    plane.removeNetwork('corp');
    expect(tun.closed).toBe(true);
    expect(tun.onPackets).toBeNull();
    expect(registry.devices.has('vpn-corp')).toBe(false);
    expect(plane.interfaceName('corp')).toBeUndefined();
    expect(plane.counters('corp')).toBeUndefined();
    // Removing twice, or an unknown network, is harmless.
    plane.removeNetwork('corp');
    plane.removeNetwork('nowhere');
    // The name is free again for a re-added network.
    plane.addNetwork(newNetwork('corp', '10.42.0.0/24'), parseIp('10.42.0.1')!, new RouteTable<Target>());
    const again = registry.devices.get('vpn-corp');
    expect(again !== undefined && again !== tun).toBe(true);
    expect(await sample(metrics, 'vibepn_forward_packets_total', { network: 'corp', direction: 'out' })).toBe(0);
  });

  it('close removes every network', () => {
    const { plane, registry } = setup();
    plane.addNetwork(newNetwork('lab', '10.43.0.0/24'), parseIp('10.43.0.1')!, new RouteTable<Target>());
    plane.close();
    expect(registry.created.every((t) => t.closed)).toBe(true);
    expect(registry.devices.size).toBe(0);
  });

  it('without a TUN factory, keeps counters but creates no interface', () => {
    const { plane, registry } = setup(false);
    expect(registry.created).toHaveLength(0);
    expect(plane.interfaceName('corp')).toBeUndefined();
    expect(plane.counters('corp')).toBeDefined();
    expect(plane.kernelRoutes('corp')).toEqual([]);
  });
});

describe('DataPlane send path', () => {
  it('looks the destination up and hands the packets to that peer’s sender, one write per TUN batch', () => {
    const { plane, registry, table } = setup();
    const bob = target('bob', 'b');
    const carol = target('carol', 'c');
    table.add(prefix('10.42.0.2/32'), bob.peer, 1);
    table.add(prefix('192.168.0.0/16'), bob.peer, 1);
    table.add(prefix('192.168.9.0/24'), carol.peer, 1);
    const toBob = [ipv4Packet('10.42.0.1', '10.42.0.2', 8, 1), ipv4Packet('10.42.0.1', '192.168.1.1', 8, 2)];
    const toCarol = ipv4Packet('10.42.0.1', '192.168.9.9', 8, 3);
    registry.devices.get('vpn-corp')!.inject(toBob[0]!, toCarol, toBob[1]!);
    expect(bob.conn.opened).toHaveLength(1);
    expect(bob.conn.opened[0]!.writes).toHaveLength(1);
    expect(decodeFrames(bob.conn.opened[0]!.written())).toEqual(toBob.map((packet) => ({ network: 'corp', packet })));
    expect(decodeFrames(carol.conn.opened[0]!.written())).toEqual([{ network: 'corp', packet: toCarol }]);
    expect(bob.peer.sender!.pendingFlush).toBe(false);
    const counters = plane.counters('corp')!;
    expect(counters.packetsOut).toBe(3);
    expect(counters.bytesOut).toBe(toBob[0]!.length + toBob[1]!.length + toCarol.length);
  });

  it('counts drops by reason: malformed, no_route, peer_down, queue_full', () => {
    const { plane, registry, table } = setup();
    const up = target('bob', 'b');
    const down = target('dave', 'd');
    down.peer.sender = null;
    const full = target('erin', 'e');
    table.add(prefix('10.42.0.2/32'), up.peer, 1);
    table.add(prefix('10.42.0.4/32'), down.peer, 1);
    table.add(prefix('10.42.0.5/32'), full.peer, 1);
    const tun = registry.devices.get('vpn-corp')!;
    // Give erin's sender a stream, then fill its queue.
    tun.inject(ipv4Packet('10.42.0.1', '10.42.0.5'));
    full.conn.opened[0]!.bufferedBytes = SEND_QUEUE_LIMIT;
    tun.inject(
      Uint8Array.of(0x45, 0, 0),
      ipv4Packet('10.42.0.1', '10.42.0.3'),
      ipv4Packet('10.42.0.1', '10.42.0.4'),
      ipv4Packet('10.42.0.1', '10.42.0.5'),
      ipv4Packet('10.42.0.1', '10.42.0.5'),
      ipv4Packet('10.42.0.1', '10.42.0.2'),
    );
    const counters = plane.counters('corp')!;
    expect(counters.drops).toMatchObject({ malformed: 1, no_route: 1, peer_down: 1, queue_full: 2 });
    expect(counters.packetsOut).toBe(2);
    expect(decodeFrames(up.conn.opened[0]!.written())).toHaveLength(1);
    expect(decodeFrames(full.conn.opened[0]!.written())).toHaveLength(1);
  });

  it('keeps forwarding after a peer’s sender changes, reading peer.sender on every packet', () => {
    const { registry, table } = setup();
    const bob = target('bob', 'b');
    table.add(prefix('10.42.0.2/32'), bob.peer, 1);
    const tun = registry.devices.get('vpn-corp')!;
    tun.inject(ipv4Packet('10.42.0.1', '10.42.0.2'));
    const next = new FakeConnection();
    bob.peer.sender = new PeerSender(next.asQuic(), { superSegments: false });
    tun.inject(ipv4Packet('10.42.0.1', '10.42.0.2'));
    expect(decodeFrames(bob.conn.opened[0]!.written())).toHaveLength(1);
    expect(decodeFrames(next.opened[0]!.written())).toHaveLength(1);
  });

  it('registers the network’s counters with Metrics', async () => {
    const { metrics, registry, table } = setup();
    const bob = target('bob', 'b');
    table.add(prefix('10.42.0.2/32'), bob.peer, 1);
    const packet = ipv4Packet('10.42.0.1', '10.42.0.2', 12);
    registry.devices.get('vpn-corp')!.inject(packet, ipv4Packet('10.42.0.1', '10.42.0.99'));
    expect(await sample(metrics, 'vibepn_forward_packets_total', { network: 'corp', direction: 'out' })).toBe(1);
    expect(await sample(metrics, 'vibepn_forward_bytes_total', { network: 'corp', direction: 'out' })).toBe(packet.length);
    expect(await sample(metrics, 'vibepn_forward_drops_total', { network: 'corp', reason: 'no_route' })).toBe(1);
  });
});

describe('DataPlane receive path', () => {
  it('writes frames from an accepted stream to the TUN when the source routes to that peer', () => {
    const { plane, registry, table } = setup();
    const bob = target('bob', 'b');
    table.add(prefix('10.42.0.2/32'), bob.peer, 1);
    const stream = new FakeStream();
    plane.acceptStream(bob.peer, stream.asQuic());
    const good = ipv4Packet('10.42.0.2', '10.42.0.1', 8, 1);
    stream.onData(encodeFrame('corp', good));
    stream.onData(encodeFrame('corp', ipv4Packet('10.42.0.3', '10.42.0.1')));
    expect(registry.devices.get('vpn-corp')!.written).toEqual([good]);
    expect(plane.counters('corp')!.packetsIn).toBe(1);
    expect(plane.counters('corp')!.drops.spoofed).toBe(1);
  });

  it('counts a malformed stream in the unattributed counters and logs the peer at debug', () => {
    const { plane, metrics, lines } = setup();
    const bob = target('bob', 'b');
    const stream = new FakeStream();
    plane.acceptStream(bob.peer, stream.asQuic());
    stream.onData(Uint8Array.of(0, 0, 1, 0x45));
    stream.onData(encodeFrame('nowhere', ipv4Packet('10.42.0.2', '10.42.0.1')));
    expect(stream.resetCode).toBe(APP_PROTOCOL_VIOLATION);
    expect(metrics.unattributedForward.drops.malformed).toBe(1);
    expect(metrics.unattributedForward.drops.unknown_network).toBe(0);
    expect(lines.filter((l) => l.includes('DEBUG') && l.includes(`reset a raw stream from ${bob.peer.label}`))).toHaveLength(1);
  });
});

describe('DataPlane kernel routes', () => {
  it('coalesces route changes into one kernel-route sync at the end of the turn', async () => {
    const { plane, registry, table } = setup();
    const sync = vi.spyOn(KernelRoutes.prototype, 'sync');
    const bob = target('bob', 'b');
    table.add(prefix('192.168.7.0/24'), bob.peer, 1);
    plane.routesChanged('corp');
    table.add(prefix('192.168.8.0/24'), bob.peer, 1);
    table.add(prefix('10.42.0.2/32'), bob.peer, 1);
    plane.routesChanged('corp');
    plane.routesChanged('corp');
    expect(sync).not.toHaveBeenCalled();
    expect(plane.kernelRoutes('corp')).toEqual([]);
    await nextTurn();
    expect(sync).toHaveBeenCalledTimes(1);
    expect(plane.kernelRoutes('corp')).toEqual(['192.168.7.0/24', '192.168.8.0/24']);
    expect([...registry.devices.get('vpn-corp')!.routes].sort()).toEqual(['192.168.7.0/24', '192.168.8.0/24']);
    await nextTurn();
    expect(sync).toHaveBeenCalledTimes(1);
  });

  it('syncRoutes applies pending changes at once, and the end of the turn then has nothing left', async () => {
    const { plane, table } = setup();
    const sync = vi.spyOn(KernelRoutes.prototype, 'sync');
    const bob = target('bob', 'b');
    table.add(prefix('192.168.7.0/24'), bob.peer, 1);
    plane.routesChanged('corp');
    plane.syncRoutes();
    expect(sync).toHaveBeenCalledTimes(1);
    expect(plane.kernelRoutes('corp')).toEqual(['192.168.7.0/24']);
    await nextTurn();
    expect(sync).toHaveBeenCalledTimes(1);
    table.withdraw(prefix('192.168.7.0/24'), bob.peer);
    plane.routesChanged('corp');
    await nextTurn();
    expect(sync).toHaveBeenCalledTimes(2);
    expect(plane.kernelRoutes('corp')).toEqual([]);
  });

  it('syncs each changed network once and ignores networks without an interface or unknown ones', async () => {
    const { plane, table } = setup();
    const labTable = new RouteTable<Target>((p) => p.id);
    plane.addNetwork(newNetwork('lab', '10.43.0.0/24'), parseIp('10.43.0.1')!, labTable);
    const sync = vi.spyOn(KernelRoutes.prototype, 'sync');
    const bob = target('bob', 'b');
    table.add(prefix('192.168.7.0/24'), bob.peer, 1);
    labTable.add(prefix('172.16.0.0/16'), bob.peer, 1);
    plane.routesChanged('corp');
    plane.routesChanged('lab');
    plane.routesChanged('corp');
    plane.routesChanged('nowhere');
    await nextTurn();
    expect(sync).toHaveBeenCalledTimes(2);
    expect(plane.kernelRoutes('corp')).toEqual(['192.168.7.0/24']);
    expect(plane.kernelRoutes('lab')).toEqual(['172.16.0.0/16']);

    const dark = setup(false);
    sync.mockClear();
    dark.table.add(prefix('192.168.7.0/24'), bob.peer, 1);
    dark.plane.routesChanged('corp');
    dark.plane.syncRoutes();
    await nextTurn();
    expect(sync).not.toHaveBeenCalled();
    expect(dark.plane.kernelRoutes('corp')).toEqual([]);
  });

  it('drops a pending sync for a network removed before the end of the turn', async () => {
    const { plane, table } = setup();
    const sync = vi.spyOn(KernelRoutes.prototype, 'sync');
    table.add(prefix('192.168.7.0/24'), target('bob', 'b').peer, 1);
    plane.routesChanged('corp');
    plane.removeNetwork('corp');
    await nextTurn();
    expect(sync).not.toHaveBeenCalled();
  });
});
