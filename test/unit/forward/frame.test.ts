import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  FrameEncoder,
  MAX_FRAME_LENGTH,
  encodeFrame,
  encodeFrameHeader,
} from '../../../src/forward/frame.js';
import { ascii, concat, prng, splitAt } from '../../helpers/bytes.js';

interface Frame {
  network: string;
  packet: Uint8Array;
}

function decodeChunks(chunks: Uint8Array[]): { frames: Frame[]; error: string | null; maxBuffered: number } {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let error: string | null = null;
  let maxBuffered = 0;
  for (const chunk of chunks) {
    // The packet view is only valid during the callback, so keep a copy.
    error = decoder.push(chunk, (network, packet) => frames.push({ network, packet: packet.slice() }));
    maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
    if (error !== null) break;
  }
  if (error === null) error = decoder.end();
  return { frames, error, maxBuffered };
}

function packetOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

const sampleFrames: Frame[] = [
  { network: 'corp', packet: packetOf(20, 1) },
  { network: 'corp', packet: packetOf(1, 2) },
  { network: 'home', packet: packetOf(60, 3) },
  { network: 'corp', packet: packetOf(7, 4) },
  { network: 'netzwerk-é', packet: packetOf(3, 5) },
];
const sampleStream = concat(sampleFrames.map((f) => encodeFrame(f.network, f.packet)));

describe('frame byte layout (PROTOCOL.md section 6)', () => {
  it('encodes netLen, name, big-endian packet length, packet', () => {
    const packet = Uint8Array.of(0x45, 0, 0, 0x14);
    const expected = Uint8Array.from([0x04, ...ascii('corp'), 0x00, 0x04, 0x45, 0, 0, 0x14]);
    expect(encodeFrame('corp', packet)).toEqual(expected);
    const { frames, error } = decodeChunks([expected]);
    expect(error).toBeNull();
    expect(frames).toEqual([{ network: 'corp', packet }]);
  });

  it('FrameEncoder writes frames back to back into a reused buffer', () => {
    const encoder = new FrameEncoder('corp');
    expect(encoder.headerLength).toBe(7);
    expect(encoder.frameLength(300)).toBe(307);
    const buffer = new Uint8Array(64).fill(0xee);
    let offset = encoder.writeInto(buffer, 0, Uint8Array.of(1, 2));
    offset = encoder.writeInto(buffer, offset, Uint8Array.of(3));
    expect(offset).toBe(9 + 8);
    expect(Array.from(buffer.subarray(0, offset))).toEqual([4, ...ascii('corp'), 0, 2, 1, 2, 4, ...ascii('corp'), 0, 1, 3]);
    expect(buffer[offset]).toBe(0xee);

    const header = new Uint8Array(7);
    expect(encoder.writeHeader(header, 0, 0x1234)).toBe(7);
    expect(Array.from(header)).toEqual([4, ...ascii('corp'), 0x12, 0x34]);

    const viaFunction = new Uint8Array(10);
    expect(encodeFrameHeader(Uint8Array.from(ascii('corp')), 0xffff, viaFunction, 3)).toBe(10);
    expect(Array.from(viaFunction)).toEqual([0, 0, 0, 4, ...ascii('corp'), 0xff, 0xff]);
  });

  it('refuses what cannot be framed', () => {
    const encoder = new FrameEncoder('corp');
    expect(() => encoder.encode(new Uint8Array(0))).toThrow(/packet length 0 cannot be framed; frames carry 1..65535 bytes/);
    expect(() => encoder.encode(new Uint8Array(65536))).toThrow(/packet length 65536/);
    expect(() => encoder.writeInto(new Uint8Array(8), 0, new Uint8Array(2))).toThrow(/frame of 9 bytes does not fit at offset 0 in a 8-byte buffer/);
    expect(() => encoder.writeHeader(new Uint8Array(8), 2, 1)).toThrow(/frame header needs 7 bytes at offset 2/);
    expect(() => new FrameEncoder('')).toThrow(/network name is empty/);
    expect(() => new FrameEncoder('x'.repeat(256))).toThrow(/256 bytes of UTF-8; the protocol allows at most 255/);
    expect(() => encodeFrameHeader(new Uint8Array(0), 1, new Uint8Array(10), 0)).toThrow(/network name of 0 bytes/);
    expect(() => encodeFrameHeader(new Uint8Array(256), 1, new Uint8Array(300), 0)).toThrow(/network name of 256 bytes/);
  });
});

