import { describe, expect, it } from 'vitest';
import { ControlDecoder } from '../../../src/control/decoder.js';
import {
  MAX_CONTROL_MESSAGE,
  controlTypeLabel,
  decodeControlPayload,
  encodeAnnouncements,
  encodeControlMessage,
  encodeControlPayload,
  type ControlMessage,
} from '../../../src/control/messages.js';
import { ascii, concat, prng, splitAt } from '../../helpers/bytes.js';

interface Decoded {
  messages: ControlMessage[];
  error: string | null;
}

function decodeChunks(chunks: Uint8Array[], endStream = true): Decoded & { decoder: ControlDecoder } {
  const decoder = new ControlDecoder();
  const messages: ControlMessage[] = [];
  let error: string | null = null;
  for (const chunk of chunks) {
    error = decoder.push(chunk, (m) => messages.push(m));
    // A plain check, not expect(): this runs for every chunk of every fuzz case.
    if (decoder.bufferedBytes > MAX_CONTROL_MESSAGE) throw new Error(`decoder buffered ${decoder.bufferedBytes} bytes`);
    if (error !== null) break;
  }
  if (error === null && endStream) error = decoder.end();
  return { messages, error, decoder };
}

const samples: ControlMessage[] = [
  { type: 'hello', nonce: 0x0123456789abcdefn },
  { type: 'hello', nonce: 0xffffffffffffffffn },
  { type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.7/32', metric: 1 }] },
  {
    type: 'announce',
    network: 'home-lab',
    routes: [
      { prefix: 'fd00:42::7/128', metric: 1 },
      { prefix: '192.168.50.0/24', metric: 65535 },
      { prefix: '10.0.0.0/8', metric: 0 },
    ],
  },
  { type: 'withdraw', network: 'corp', prefix: '10.42.0.7/32' },
  { type: 'keepalive', time: 1_763_805_600n },
  { type: 'goodbye' },
  { type: 'unknown', code: 0x5a, body: Uint8Array.of(1, 2, 3) },
  { type: 'unknown', code: 0x00, body: new Uint8Array(0) },
  { type: 'announce', network: '\ufeffnetzwerk-é-网-😀', routes: [{ prefix: '\ufeffx', metric: 7 }] },
];

describe('control message byte layouts (PROTOCOL.md section 4)', () => {
  it('encodes an announce for corp with 10.42.0.7/32 metric 1 byte by byte', () => {
    const expected = Uint8Array.from([
      0x00, 0x15, // length 21
      0x41, // 'A'
      0x04, ...ascii('corp'),
      0x0c, ...ascii('10.42.0.7/32'),
      0x00, 0x01, // metric 1
    ]);
    const msg: ControlMessage = { type: 'announce', network: 'corp', routes: [{ prefix: '10.42.0.7/32', metric: 1 }] };
    expect(encodeControlMessage(msg)).toEqual(expected);
    expect(decodeControlPayload(expected.subarray(2))).toEqual({ ok: true, msg });
  });

  it('encodes hello, keepalive, goodbye and withdraw exactly', () => {
    expect(encodeControlMessage({ type: 'hello', nonce: 0x0102030405060708n })).toEqual(
      Uint8Array.from([0x00, 0x09, 0x48, 1, 2, 3, 4, 5, 6, 7, 8]),
    );
    expect(encodeControlMessage({ type: 'keepalive', time: 0x691eabcdn })).toEqual(
      Uint8Array.from([0x00, 0x09, 0x4b, 0, 0, 0, 0, 0x69, 0x1e, 0xab, 0xcd]),
    );
    expect(encodeControlMessage({ type: 'goodbye' })).toEqual(Uint8Array.from([0x00, 0x01, 0x47]));
    expect(encodeControlMessage({ type: 'withdraw', network: 'corp', prefix: '10.42.0.0/24' })).toEqual(
      Uint8Array.from([0x00, 0x13, 0x57, 0x04, ...ascii('corp'), 0x0c, ...ascii('10.42.0.0/24')]),
    );
    expect(encodeControlMessage({ type: 'unknown', code: 0x5a, body: Uint8Array.of(9) })).toEqual(Uint8Array.from([0, 2, 0x5a, 9]));
  });

  it('encodes a two-route announce with the tuples back to back', () => {
    const bytes = encodeControlMessage({
      type: 'announce',
      network: 'n',
      routes: [
        { prefix: '1.0.0.0/8', metric: 2 },
        { prefix: '::/0', metric: 0x1234 },
      ],
    });
    expect(bytes).toEqual(
      Uint8Array.from([0x00, 0x16, 0x41, 0x01, ...ascii('n'), 0x09, ...ascii('1.0.0.0/8'), 0x00, 0x02, 0x04, ...ascii('::/0'), 0x12, 0x34]),
    );
  });

  it('round trips every message type through the payload codec and the stream decoder', () => {
    for (const msg of samples) {
      const wire = encodeControlMessage(msg);
      expect((wire[0]! << 8) | wire[1]!).toBe(wire.length - 2);
      expect(encodeControlPayload(msg)).toEqual(wire.subarray(2));
      expect(decodeControlPayload(wire.subarray(2))).toEqual({ ok: true, msg });
    }
    const { messages, error } = decodeChunks([concat(samples.map(encodeControlMessage))]);
    expect(error).toBeNull();
    expect(messages).toEqual(samples);
  });

  it('copies the body of an unknown message so a reused buffer cannot change it', () => {
    const payload = Uint8Array.of(0x5a, 1, 2, 3);
    const result = decodeControlPayload(payload);
    payload.fill(0);
    expect(result).toEqual({ ok: true, msg: { type: 'unknown', code: 0x5a, body: Uint8Array.of(1, 2, 3) } });
    expect(controlTypeLabel(0x5a)).toBe("0x5a ('Z')");
    expect(controlTypeLabel(0x01)).toBe('0x01');
  });
});

describe('encodeControlMessage refuses what cannot be sent', () => {
  const cases: Array<[string, ControlMessage, RegExp]> = [
    ['name over 255 bytes', { type: 'withdraw', network: 'é'.repeat(128), prefix: '10.0.0.0/8' }, /network name .* 256 bytes .* at most 255/],
    ['empty name', { type: 'withdraw', network: '', prefix: '10.0.0.0/8' }, /network name is empty/],
    ['prefix over 255 bytes', { type: 'announce', network: 'corp', routes: [{ prefix: 'x'.repeat(256), metric: 1 }] }, /route prefix in network 'corp'.*256 bytes/],
    ['zero routes', { type: 'announce', network: 'corp', routes: [] }, /network 'corp' has no routes/],
    ['metric too large', { type: 'announce', network: 'corp', routes: [{ prefix: '10.0.0.0/8', metric: 65536 }] }, /metric 65536 for route 10.0.0.0\/8/],
    ['metric not an integer', { type: 'announce', network: 'corp', routes: [{ prefix: '10.0.0.0/8', metric: 1.5 }] }, /metric 1.5/],
    ['nonce too large', { type: 'hello', nonce: 1n << 64n }, /hello nonce .* unsigned 64-bit/],
    ['negative time', { type: 'keepalive', time: -1n }, /keepalive time -1/],
    ['lone surrogate', { type: 'withdraw', network: 'a\ud800', prefix: 'p' }, /unpaired UTF-16 surrogate/],
    ['unknown with a known code', { type: 'unknown', code: 0x48, body: new Uint8Array(8) }, /0x48 is a known type/],
    ['unknown body too large', { type: 'unknown', code: 0x5a, body: new Uint8Array(4096) }, /4097 bytes \(limit 4096\)/],
  ];
  for (const [label, msg, pattern] of cases) {
    it(label, () => expect(() => encodeControlMessage(msg)).toThrow(pattern));
  }

  it('announce over 4096 bytes, pointing at encodeAnnouncements', () => {
    const routes = Array.from({ length: 300 }, (_, i) => ({ prefix: `10.${i >> 8}.${i & 255}.0/24`, metric: 1 }));
    expect(() => encodeControlMessage({ type: 'announce', network: 'corp', routes })).toThrow(/limit 4096.*encodeAnnouncements/);
  });

  it('accepts the largest unknown message (payload exactly 4096)', () => {
    const wire = encodeControlMessage({ type: 'unknown', code: 0x5a, body: new Uint8Array(4095) });
    expect(wire.length).toBe(4098);
    expect(Array.from(wire.subarray(0, 2))).toEqual([0x10, 0x00]);
  });
});

describe('decodeControlPayload rejects malformed payloads', () => {
  const name = (s: string): number[] => [s.length, ...ascii(s)];
  const cases: Array<[string, number[], RegExp]> = [
    ['empty payload', [], /payload is empty/],
    ['hello with 7 bytes', [0x48, 1, 2, 3, 4, 5, 6, 7], /Hello body must be exactly 8 bytes, got 7/],
    ['hello with 9 bytes', [0x48, 1, 2, 3, 4, 5, 6, 7, 8, 9], /Hello body must be exactly 8 bytes, got 9/],
    ['keepalive with no body', [0x4b], /Keepalive body must be exactly 8 bytes, got 0/],
    ['goodbye with a trailing byte', [0x47, 0], /Goodbye body must be empty, got 1 bytes/],
    ['announce with no name', [0x41], /Announce network name length byte is missing/],
    ['announce with zero-length name', [0x41, 0], /Announce network name has length 0/],
    ['announce with a name past the end', [0x41, 5, ...ascii('corp')], /claims 5 bytes but only 4 remain/],
    ['announce with no routes', [0x41, ...name('corp')], /network "corp" carries no routes/],
    ['announce with a zero-length prefix', [0x41, ...name('corp'), 0, 0, 1], /route 1 prefix has length 0/],
    ['announce missing a metric', [0x41, ...name('corp'), ...name('10.0.0.0/8'), 0], /route 1 is missing its 2-byte metric/],
    ['announce with trailing garbage', [0x41, ...name('corp'), ...name('10.0.0.0/8'), 0, 1, 0xff], /route 2 prefix claims 255 bytes/],
    ['announce with a trailing byte', [0x41, ...name('corp'), ...name('10.0.0.0/8'), 0, 1, 1], /route 2 prefix claims 1 bytes but only 0/],
    ['announce with invalid UTF-8 name', [0x41, 2, 0xc3, 0x28, ...name('p'), 0, 1], /network name is not valid UTF-8/],
    ['announce with invalid UTF-8 prefix', [0x41, ...name('n'), 1, 0xff, 0, 1], /route 1 prefix is not valid UTF-8/],
    ['withdraw without prefix', [0x57, ...name('corp')], /Withdraw prefix length byte is missing/],
    ['withdraw with trailing bytes', [0x57, ...name('corp'), ...name('p'), 1, 2], /Withdraw has 2 trailing bytes/],
    ['payload over 4096', [0x5a, ...new Array<number>(4096).fill(0)], /4097 bytes \(limit 4096\)/],
  ];
  for (const [label, bytes, pattern] of cases) {
    it(label, () => {
      const result = decodeControlPayload(Uint8Array.from(bytes));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toMatch(pattern);
    });
  }
});

describe('ControlDecoder streaming', () => {
  const stream = concat(samples.map(encodeControlMessage));

  it('decodes many messages from one chunk and one message split byte by byte', () => {
    expect(decodeChunks([stream]).messages).toEqual(samples);
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    const byByte = decodeChunks(bytes);
    expect(byByte.error).toBeNull();
    expect(byByte.messages).toEqual(samples);
  });

  it('decodes the same messages whatever single cut point splits the stream', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const { messages, error } = decodeChunks(splitAt(stream, [cut]));
      expect(error).toBeNull();
      expect(messages).toEqual(samples);
    }
  });

  it('reports a stream truncated at every cut point', () => {
    const ends: number[] = [];
    let pos = 0;
    for (const msg of samples) ends.push((pos += encodeControlMessage(msg).length));
    for (let cut = 1; cut < stream.length; cut++) {
      const { messages, error } = decodeChunks([stream.subarray(0, cut)]);
      const complete = ends.filter((e) => e <= cut).length;
      expect(messages).toEqual(samples.slice(0, complete));
      if (ends.includes(cut)) expect(error).toBeNull();
      else expect(error).toMatch(/control stream ended inside a message/);
    }
  });

  it('treats a length of 4097 as a violation before buffering the body, and stays failed', () => {
    const decoder = new ControlDecoder();
    const seen: ControlMessage[] = [];
    const first = encodeControlMessage({ type: 'goodbye' });
    expect(decoder.push(concat([first, Uint8Array.of(0x10)]), (m) => seen.push(m))).toBeNull();
    expect(decoder.push(Uint8Array.of(0x01), (m) => seen.push(m))).toBe('control message length 4097 is outside 1..4096');
    expect(seen).toEqual([{ type: 'goodbye' }]);
    expect(decoder.error).toMatch(/4097/);
    expect(decoder.push(first, (m) => seen.push(m))).toMatch(/4097/);
    expect(decoder.end()).toMatch(/4097/);
    expect(seen).toHaveLength(1);
  });

  it('treats a length of 0 as a violation', () => {
    const { messages, error } = decodeChunks([concat([encodeControlMessage({ type: 'goodbye' }), Uint8Array.of(0, 0, 0x47)])]);
    expect(messages).toEqual([{ type: 'goodbye' }]);
    expect(error).toBe('control message length 0 is outside 1..4096');
  });

  it('stops at a malformed payload, delivering the messages before it', () => {
    const bad = Uint8Array.of(0, 2, 0x47, 0);
    const { messages, error } = decodeChunks([concat([encodeControlMessage({ type: 'goodbye' }), bad, encodeControlMessage({ type: 'goodbye' })])]);
    expect(messages).toEqual([{ type: 'goodbye' }]);
    expect(error).toMatch(/Goodbye body must be empty/);
  });

  it('accepts a max-size message split across chunks', () => {
    const big = encodeControlMessage({ type: 'unknown', code: 0x5a, body: new Uint8Array(4095).fill(7) });
    const { messages, error } = decodeChunks(splitAt(big, [1, 2, 3, 2000, 4097]));
    expect(error).toBeNull();
    expect(messages).toHaveLength(1);
    expect((messages[0] as { body: Uint8Array }).body).toEqual(new Uint8Array(4095).fill(7));
  });

  it('refuses data after end() and marks a throwing callback as abandoning the decoder', () => {
    const decoder = new ControlDecoder();
    expect(decoder.end()).toBeNull();
    expect(decoder.push(encodeControlMessage({ type: 'goodbye' }), () => undefined)).toMatch(/after end\(\)/);

    const throwing = new ControlDecoder();
    expect(() =>
      throwing.push(encodeControlMessage({ type: 'goodbye' }), () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(throwing.push(encodeControlMessage({ type: 'goodbye' }), () => undefined)).toMatch(/abandoned/);
  });

  it('rejects garbage', () => {
    const { messages, error } = decodeChunks([Uint8Array.from(ascii('GET / HTTP/1.1\r\n\r\n'))]);
    expect(messages).toEqual([]);
    // 'GE' read as a length: 0x4745 = 18245.
    expect(error).toBe('control message length 18245 is outside 1..4096');
  });
});

describe('encodeAnnouncements', () => {
  it('splits 500 routes into messages of at most 4096 payload bytes, in order, filling each', () => {
    const routes = Array.from({ length: 500 }, (_, i) => ({ prefix: `fd00:42::${i.toString(16)}/128`, metric: (i % 7) + 1 }));
    const wires = encodeAnnouncements('corp', routes);
    expect(wires.length).toBeGreaterThan(1);
    const decoded: { prefix: string; metric: number }[] = [];
    for (const [i, wire] of wires.entries()) {
      expect(wire.length).toBeLessThanOrEqual(MAX_CONTROL_MESSAGE);
      const result = decodeControlPayload(wire.subarray(2));
      expect(result.ok).toBe(true);
      if (!result.ok || result.msg.type !== 'announce') throw new Error('expected an announce');
      expect(result.msg.network).toBe('corp');
      decoded.push(...result.msg.routes);
      const next = routes[decoded.length];
      // Greedy: a message is closed only when the next route would not fit.
      if (i < wires.length - 1 && next) expect(wire.length - 2 + 1 + next.prefix.length + 2).toBeGreaterThan(4096);
    }
    expect(decoded).toEqual(routes);
  });

  it('handles maximum-size names and prefixes, and no routes at all', () => {
    const network = 'n'.repeat(255);
    const routes = Array.from({ length: 40 }, (_, i) => ({ prefix: String(i).padStart(255, 'p'), metric: i }));
    const wires = encodeAnnouncements(network, routes);
    const { messages, error } = decodeChunks([concat(wires)]);
    expect(error).toBeNull();
    expect(messages.flatMap((m) => (m.type === 'announce' ? m.routes : []))).toEqual(routes);
    for (const w of wires) expect(w.length).toBeLessThanOrEqual(MAX_CONTROL_MESSAGE);
    expect(encodeAnnouncements('corp', [])).toEqual([]);
    expect(() => encodeAnnouncements('corp', [{ prefix: '', metric: 1 }])).toThrow(/route prefix in network 'corp' is empty/);
  });
});

describe('control codec fuzz (seeded)', () => {
  const alphabet = ['a', 'Z', '0', '.', '/', ':', '-', 'é', '网', '😀', '\ufeff', '\u0000'];

  function randomText(rand: () => number, maxChars: number): string {
    const n = 1 + Math.floor(rand() * maxChars);
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)]!;
    return s;
  }

  function randomU64(rand: () => number): bigint {
    return (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32));
  }

  function randomMessage(rand: () => number): ControlMessage {
    switch (Math.floor(rand() * 7)) {
      case 0:
        return { type: 'hello', nonce: randomU64(rand) };
      case 1:
        return { type: 'keepalive', time: randomU64(rand) };
      case 2:
        return { type: 'goodbye' };
      case 3:
        return { type: 'withdraw', network: randomText(rand, 60), prefix: randomText(rand, 60) };
      case 4: {
        const routes = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => ({
          prefix: randomText(rand, 40),
          metric: Math.floor(rand() * 65536),
        }));
        return { type: 'announce', network: randomText(rand, 60), routes };
      }
      case 5: {
        const tokens = Array.from({ length: Math.floor(rand() * 4) }, () =>
          String.fromCharCode(...Array.from({ length: 1 + Math.floor(rand() * 12) }, () => 0x21 + Math.floor(rand() * 94))),
        );
        return { type: 'capabilities', tokens };
      }
      default: {
        let code = Math.floor(rand() * 256);
        while ([0x41, 0x43, 0x44, 0x45, 0x47, 0x48, 0x4a, 0x4b, 0x4e, 0x51, 0x52, 0x57].includes(code)) code = Math.floor(rand() * 256);
        return { type: 'unknown', code, body: Uint8Array.from({ length: Math.floor(rand() * 20) }, () => Math.floor(rand() * 256)) };
      }
    }
  }

  function mutate(rand: () => number, bytes: Uint8Array): Uint8Array {
    const out = Array.from(bytes);
    const edits = 1 + Math.floor(rand() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (out.length + 1));
      const kind = rand();
      if (kind < 0.5 && at < out.length) out[at] = Math.floor(rand() * 256);
      else if (kind < 0.7) out.splice(at, 0, Math.floor(rand() * 256));
      else if (kind < 0.9 && at < out.length) out.splice(at, 1);
      else out.length = at;
    }
    return Uint8Array.from(out);
  }

  function randomChunks(rand: () => number, bytes: Uint8Array): Uint8Array[] {
    const cuts: number[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      pos += 1 + Math.floor(rand() * (rand() < 0.3 ? 4 : 40));
      if (pos < bytes.length) cuts.push(pos);
    }
    return splitAt(bytes, cuts);
  }

  it('payload decoder: random payloads never throw and anything accepted re-encodes to the same bytes', () => {
    const rand = prng(0xc0de);
    const codes = [0x41, 0x43, 0x44, 0x45, 0x47, 0x48, 0x4a, 0x4b, 0x4e, 0x51, 0x52, 0x57];
    let accepted = 0;
    for (let i = 0; i < 6000; i++) {
      const payload =
        i % 2 === 0
          ? mutate(rand, encodeControlPayload(randomMessage(rand)))
          : Uint8Array.from({ length: Math.floor(rand() * 40) }, (_, j) => (j === 0 && rand() < 0.8 ? codes[Math.floor(rand() * codes.length)]! : Math.floor(rand() * 256)));
      const result = decodeControlPayload(payload);
      if (result.ok) {
        accepted++;
        if (!Buffer.from(encodeControlPayload(result.msg)).equals(payload)) throw new Error(`case ${i}: accepted payload does not re-encode to itself`);
      } else if (result.error.length === 0) {
        throw new Error(`case ${i}: rejection without a reason`);
      }
    }
    // The mutations must leave some inputs valid, or this test checks only the error path.
    expect(accepted).toBeGreaterThan(300);
  });

  it('stream decoder: random, valid and mutated streams in random chunkings never throw and agree with one-chunk decoding', () => {
    const rand = prng(0x5eed);
    let clean = 0;
    for (let i = 0; i < 8000; i++) {
      const valid = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => randomMessage(rand));
      const encoded = concat(valid.map(encodeControlMessage));
      const variant = i % 4;
      const stream =
        variant === 0 ? encoded : variant === 3 ? Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)) : mutate(rand, encoded);

      const whole = decodeChunks([stream]);
      const chunked = decodeChunks(randomChunks(rand, stream));
      // Plain comparisons in this loop: expect().toEqual costs more than the decoding under test.
      // The encoding is canonical, so equal bytes mean equal messages.
      const reencoded = concat(whole.messages.map(encodeControlMessage));
      const chunkedReencoded = concat(chunked.messages.map(encodeControlMessage));
      if (!Buffer.from(chunkedReencoded).equals(reencoded) || chunked.error !== whole.error) {
        throw new Error(`case ${i}: chunked decoding differs from one-chunk decoding (${chunked.error} vs ${whole.error})`);
      }
      // Whatever was delivered is exactly the start of the stream, byte for byte.
      if (!Buffer.from(stream.subarray(0, reencoded.length)).equals(reencoded)) {
        throw new Error(`case ${i}: delivered messages do not re-encode to the start of the stream`);
      }
      if (whole.error === null) {
        clean++;
        if (reencoded.length !== stream.length) throw new Error(`case ${i}: clean decode left ${stream.length - reencoded.length} bytes`);
      }
      if (variant === 0 && (whole.error !== null || !Buffer.from(reencoded).equals(encoded))) {
        throw new Error(`case ${i}: a valid stream did not decode cleanly: ${whole.error}`);
      }
    }
    expect(clean).toBeGreaterThan(2000);
  });
});

