import { describe, expect, it } from 'vitest';
import { HeldStreams, MAX_HELD_BYTES } from '../../../src/peer/held-streams.js';
import type { QuicStream } from '../../../src/quic/stream.js';
import { FakeStream } from '../../helpers/unit-fakes.js';

type Event = string;

/** The handlers a dispatcher installs, recording what each stream gets. */
function recordingDispatch(events: Event[]): (stream: QuicStream) => void {
  return (stream) => {
    events.push(`dispatch ${stream.id}`);
    stream.onData = (chunk) => events.push(`data ${stream.id} ${[...chunk].join(',')}`);
    stream.onEnd = () => events.push(`end ${stream.id}`);
  };
}

describe('HeldStreams', () => {
  it('replays each held stream’s chunks in order after release, as copies of the reused receive buffer', () => {
    const held = new HeldStreams(() => {
      throw new Error('no overflow expected');
    });
    const stream = new FakeStream(0);
    held.hold(stream.asQuic());
    const buffer = new Uint8Array(4);
    buffer.set([1, 2, 3]);
    stream.onData(buffer.subarray(0, 3));
    buffer.set([4, 5]);
    stream.onData(buffer.subarray(0, 2));
    buffer.fill(0xee);
    const events: Event[] = [];
    held.release(recordingDispatch(events));
    expect(events).toEqual(['dispatch 0', 'data 0 1,2,3', 'data 0 4,5']);
  });

  it('dispatches streams in the order they were held, each followed by its own bytes and end', () => {
    const held = new HeldStreams(() => {});
    const first = new FakeStream(0);
    const second = new FakeStream(4);
    const third = new FakeStream(8);
    held.hold(first.asQuic());
    held.hold(second.asQuic());
    held.hold(third.asQuic());
    second.onData(Uint8Array.of(9));
    first.onData(Uint8Array.of(7));
    second.onEnd();
    const events: Event[] = [];
    held.release(recordingDispatch(events));
    expect(events).toEqual(['dispatch 0', 'data 0 7', 'dispatch 4', 'data 4 9', 'end 4', 'dispatch 8']);
  });

  it('hands each stream over once: a second release dispatches nothing', () => {
    const held = new HeldStreams(() => {});
    const stream = new FakeStream(0);
    held.hold(stream.asQuic());
    stream.onData(Uint8Array.of(1));
    held.release(recordingDispatch([]));
    const events: Event[] = [];
    held.release(recordingDispatch(events));
    expect(events).toEqual([]);
  });

  it('keeps exactly MAX_HELD_BYTES without complaint', () => {
    let overflows = 0;
    const held = new HeldStreams(() => overflows++);
    const stream = new FakeStream(0);
    held.hold(stream.asQuic());
    stream.onData(new Uint8Array(MAX_HELD_BYTES - 1));
    stream.onData(new Uint8Array(1));
    expect(overflows).toBe(0);
    let replayed = 0;
    held.release((s) => {
      s.onData = (chunk) => (replayed += chunk.length);
    });
    expect(replayed).toBe(MAX_HELD_BYTES);
  });

  it('calls overflow once when the held bytes pass MAX_HELD_BYTES, across streams, and keeps nothing past it', () => {
    let overflows = 0;
    const held = new HeldStreams(() => overflows++);
    const a = new FakeStream(0);
    const b = new FakeStream(4);
    held.hold(a.asQuic());
    held.hold(b.asQuic());
    a.onData(new Uint8Array(MAX_HELD_BYTES / 2));
    b.onData(new Uint8Array(MAX_HELD_BYTES / 2));
    expect(overflows).toBe(0);
    b.onData(Uint8Array.of(1));
    expect(overflows).toBe(1);
    a.onData(new Uint8Array(1000));
    b.onData(new Uint8Array(1000));
    expect(overflows).toBe(1);
    const replayed = new Map<number, number>();
    held.release((s) => {
      s.onData = (chunk) => replayed.set(s.id, (replayed.get(s.id) ?? 0) + chunk.length);
    });
    expect(Object.fromEntries(replayed)).toEqual({ 0: MAX_HELD_BYTES / 2, 4: MAX_HELD_BYTES / 2 });
  });

  it('starts counting from zero after a release', () => {
    let overflows = 0;
    const held = new HeldStreams(() => overflows++);
    const a = new FakeStream(0);
    held.hold(a.asQuic());
    a.onData(new Uint8Array(MAX_HELD_BYTES));
    held.release((s) => {
      s.onData = () => {};
    });
    const b = new FakeStream(4);
    held.hold(b.asQuic());
    b.onData(new Uint8Array(MAX_HELD_BYTES));
    expect(overflows).toBe(0);
  });
});
