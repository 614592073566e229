import { describe, expect, it } from 'vitest';
import { FrameEncoder } from '../../../src/forward/frame.js';
import { PeerSender, SEND_QUEUE_LIMIT } from '../../../src/forward/send.js';
import { FakeConnection, decodeFrames, ipv4Packet } from '../../helpers/unit-fakes.js';

const NO_CAPABILITIES = { superSegments: false };
const corp = new FrameEncoder('corp');
const home = new FrameEncoder('home');

function setup(): { conn: FakeConnection; sender: PeerSender } {
  const conn = new FakeConnection();
  return { conn, sender: new PeerSender(conn.asQuic(), NO_CAPABILITIES) };
}

describe('PeerSender batching', () => {
  it('opens one stream lazily and writes a whole batch with one write per flush', () => {
    const { conn, sender } = setup();
    expect(conn.opened).toHaveLength(0);
    const packets = [ipv4Packet('10.42.0.1', '10.42.0.2', 8, 1), ipv4Packet('10.42.0.1', '10.42.0.2', 30, 2)];
    const other = ipv4Packet('10.9.0.1', '10.9.0.2', 4, 3);
    expect(sender.add(corp, packets[0]!)).toBe(true);
    expect(sender.add(home, other)).toBe(true);
    expect(sender.add(corp, packets[1]!)).toBe(true);
    expect(conn.opened).toHaveLength(1);
    const stream = conn.opened[0]!;
    // Nothing goes out before the end of the TUN batch.
    expect(stream.writes).toHaveLength(0);
    sender.flush();
    expect(stream.writes).toHaveLength(1);
    expect(decodeFrames(stream.written())).toEqual([
      { network: 'corp', packet: packets[0] },
      { network: 'home', packet: other },
      { network: 'corp', packet: packets[1] },
    ]);
  });

  it('writes nothing for an empty flush and clears pendingFlush', () => {
    const { conn, sender } = setup();
    sender.pendingFlush = true;
    sender.flush();
    expect(sender.pendingFlush).toBe(false);
    sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'));
    sender.flush();
    sender.flush();
    expect(conn.opened[0]!.writes).toHaveLength(1);
  });

  it('starts a new batch after each flush: the next flush carries only the new frames', () => {
    const { conn, sender } = setup();
    const first = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 1);
    const second = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 2);
    sender.add(corp, first);
    sender.flush();
    sender.add(corp, second);
    sender.flush();
    const stream = conn.opened[0]!;
    expect(stream.writes).toHaveLength(2);
    expect(decodeFrames(stream.writes[1]!)).toEqual([{ network: 'corp', packet: second }]);
    expect(conn.opened).toHaveLength(1);
  });

  it('flushes early once a batch passes 64 KiB, keeping every frame in order', () => {
    const { conn, sender } = setup();
    const packets = Array.from({ length: 60 }, (_, i) => ipv4Packet('10.42.0.1', '10.42.0.2', 1380, i));
    for (const packet of packets) expect(sender.add(corp, packet)).toBe(true);
    const stream = conn.opened[0]!;
    // 60 frames of 1407 bytes are ~82 KiB: one write happened mid-batch.
    expect(stream.writes).toHaveLength(1);
    expect(stream.writes[0]!.length).toBeGreaterThanOrEqual(64 * 1024);
    sender.flush();
    expect(stream.writes).toHaveLength(2);
    expect(decodeFrames(stream.written()).map((f) => f.packet)).toEqual(packets);
  });
});

