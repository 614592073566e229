import { describe, expect, it } from 'vitest';
import { MemoryTun, memoryTunFactory } from '../../../src/tun/memory.js';
import { cidrOf, ipBytes } from '../../helpers/bytes.js';

/** A prefix the parser would never produce: the TUN layer still refuses it. */
const HOST_BITS = { family: 4 as const, bytes: ipBytes('10.0.0.1'), length: 8 };

const opts = { name: 'vpn-corp', address: ipBytes('10.42.0.1'), prefixLength: 24, mtu: 1280, extraRoutes: [cidrOf('192.168.50.0/24')] };

describe('MemoryTun', () => {
  it('delivers injected packets as one batch, then scribbles over them like the reused kernel buffer', () => {
    const tun = new MemoryTun(opts);
    const kept: Uint8Array[] = [];
    let copies: number[][] = [];
    tun.onPackets = (packets, count) => {
      copies = packets.slice(0, count).map((p) => [...p]);
      kept.push(packets[0]!);
    };
    tun.inject(new Uint8Array([0x45, 1]), new Uint8Array([0x60, 2, 3]));
    expect(copies).toEqual([[0x45, 1], [0x60, 2, 3]]);
    expect([...kept[0]!]).toEqual([0xee, 0xee]);
  });

  it('collects written packets as copies and can simulate a full queue', () => {
    const tun = new MemoryTun(opts);
    const seen: number[] = [];
    tun.onWrite = (p) => seen.push(p[0]!);
    const packet = new Uint8Array([0x45, 7]);
    expect(tun.writePacket(packet)).toBe(true);
    packet[1] = 8;
    expect([...tun.written[0]!]).toEqual([0x45, 7]);
    expect(tun.writePackets([packet, packet], 1)).toBe(1);
    tun.dropWrites = true;
    expect(tun.writePackets([packet, packet])).toBe(0);
    expect(tun.written).toHaveLength(2);
    expect(seen).toEqual([0x45, 0x45]);
  });

  it('tracks routes and validates them', () => {
    const tun = new MemoryTun(opts);
    tun.addRoute(cidrOf('fd00::/64'));
    tun.removeRoute(cidrOf('192.168.50.0/24'));
    expect([...tun.routes]).toEqual(['fd00::/64']);
    expect(() => tun.addRoute(HOST_BITS)).toThrow('cannot route into vpn-corp: prefix 10.0.0.1/8 has host bits set');
  });
});

describe('memoryTunFactory', () => {
  it('refuses a name in use, expands %d, and frees the name on close', () => {
    const tuns = memoryTunFactory();
    const corp = tuns.factory(opts);
    expect(() => tuns.factory(opts)).toThrow('cannot create TUN device vpn-corp: the name is in use');
    expect(tuns.factory({ ...opts, name: 'vt%d' }).name).toBe('vt0');
    expect(tuns.factory({ ...opts, name: 'vt%d' }).name).toBe('vt1');
    expect(tuns.devices.get('vpn-corp')).toBe(corp);
    corp.close();
    corp.close();
    expect(tuns.devices.has('vpn-corp')).toBe(false);
    expect(tuns.factory(opts)).not.toBe(corp);
    expect(tuns.created).toHaveLength(4);
  });
});
