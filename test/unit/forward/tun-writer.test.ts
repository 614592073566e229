import { describe, expect, it } from 'vitest';
import { TunWriter } from '../../../src/forward/tun-writer.js';
import { newForwardCounters } from '../../../src/metrics/forward-counters.js';
import { MemoryTun } from '../../../src/tun/memory.js';
import type { TunLike } from '../../../src/tun/types.js';
import { ipBytes } from '../../helpers/bytes.js';

const options = { name: 'vpn-corp', address: ipBytes('10.42.0.1'), prefixLength: 24, mtu: 1280 };

function bytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i + seed) & 0xff);
}

/** A MemoryTun that records the size of every native batch. */
function recordingTun(): { tun: MemoryTun; batches: number[] } {
  const tun = new MemoryTun(options);
  const batches: number[] = [];
  const write = tun.writePackets.bind(tun);
  tun.writePackets = (packets, count = packets.length, status) => {
    batches.push(count);
    return write(packets, count, status);
  };
  return { tun, batches };
}

/** A TUN without writePackets whose writePacket refuses the packets `refuse` picks. */
function singleWriteTun(refuse: (packet: Uint8Array) => boolean): TunLike & { written: Uint8Array[] } {
  const written: Uint8Array[] = [];
  return {
    name: 'vpn-old',
    onPackets: null,
    written,
    writePacket(packet) {
      if (refuse(packet)) return false;
      written.push(packet.slice());
      return true;
    },
    addRoute() {},
    removeRoute() {},
    close() {},
  };
}

describe('TunWriter', () => {
  it('hands every queued packet to the TUN in one native batch per flush', () => {
    const { tun, batches } = recordingTun();
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    const packets = [bytes(20, 1), bytes(40, 2), bytes(60, 3)];
    for (const packet of packets) writer.queue(packet);
    expect(batches).toEqual([]);
    expect(tun.written).toHaveLength(0);
    writer.pendingFlush = true;
    writer.flush();
    expect(writer.pendingFlush).toBe(false);
    expect(batches).toEqual([3]);
    expect(tun.written).toEqual(packets);
    expect(counters.packetsIn).toBe(3);
    expect(counters.bytesIn).toBe(120);
    expect(counters.drops.queue_full).toBe(0);
  });

  it('makes no native call for an empty flush, and starts empty after each flush', () => {
    const { tun, batches } = recordingTun();
    const writer = new TunWriter(tun, newForwardCounters());
    writer.flush();
    expect(batches).toEqual([]);
    writer.queue(bytes(10, 1));
    writer.flush();
    writer.queue(bytes(10, 2));
    writer.flush();
    expect(batches).toEqual([1, 1]);
    expect(tun.written).toEqual([bytes(10, 1), bytes(10, 2)]);
  });

  it('copies each packet when queued: the caller may reuse its buffer before the flush', () => {
    const tun = new MemoryTun(options);
    const writer = new TunWriter(tun, newForwardCounters());
    const buffer = bytes(32, 5);
    const original = buffer.slice();
    writer.queue(buffer.subarray(0, 16));
    writer.queue(buffer.subarray(16));
    buffer.fill(0xee);
    writer.flush();
    expect(tun.written).toEqual([original.subarray(0, 16), original.subarray(16)]);
  });

  it('flushes early before the queue would pass 256 KiB', () => {
    const { tun, batches } = recordingTun();
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    const packets = Array.from({ length: 5 }, (_, i) => bytes(60_000, i));
    for (const packet of packets) writer.queue(packet);
    // 4 x 60000 fit in 262144 bytes; the fifth would not, so the first four went out already.
    expect(batches).toEqual([4]);
    writer.flush();
    expect(batches).toEqual([4, 1]);
    expect(tun.written).toEqual(packets);
    expect(counters.packetsIn).toBe(5);
    expect(counters.bytesIn).toBe(300_000);
  });

  it('counts packets the TUN refuses as queue_full drops, not as delivered', () => {
    const tun = new MemoryTun(options);
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    tun.dropWrites = true;
    writer.queue(bytes(20, 1));
    writer.queue(bytes(30, 2));
    writer.flush();
    expect(counters.drops.queue_full).toBe(2);
    expect(counters.packetsIn).toBe(0);
    expect(counters.bytesIn).toBe(0);
    tun.dropWrites = false;
    writer.queue(bytes(40, 3));
    writer.flush();
    expect(counters.packetsIn).toBe(1);
    expect(counters.bytesIn).toBe(40);
    expect(counters.drops.queue_full).toBe(2);
  });

  it('counts only the written head of a partly accepted batch', () => {
    const tun = new MemoryTun(options);
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    let accepted = 0;
    tun.onWrite = () => {
      if (++accepted === 2) tun.dropWrites = true;
    };
    writer.queue(bytes(10, 1));
    writer.queue(bytes(20, 2));
    writer.queue(bytes(30, 3));
    writer.flush();
    expect(tun.written).toEqual([bytes(10, 1), bytes(20, 2)]);
    expect(counters.packetsIn).toBe(2);
    expect(counters.bytesIn).toBe(30);
    expect(counters.drops.queue_full).toBe(1);
  });

  it('falls back to one write per packet on a TUN without writePackets', () => {
    const tun = singleWriteTun(() => false);
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    writer.queue(bytes(10, 1));
    writer.queue(bytes(20, 2));
    writer.flush();
    expect(tun.written).toEqual([bytes(10, 1), bytes(20, 2)]);
    expect(counters.packetsIn).toBe(2);
    expect(counters.bytesIn).toBe(30);
  });

  // The native batch (tun.c tun_write_batch) stops only on EAGAIN/EWOULDBLOCK/EBADF; any other
  // error drops just that packet and goes on, so a drop can sit in the middle of a batch.
  it('counts the bytes of the packets actually written when the native batch skips one in the middle', () => {
    const tun = singleWriteTun((packet) => packet.length === 10);
    // Like tun_write_batch: a packet refused with e.g. EINVAL is skipped, the rest still go.
    tun.writePackets = (packets, count = packets.length, status) => {
      let written = 0;
      for (let i = 0; i < count; i++) {
        const ok = tun.writePacket(packets[i]!);
        if (status) status[i] = ok ? 1 : 0;
        if (ok) written++;
      }
      return written;
    };
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    writer.queue(bytes(10, 1));
    writer.queue(bytes(20, 2));
    writer.queue(bytes(30, 3));
    writer.flush();
    expect(tun.written).toEqual([bytes(20, 2), bytes(30, 3)]);
    expect(counters.packetsIn).toBe(2);
    expect(counters.bytesIn).toBe(50);
  });

  // Bytes are counted per written packet: a drop in the middle must not shift the count onto the
  // dropped packet (10 + 20 instead of 20 + 30).
  it('counts the bytes of the packets actually written when a one-by-one write drops one in the middle', () => {
    const tun = singleWriteTun((packet) => packet.length === 10);
    const counters = newForwardCounters();
    const writer = new TunWriter(tun, counters);
    writer.queue(bytes(10, 1));
    writer.queue(bytes(20, 2));
    writer.queue(bytes(30, 3));
    writer.flush();
    expect(counters.packetsIn).toBe(2);
    expect(counters.drops.queue_full).toBe(1);
    expect(counters.bytesIn).toBe(50);
  });
});