describe('Capabilities (PROTOCOL.md#v-capabilities)', () => {
  it('is C followed by u8-length tokens, byte by byte, and may carry none', () => {
    const wire = encodeControlMessage({ type: 'capabilities', tokens: ['tcp-gso', 'x'] });
    expect([...wire]).toEqual([0x00, 0x0b, 0x43, 0x07, ...ascii('tcp-gso'), 0x01, ...ascii('x')]);
    expect(decodeControlPayload(wire.subarray(2))).toEqual({ ok: true, msg: { type: 'capabilities', tokens: ['tcp-gso', 'x'] } });
    expect(decodeControlPayload(Uint8Array.of(0x43))).toEqual({ ok: true, msg: { type: 'capabilities', tokens: [] } });
  });

  it('refuses an empty token, one running past the message, and bytes that are not printable ASCII', () => {
    for (const payload of [[0x43, 0], [0x43, 3, 0x61, 0x62], [0x43, 2, 0x61, 0x20], [0x43, 1, 0xc3]]) {
      expect(decodeControlPayload(Uint8Array.from(payload))).toMatchObject({ ok: false, error: expect.stringMatching(/^Capabilities token 1/) });
    }
    expect(() => encodeControlMessage({ type: 'capabilities', tokens: ['two words'] })).toThrow(/printable ASCII/);
    expect(() => encodeControlMessage({ type: 'capabilities', tokens: [''] })).toThrow(/1\.\.255/);
  });
});