describe('PeerSender drops', () => {
  it('refuses a packet once the stream holds SEND_QUEUE_LIMIT bytes, and accepts again below it', () => {
    const { conn, sender } = setup();
    const packet = ipv4Packet('10.42.0.1', '10.42.0.2');
    expect(sender.add(corp, packet)).toBe(true);
    const stream = conn.opened[0]!;
    stream.bufferedBytes = SEND_QUEUE_LIMIT;
    expect(sender.add(corp, packet)).toBe(false);
    stream.bufferedBytes = SEND_QUEUE_LIMIT - 1;
    expect(sender.add(corp, packet)).toBe(true);
    sender.flush();
    // The refused packet is not in the batch.
    expect(decodeFrames(stream.written())).toHaveLength(2);
  });

  it('refuses packets when the connection is closing before a stream was opened', () => {
    const { conn, sender } = setup();
    conn.isClosed = true;
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(false);
    expect(conn.opened).toHaveLength(0);
    // It does not even try: no exception thrown and caught per packet on the hot path.
    expect(conn.openCalls).toBe(0);
  });

  it('refuses packets when the connection closed and its stream was detached', () => {
    const { conn, sender } = setup();
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(true);
    sender.flush();
    conn.isClosed = true;
    // What QuicConnection does to its streams once closed: they stop being writable.
    conn.opened[0]!.ended = true;
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(false);
    expect(conn.opened).toHaveLength(1);
  });

  // A closing connection keeps its streams writable until it is released: nothing may be queued on them.
  it('refuses packets as soon as the connection is closing, even with a stream still open', () => {
    const { conn, sender } = setup();
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(true);
    sender.flush();
    conn.isClosed = true; // close() called; the stream is still writable until release
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(false);
  });

  it('refuses packets when openStream throws (the peer stream limit) and retries on the next packet', () => {
    const { conn, sender } = setup();
    conn.openError = new Error("the peer's stream limit is used up");
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(false);
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(false);
    expect(conn.opened).toHaveLength(0);
    conn.openError = null;
    expect(sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'))).toBe(true);
    sender.flush();
    expect(decodeFrames(conn.opened[0]!.written())).toHaveLength(1);
  });
});

describe('PeerSender streams', () => {
  it('replaces a stream the peer reset with a fresh one on the next packet', () => {
    const { conn, sender } = setup();
    const before = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 1);
    const after = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 2);
    sender.add(corp, before);
    sender.flush();
    conn.opened[0]!.peerReset(4);
    expect(sender.add(corp, after)).toBe(true);
    sender.flush();
    expect(conn.opened).toHaveLength(2);
    expect(conn.opened[0]!.writes).toHaveLength(1);
    expect(decodeFrames(conn.opened[1]!.written())).toEqual([{ network: 'corp', packet: after }]);
  });

  it('ignores a late reset of a stream it already replaced', () => {
    const { conn, sender } = setup();
    sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'));
    sender.flush();
    const first = conn.opened[0]!;
    first.ended = true; // no longer writable: the sender moves to a new stream
    sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'));
    expect(conn.opened).toHaveLength(2);
    first.onReset(4);
    sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'));
    sender.flush();
    // Still the second stream: the old stream's reset did not drop the current one.
    expect(conn.opened).toHaveLength(2);
    expect(decodeFrames(conn.opened[1]!.written())).toHaveLength(2);
  });

  it('carries frames batched before the stream stopped being writable on the replacement stream', () => {
    const { conn, sender } = setup();
    const early = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 1);
    const late = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 2);
    sender.add(corp, early);
    conn.opened[0]!.peerReset(4);
    sender.add(corp, late);
    sender.flush();
    expect(conn.opened[0]!.writes).toHaveLength(0);
    expect(decodeFrames(conn.opened[1]!.written())).toEqual([
      { network: 'corp', packet: early },
      { network: 'corp', packet: late },
    ]);
  });

  it('retargets to a new connection: flushes the batch to the old stream, ends it, and opens on the new one', () => {
    const { conn, sender } = setup();
    const next = new FakeConnection('192.0.2.2:51820');
    const queued = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 1);
    const later = ipv4Packet('10.42.0.1', '10.42.0.2', 8, 2);
    sender.add(corp, queued);
    sender.retarget(next.asQuic(), NO_CAPABILITIES);
    const old = conn.opened[0]!;
    expect(decodeFrames(old.written())).toEqual([{ network: 'corp', packet: queued }]);
    expect(old.ended).toBe(true);
    expect(next.opened).toHaveLength(0);
    expect(sender.add(corp, later)).toBe(true);
    sender.flush();
    expect(conn.opened).toHaveLength(1);
    expect(next.opened).toHaveLength(1);
    expect(decodeFrames(next.opened[0]!.written())).toEqual([{ network: 'corp', packet: later }]);
  });

  it('does nothing when retargeted to the connection it already uses', () => {
    const { conn, sender } = setup();
    sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'));
    sender.retarget(conn.asQuic(), NO_CAPABILITIES);
    const stream = conn.opened[0]!;
    expect(stream.ended).toBe(false);
    expect(stream.writes).toHaveLength(0);
    sender.flush();
    expect(stream.writes).toHaveLength(1);
  });

  it('close drops the unsent batch and ends the stream', () => {
    const { conn, sender } = setup();
    sender.add(corp, ipv4Packet('10.42.0.1', '10.42.0.2'));
    sender.close();
    sender.flush();
    const stream = conn.opened[0]!;
    expect(stream.ended).toBe(true);
    expect(stream.writes).toHaveLength(0);
  });
});