describe('FrameDecoder', () => {
  it('decodes many frames from one chunk, handing out views into that chunk', () => {
    const views: Uint8Array[] = [];
    const networks: string[] = [];
    const decoder = new FrameDecoder();
    expect(decoder.push(sampleStream, (network, packet) => (networks.push(network), views.push(packet)))).toBeNull();
    expect(decoder.end()).toBeNull();
    expect(networks).toEqual(sampleFrames.map((f) => f.network));
    expect(views.map((v) => v.slice())).toEqual(sampleFrames.map((f) => f.packet));
    // No copy on the fast path: every packet is a view of the caller's chunk.
    for (const view of views) expect(view.buffer).toBe(sampleStream.buffer);
    expect(views[0]!.byteOffset).toBe(1 + 4 + 2);
  });

  it('decodes the same frames whatever single cut point splits the stream', () => {
    for (let cut = 0; cut <= sampleStream.length; cut++) {
      const { frames, error } = decodeChunks(splitAt(sampleStream, [cut]));
      expect(error, `cut at ${cut}`).toBeNull();
      expect(frames, `cut at ${cut}`).toEqual(sampleFrames);
    }
  });

  it('decodes the stream fed byte by byte and at every pair of cut points', () => {
    const bytes = Array.from({ length: sampleStream.length }, (_, i) => sampleStream.subarray(i, i + 1));
    expect(decodeChunks(bytes).frames).toEqual(sampleFrames);
    const prefix = sampleStream.subarray(0, 40);
    const expected = decodeChunks([prefix]).frames;
    for (let a = 0; a <= prefix.length; a++) {
      for (let b = a; b <= prefix.length; b++) {
        const { frames } = decodeChunks(splitAt(prefix, [a, b]));
        if (frames.length !== expected.length) throw new Error(`cuts ${a},${b}: ${frames.length} frames, expected ${expected.length}`);
      }
    }
  });

  it('reports a stream truncated at every cut point', () => {
    const ends: number[] = [];
    let pos = 0;
    for (const f of sampleFrames) ends.push((pos += encodeFrame(f.network, f.packet).length));
    for (let cut = 1; cut < sampleStream.length; cut++) {
      const { frames, error } = decodeChunks([sampleStream.subarray(0, cut)]);
      expect(frames).toEqual(sampleFrames.slice(0, ends.filter((e) => e <= cut).length));
      if (ends.includes(cut)) expect(error).toBeNull();
      else expect(error).toMatch(/^truncated frame: raw stream ended after \d+ bytes of a frame that needs at least \d+$/);
    }
  });

  it('rejects zero name length and zero packet length, then refuses more input', () => {
    const good = encodeFrame('corp', Uint8Array.of(1));
    const zeroName = decodeChunks([concat([good, Uint8Array.of(0, 0, 1, 9)])]);
    expect(zeroName.frames).toHaveLength(1);
    expect(zeroName.error).toBe('malformed frame: network name length is 0 and the next byte is not 1 (the only extension frame, a TCP super-segment)');

    const decoder = new FrameDecoder();
    const seen: string[] = [];
    // Split so that the zero packet length is found while completing a buffered header.
    expect(decoder.push(Uint8Array.from([4, ...ascii('co')]), (n) => seen.push(n))).toBeNull();
    expect(decoder.push(Uint8Array.from([...ascii('rp'), 0, 0]), (n) => seen.push(n))).toBe(
      'malformed frame: packet length is 0 (must be 1..65535)',
    );
    expect(decoder.push(good, (n) => seen.push(n))).toMatch(/packet length is 0/);
    expect(decoder.end()).toMatch(/packet length is 0/);
    expect(decoder.error).toMatch(/packet length is 0/);
    expect(seen).toEqual([]);
  });

  it('rejects a network name that is not UTF-8', () => {
    const { frames, error } = decodeChunks([Uint8Array.of(2, 0xc3, 0x28, 0, 1, 7)]);
    expect(frames).toEqual([]);
    expect(error).toBe('malformed frame: network name is not valid UTF-8');
  });

  it('carries a 65535-byte packet in one chunk and split across many', () => {
    const packet = packetOf(65535, 9);
    const wire = encodeFrame('corp', packet);
    expect(wire.length).toBe(7 + 65535);
    const cuts = Array.from({ length: 60 }, (_, i) => 3 + i * 1100);
    for (const chunks of [[wire], splitAt(wire, cuts)]) {
      const { frames, error } = decodeChunks(chunks);
      expect(error).toBeNull();
      expect(frames.map((f) => f.network)).toEqual(['corp']);
      // Buffer.equals: vitest's deep equality is slow on 64 KiB arrays.
      expect(Buffer.from(frames[0]!.packet).equals(packet)).toBe(true);
    }
    const split = decodeChunks(splitAt(wire, cuts));
    expect(split.maxBuffered).toBeLessThanOrEqual(MAX_FRAME_LENGTH);
  });

  it('keeps network names apart when the cached name changes', () => {
    const names = ['corp', 'corq', 'corp', 'x', 'corp', 'c'.repeat(255), 'corp'];
    const stream = concat(names.map((n, i) => encodeFrame(n, Uint8Array.of(i))));
    const { frames, error } = decodeChunks(splitAt(stream, [5, 6, 20, 300]));
    expect(error).toBeNull();
    expect(frames.map((f) => f.network)).toEqual(names);
  });

  it('marks a throwing callback as abandoning the decoder, and refuses data after end()', () => {
    const decoder = new FrameDecoder();
    expect(() =>
      decoder.push(encodeFrame('corp', Uint8Array.of(1)), () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(decoder.push(encodeFrame('corp', Uint8Array.of(1)), () => undefined)).toMatch(/abandoned/);

    const ended = new FrameDecoder();
    expect(ended.end()).toBeNull();
    expect(ended.push(encodeFrame('corp', Uint8Array.of(1)), () => undefined)).toMatch(/after end\(\)/);
  });
});

describe('frame codec fuzz (seeded)', () => {
  const names = ['corp', 'home', 'n', 'netzwerk-é', 'x'.repeat(255)];

  function mutate(rand: () => number, bytes: Uint8Array): Uint8Array {
    const out = Array.from(bytes);
    for (let e = 0; e < 1 + Math.floor(rand() * 3); e++) {
      const at = Math.floor(rand() * (out.length + 1));
      const kind = rand();
      if (kind < 0.5 && at < out.length) out[at] = rand() < 0.3 ? 0 : Math.floor(rand() * 256);
      else if (kind < 0.7) out.splice(at, 0, Math.floor(rand() * 256));
      else if (kind < 0.9 && at < out.length) out.splice(at, 1);
      else out.length = at;
    }
    return Uint8Array.from(out);
  }

  it('random, valid and mutated streams in random chunkings never throw and agree with one-chunk decoding', () => {
    const rand = prng(0xf4a3e);
    let clean = 0;
    for (let i = 0; i < 6000; i++) {
      const frames = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => ({
        network: names[Math.floor(rand() * names.length)]!,
        packet: packetOf(1 + Math.floor(rand() * (rand() < 0.05 ? 3000 : 80)), i),
      }));
      const encoded = concat(frames.map((f) => encodeFrame(f.network, f.packet)));
      const variant = i % 4;
      const stream =
        variant === 0 ? encoded : variant === 3 ? Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)) : mutate(rand, encoded);

      const cuts: number[] = [];
      for (let pos = 0; pos < stream.length; ) {
        pos += 1 + Math.floor(rand() * (rand() < 0.3 ? 5 : 200));
        if (pos < stream.length) cuts.push(pos);
      }
      const whole = decodeChunks([stream]);
      const chunked = decodeChunks(splitAt(stream, cuts));

      // Plain comparisons in this loop: expect().toEqual costs more than the decoding under test.
      const wholeBytes = concat(whole.frames.map((f) => encodeFrame(f.network, f.packet)));
      const chunkedBytes = concat(chunked.frames.map((f) => encodeFrame(f.network, f.packet)));
      if (chunked.error !== whole.error || !Buffer.from(chunkedBytes).equals(wholeBytes)) {
        throw new Error(`case ${i}: chunked decoding differs from one-chunk decoding (${chunked.error} vs ${whole.error})`);
      }
      if (!Buffer.from(stream.subarray(0, wholeBytes.length)).equals(wholeBytes)) {
        throw new Error(`case ${i}: delivered frames do not re-encode to the start of the stream`);
      }
      if (chunked.maxBuffered > MAX_FRAME_LENGTH) throw new Error(`case ${i}: buffered ${chunked.maxBuffered} bytes`);
      if (whole.error === null) {
        clean++;
        if (wholeBytes.length !== stream.length) throw new Error(`case ${i}: clean decode left ${stream.length - wholeBytes.length} bytes`);
      }
      if (variant === 0 && (whole.error !== null || !Buffer.from(wholeBytes).equals(encoded))) {
        throw new Error(`case ${i}: a valid stream did not decode cleanly: ${whole.error}`);
      }
    }
    expect(clean).toBeGreaterThan(1500);
  });
});

