// Our connection IDs are their own routing index: a received packet's destination connection ID
// says which slot of an array holds its connection, so the data path finds a connection with an
// array read and a 20-byte compare — no string, no hash, no allocation per datagram.
//
// Layout of the 20 bytes: a 32-bit big-endian routing word, then 16 random bytes. The word is
// (generation << 20 | slot), XORed with a random per-table mask so the wire does not show raw
// slot numbers (how many connections this node holds). Each release bumps the slot's generation,
// so a reused slot issues a different word; and since a lookup compares all 20 bytes, an old or
// forged ID that names a live slot still routes nowhere unless its random bytes match too.
//
// Every ID has its own slot, so a connection may hold several (quiche's newSourceCid, e.g. for
// migration); the 16 random bytes keep IDs unguessable, which stateless reset tokens derived
// from them with a static key (RFC 9000 section 10.3.2) will rely on.

import { randomFillSync } from 'node:crypto';

export const CONNECTION_ID_LENGTH = 20;

const SLOT_BITS = 20;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const MAX_SLOTS = 1 << SLOT_BITS;
const GENERATION_MASK = (1 << (32 - SLOT_BITS)) - 1;
const INITIAL_SLOTS = 16;

export class ConnectionIdTable<T extends object> {
  // null, not holes: a packed array stays on V8's fast path for the per-datagram read.
  private owners: (T | null)[] = new Array<T | null>(INITIAL_SLOTS).fill(null);
  private ids = new Uint8Array(INITIAL_SLOTS * CONNECTION_ID_LENGTH);
  private generations = new Uint16Array(INITIAL_SLOTS);
  private readonly freeSlots: number[] = [];
  private unusedFrom = 0;
  private used = 0;
  private readonly mask: number;

  constructor(private readonly fillRandom: (bytes: Uint8Array) => void = randomFillSync) {
    const mask = new Uint8Array(4);
    fillRandom(mask);
    this.mask = readWord(mask, 0);
  }

  /** IDs currently routed. */
  get size(): number {
    return this.used;
  }

  /** A fresh ID routed to `owner` (a copy: hand it to quiche), or null when the table is full. */
  allocate(owner: T): Uint8Array | null {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      if (this.unusedFrom === this.owners.length && !this.grow()) return null;
      slot = this.unusedFrom++;
    }
    const at = slot * CONNECTION_ID_LENGTH;
    const word = ((this.generations[slot]! << SLOT_BITS) | slot) ^ this.mask;
    const ids = this.ids;
    ids[at] = word >>> 24;
    ids[at + 1] = (word >>> 16) & 0xff;
    ids[at + 2] = (word >>> 8) & 0xff;
    ids[at + 3] = word & 0xff;
    this.fillRandom(ids.subarray(at + 4, at + CONNECTION_ID_LENGTH));
    this.owners[slot] = owner;
    this.used++;
    return ids.slice(at, at + CONNECTION_ID_LENGTH);
  }

  /**
   * The owner of the ID in data[offset .. offset + 20], or undefined when that is not an ID this
   * table issued and still routes.
   */
  lookup(data: Uint8Array, offset: number): T | undefined {
    if (data.length < offset + CONNECTION_ID_LENGTH) return undefined;
    const slot = (readWord(data, offset) ^ this.mask) & SLOT_MASK;
    const owners = this.owners;
    if (slot >= owners.length) return undefined;
    const owner = owners[slot] as T | null;
    if (owner === null || !this.matches(slot, data, offset)) return undefined;
    return owner;
  }

  /** Stops routing `id`; false when it was not routed (already released, or never ours). */
  release(id: Uint8Array): boolean {
    if (id.length !== CONNECTION_ID_LENGTH) return false;
    const slot = (readWord(id, 0) ^ this.mask) & SLOT_MASK;
    if (slot >= this.owners.length || this.owners[slot] === null || !this.matches(slot, id, 0)) return false;
    this.owners[slot] = null;
    this.generations[slot] = (this.generations[slot]! + 1) & GENERATION_MASK;
    this.freeSlots.push(slot);
    this.used--;
    return true;
  }

  private matches(slot: number, data: Uint8Array, offset: number): boolean {
    const ids = this.ids;
    const at = slot * CONNECTION_ID_LENGTH;
    for (let i = 0; i < CONNECTION_ID_LENGTH; i++) {
      if (ids[at + i] !== data[offset + i]) return false;
    }
    return true;
  }

  private grow(): boolean {
    const slots = this.owners.length;
    if (slots >= MAX_SLOTS) return false;
    const grown = Math.min(slots * 2, MAX_SLOTS);
    const ids = new Uint8Array(grown * CONNECTION_ID_LENGTH);
    ids.set(this.ids);
    this.ids = ids;
    const generations = new Uint16Array(grown);
    generations.set(this.generations);
    this.generations = generations;
    const owners = this.owners.concat(new Array<T | null>(grown - slots).fill(null));
    this.owners = owners;
    return true;
  }
}

function readWord(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}
