// The connection-ID routing table: IDs it issues route back to their owner from inside a packet,
// released IDs stop routing, a reused slot issues an ID the old one cannot stand in for, and an ID
// that names a live slot but differs in any byte routes nowhere.
import { describe, expect, it } from 'vitest';
import { CONNECTION_ID_LENGTH, ConnectionIdTable } from '../../../src/quic/connection-ids.js';

interface Owner {
  name: string;
}

/** A short-header packet (flags byte, then the DCID) carrying `id`. */
function packetWith(id: Uint8Array, offset = 1): Uint8Array {
  const packet = new Uint8Array(offset + CONNECTION_ID_LENGTH + 30);
  packet[0] = 0x40;
  packet.set(id, offset);
  return packet;
}

function word(id: Uint8Array): number {
  return new DataView(id.buffer, id.byteOffset, 4).getUint32(0);
}

/** Deterministic "randomness": a zero mask, then a counter, so slot and generation are readable. */
function countingFill(): (bytes: Uint8Array) => void {
  let calls = 0;
  return (bytes) => {
    bytes.fill(calls === 0 ? 0 : calls & 0xff);
    calls++;
  };
}

describe('ConnectionIdTable', () => {
  it('issues distinct 20-byte IDs that route back to their owner from a packet', () => {
    const table = new ConnectionIdTable<Owner>();
    const owners = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];
    const ids = owners.map((owner) => table.allocate(owner)!);
    expect(ids.every((id) => id.length === CONNECTION_ID_LENGTH)).toBe(true);
    expect(new Set(ids.map((id) => Buffer.from(id).toString('hex'))).size).toBe(3);
    ids.forEach((id, i) => {
      expect(table.lookup(packetWith(id), 1)).toBe(owners[i]);
      // Long headers carry the DCID at offset 6.
      expect(table.lookup(packetWith(id, 6), 6)).toBe(owners[i]);
    });
    expect(table.size).toBe(3);
  });

  it('hands out a copy: changing the returned bytes does not change what routes', () => {
    const table = new ConnectionIdTable<Owner>();
    const owner = { name: 'a' };
    const id = table.allocate(owner)!;
    const original = id.slice();
    id[10] = id[10]! ^ 0xff;
    expect(table.lookup(packetWith(original), 1)).toBe(owner);
    expect(table.lookup(packetWith(id), 1)).toBeUndefined();
  });

  it('stops routing a released ID, and releases each ID only once', () => {
    const table = new ConnectionIdTable<Owner>();
    const id = table.allocate({ name: 'a' })!;
    expect(table.release(id)).toBe(true);
    expect(table.lookup(packetWith(id), 1)).toBeUndefined();
    expect(table.release(id)).toBe(false);
    expect(table.size).toBe(0);
    expect(table.release(new Uint8Array(8))).toBe(false);
  });

  it('reuses a slot with a new generation, so the old ID never routes to the new owner', () => {
    const table = new ConnectionIdTable<Owner>(countingFill());
    const first = table.allocate({ name: 'old' })!;
    table.release(first);
    const newOwner = { name: 'new' };
    const second = table.allocate(newOwner)!;
    // Mask 0: the word is generation << 20 | slot. Same slot, next generation.
    expect(word(first) & 0xfffff).toBe(word(second) & 0xfffff);
    expect(word(first) >>> 20).toBe(0);
    expect(word(second) >>> 20).toBe(1);
    expect(table.lookup(packetWith(first), 1)).toBeUndefined();
    expect(table.lookup(packetWith(second), 1)).toBe(newOwner);
  });

  it('still changes the routing word on reuse when the mask is random', () => {
    const table = new ConnectionIdTable<Owner>();
    const first = table.allocate({ name: 'old' })!;
    table.release(first);
    const second = table.allocate({ name: 'new' })!;
    const difference = (word(first) ^ word(second)) >>> 0;
    expect(difference & 0xfffff, 'same slot').toBe(0);
    expect(difference >>> 20, 'different generation').not.toBe(0);
  });

  it('does not route a forged ID that names a live slot but differs in its other bytes', () => {
    const table = new ConnectionIdTable<Owner>();
    const owner = { name: 'victim' };
    const id = table.allocate(owner)!;
    for (const at of [4, 11, 19]) {
      const forged = id.slice();
      forged[at] = forged[at]! ^ 0x01;
      expect(table.lookup(packetWith(forged), 1), `byte ${at} changed`).toBeUndefined();
    }
    // Same slot, another generation: bits above the slot index.
    const otherGeneration = id.slice();
    otherGeneration[0] = otherGeneration[0]! ^ 0x80;
    expect(table.lookup(packetWith(otherGeneration), 1)).toBeUndefined();
    expect(table.lookup(packetWith(id), 1)).toBe(owner);
  });

  it('routes nothing for free slots, slots beyond the table, or a packet too short to hold an ID', () => {
    const table = new ConnectionIdTable<Owner>(countingFill());
    const id = table.allocate({ name: 'a' })!;
    const freeSlot = id.slice();
    freeSlot[3] = 5; // slot 5: never allocated
    expect(table.lookup(packetWith(freeSlot), 1)).toBeUndefined();
    const beyond = id.slice();
    beyond[1] = 0x0f; // slot 0xf0000: far past the table
    expect(table.lookup(packetWith(beyond), 1)).toBeUndefined();
    expect(table.lookup(packetWith(id).subarray(0, CONNECTION_ID_LENGTH), 1)).toBeUndefined();
  });

  it('grows past its first slots and keeps every live ID routed through releases and reuse', () => {
    const table = new ConnectionIdTable<Owner>();
    const live = new Map<Owner, Uint8Array>();
    for (let i = 0; i < 1000; i++) {
      const owner = { name: `c${i}` };
      live.set(owner, table.allocate(owner)!);
    }
    const released: Uint8Array[] = [];
    let i = 0;
    for (const [owner, id] of live) {
      if (i++ % 2 === 0) {
        expect(table.release(id)).toBe(true);
        released.push(id);
        live.delete(owner);
      }
    }
    for (let j = 0; j < 300; j++) {
      const owner = { name: `r${j}` };
      live.set(owner, table.allocate(owner)!);
    }
    expect(table.size).toBe(live.size);
    for (const [owner, id] of live) expect(table.lookup(packetWith(id), 1)).toBe(owner);
    for (const id of released) expect(table.lookup(packetWith(id), 1)).toBeUndefined();
  });

  it('gives one owner several IDs (e.g. for migration), each released on its own', () => {
    const table = new ConnectionIdTable<Owner>();
    const owner = { name: 'a' };
    const ids = [table.allocate(owner)!, table.allocate(owner)!];
    expect(ids.map((id) => table.lookup(packetWith(id), 1))).toEqual([owner, owner]);
    table.release(ids[0]!);
    expect(table.lookup(packetWith(ids[0]!), 1)).toBeUndefined();
    expect(table.lookup(packetWith(ids[1]!), 1)).toBe(owner);
  });
});
