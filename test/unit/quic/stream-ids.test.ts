import { describe, expect, it } from 'vitest';
import { StreamIds } from '../../../src/quic/stream-ids.js';

describe('StreamIds', () => {
  it('numbers our streams 0, 4, 8 when we dialed and 1, 5, 9 when we accepted', () => {
    const dialer = new StreamIds(true);
    const acceptor = new StreamIds(false);
    expect([dialer.takeLocal(), dialer.takeLocal(), dialer.takeLocal()]).toEqual([0, 4, 8]);
    expect([acceptor.takeLocal(), acceptor.takeLocal(), acceptor.takeLocal()]).toEqual([1, 5, 9]);
  });

  it('sees each peer stream once, in or out of order, and never our own ids or unidirectional ones', () => {
    const ids = new StreamIds(false); // the peer dialed: its bidirectional ids are 0, 4, 8, …
    expect(ids.firstSightOfPeer(8)).toBe(true);
    expect(ids.firstSightOfPeer(0)).toBe(true);
    expect(ids.firstSightOfPeer(8)).toBe(false);
    expect(ids.firstSightOfPeer(4)).toBe(true);
    // Below the floor now (0, 4, 8 all seen): a late frame for a released stream is not new.
    for (const id of [0, 4, 8]) expect(ids.firstSightOfPeer(id)).toBe(false);
    expect(ids.firstSightOfPeer(12)).toBe(true);
    for (const id of [1, 5, 2, 3, 6]) expect(ids.firstSightOfPeer(id), `id ${id}`).toBe(false);
  });

  it('matches a naive set over random arrival orders', () => {
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let round = 0; round < 200; round++) {
      const ids = new StreamIds(true); // peer ids 1, 5, 9, …
      const seen = new Set<number>();
      for (let i = 0; i < 200; i++) {
        const id = rand(400);
        const expected = id % 4 === 1 && !seen.has(id);
        if (expected) seen.add(id);
        expect(ids.firstSightOfPeer(id)).toBe(expected);
      }
    }
  });
});