describe('super-segment frames (PROTOCOL.md#v-super-segments)', () => {
  const collect = (bytes: Uint8Array[]): { frames: Array<[string, number[], number]>; error: string | null } => {
    const decoder = new FrameDecoder();
    const frames: Array<[string, number[], number]> = [];
    let error: string | null = null;
    for (const chunk of bytes) {
      error = decoder.push(chunk, (network, packet, gsoSize) => frames.push([network, [...packet], gsoSize]));
      if (error !== null) break;
    }
    return { frames, error: error ?? decoder.end() };
  };

  it('puts 00 01 and the gso size in front of an ordinary frame', () => {
    const wire = new FrameEncoder('corp').encode(Uint8Array.of(0x45, 1, 2), 1448);
    expect([...wire]).toEqual([0x00, 0x01, 0x05, 0xa8, 4, ...ascii('corp'), 0, 3, 0x45, 1, 2]);
  });

  it('decodes between ordinary frames, byte by byte as in one chunk, with its gso size', () => {
    const corp = new FrameEncoder('corp');
    const wire = concat([corp.encode(Uint8Array.of(1)), corp.encode(Uint8Array.of(2, 3), 0xffff), corp.encode(Uint8Array.of(4))]);
    const expected = [
      ['corp', [1], 0],
      ['corp', [2, 3], 0xffff],
      ['corp', [4], 0],
    ];
    expect(collect([wire])).toEqual({ frames: expected, error: null });
    expect(collect([...wire].map((b) => Uint8Array.of(b)))).toEqual({ frames: expected, error: null });
  });

  it('refuses a gso size of 0, an unknown extension kind, and an escape inside the escape', () => {
    expect(collect([Uint8Array.of(0, 1, 0, 0, 4, ...ascii('corp'), 0, 1, 9)]).error).toMatch(/gso size is 0/);
    expect(collect([Uint8Array.of(0, 2, 0, 1, 4)]).error).toMatch(/next byte is not 1/);
    expect(collect([Uint8Array.of(0, 1, 0, 1, 0, 1, 0, 1)]).error).toMatch(/network name length is 0/);
  });

  it('reports a stream that ends inside the prefix as truncated', () => {
    // The original's Goodbye on a new stream (00 01 47) reads as the start of one: still refused.
    expect(collect([Uint8Array.of(0, 1, 0x47)]).error).toMatch(/^truncated frame/);
  });

  it('refuses gso sizes that cannot be framed', () => {
    const corp = new FrameEncoder('corp');
    expect(() => corp.writeSuperSegmentInto(new Uint8Array(64), 0, Uint8Array.of(1), 0)).toThrow(/gso size 0/);
    expect(() => corp.writeSuperSegmentInto(new Uint8Array(64), 0, Uint8Array.of(1), 0x10000)).toThrow(/gso size 65536/);
    expect(() => corp.writeSuperSegmentInto(new Uint8Array(8), 0, Uint8Array.of(1), 1)).toThrow(/does not fit/);
  });
});
