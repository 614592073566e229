import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import type { QuicStream } from '../../../src/quic/stream.js';
import { connectPair, EndpointPool, makeIdentity, withTimeout, type TestIdentity } from '../../helpers/quic-fixtures.js';

let alice: TestIdentity;
let bob: TestIdentity;
const pool = new EndpointPool();

beforeAll(() => {
  alice = makeIdentity('alice');
  bob = makeIdentity('bob');
});

afterEach(async () => {
  await pool.closeAll();
});

async function pair(options: Parameters<EndpointPool['create']>[1] = {}) {
  const a = await pool.create(alice, options);
  const b = await pool.create(bob, options);
  return connectPair(a, b);
}

/** Collects a stream's bytes (copying: chunks are views into a reused buffer) until FIN. */
function collect(stream: QuicStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.onData = (chunk) => chunks.push(Buffer.from(chunk));
    stream.onEnd = () => resolve(Buffer.concat(chunks));
    stream.onReset = (code) => reject(new Error(`stream ${stream.id} reset with ${code}`));
  });
}

/** Makes every peer-opened stream echo what it receives and end when the peer ends. */
function echoServer(connection: { onStream: (stream: QuicStream) => void }): void {
  connection.onStream = (stream) => {
    stream.onData = (chunk) => stream.write(chunk);
    stream.onEnd = () => stream.end();
  };
}

describe('QUIC streams', () => {
  it('echoes data on a bidirectional stream; the dialer opens stream 0 first, then 4', async () => {
    const { client, server } = await pair();
    echoServer(server);
    const stream = client.openStream();
    expect(stream.id).toBe(0);
    const reply = collect(stream);
    expect(stream.write(Buffer.from('hello, '))).toBe(true);
    expect(stream.write(Buffer.from('vibepn'))).toBe(true);
    stream.end();
    expect(stream.write(Buffer.from('after end'))).toBe(false);
    expect((await withTimeout(reply, 5000, 'echo')).toString()).toBe('hello, vibepn');
    expect(client.openStream().id).toBe(4);
  });

  it('numbers acceptor-opened streams 1, 5, … and reports them via onStream on the dialer', async () => {
    const { client, server } = await pair();
    const seen: number[] = [];
    const received = new Promise<string>((resolve) => {
      client.onStream = (stream) => {
        seen.push(stream.id);
        void collect(stream).then((data) => resolve(data.toString()));
      };
    });
    const stream = server.openStream();
    expect(stream.id).toBe(1);
    stream.write(Buffer.from('from the acceptor'));
    stream.end();
    expect(await withTimeout(received, 5000, 'server-initiated stream')).toBe('from the acceptor');
    expect(seen).toEqual([1]);
  });

  it('announces several new peer streams in ascending id order, so the first one is the control stream', async () => {
    const { client, server } = await pair();
    const order: number[] = [];
    const allSeen = new Promise<void>((resolve) => {
      server.onStream = (stream) => {
        order.push(stream.id);
        if (order.length === 3) resolve();
      };
    });
    // Written in one turn, so the three streams reach the acceptor in the same batch.
    const streams = [client.openStream(), client.openStream(), client.openStream()];
    for (const stream of streams.reverse()) stream.write(Buffer.from(`stream ${stream.id}`));
    await withTimeout(allSeen, 5000, 'three streams');
    expect(order).toEqual([0, 4, 8]);
  });

  it('works over IPv6', async () => {
    const { client, server } = await pair({ listen: '[::1]:0' });
    expect(client.remoteAddress).toMatch(/^\[::1\]:\d+$/);
    echoServer(server);
    const stream = client.openStream();
    const reply = collect(stream);
    stream.write(Buffer.from('v6'));
    stream.end();
    expect((await withTimeout(reply, 5000, 'echo over IPv6')).toString()).toBe('v6');
  });

  it('queues writes made before the handshake completes', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    const received = new Promise<string>((resolve) => {
      b.onConnection = (connection) => {
        connection.onStream = (stream) => void collect(stream).then((data) => resolve(data.toString()));
      };
    });
    const client = a.connect(`127.0.0.1:${b.port}`);
    const stream = client.openStream();
    stream.write(Buffer.from('early bird'));
    stream.end();
    expect(await withTimeout(received, 5000, 'early data')).toBe('early bird');
  });

  it('carries many concurrent streams, and more streams over time than the initial limit of 100', async () => {
    const { client, server } = await pair();
    echoServer(server);
    for (let wave = 0; wave < 5; wave++) {
      const replies: Promise<Buffer>[] = [];
      const payloads: Buffer[] = [];
      for (let i = 0; i < 60; i++) {
        const stream = client.openStream();
        const payload = randomBytes(1000 + i * 37);
        payloads.push(payload);
        replies.push(collect(stream));
        stream.write(payload);
        stream.end();
      }
      const results = await withTimeout(Promise.all(replies), 10_000, `wave ${wave} of 60 echo streams`);
      results.forEach((result, i) => expect(result.equals(payloads[i]!)).toBe(true));
    }
    // Finished streams are released on both ends.
    expect(client.stats().streams).toBe(0);
    expect(server.stats().streams).toBe(0);
  });

  it('holds streams opened beyond the peer’s stream limit until it grants more, instead of failing them', async () => {
    const { client, server } = await pair();
    echoServer(server);
    // 150 streams in one tick: more than the initial limit of 100 the peer grants.
    const replies: Promise<Buffer>[] = [];
    const payloads: Buffer[] = [];
    for (let i = 0; i < 150; i++) {
      const stream = client.openStream();
      const payload = randomBytes(200 + i);
      payloads.push(payload);
      replies.push(collect(stream));
      stream.write(payload);
      stream.end();
    }
    const results = await withTimeout(Promise.all(replies), 10_000, '150 echo streams opened at once');
    results.forEach((result, i) => expect(result.equals(payloads[i]!)).toBe(true));
  });

  it('moves 20 MiB intact through one stream while honouring backpressure', async () => {
    const { client, server } = await pair();
    const total = 20 * 1024 * 1024;
    const data = randomBytes(total);
    const digest = new Promise<{ hash: string; length: number }>((resolve) => {
      server.onStream = (stream) => {
        const hash = createHash('sha256');
        let length = 0;
        stream.onData = (chunk) => {
          hash.update(chunk);
          length += chunk.byteLength;
        };
        stream.onEnd = () => resolve({ hash: hash.digest('hex'), length });
      };
    });
    const stream = client.openStream();
    let refusedOrFull = 0;
    let drains = 0;
    let maxBuffered = 0;
    await withTimeout(
      new Promise<void>((resolve) => {
        let offset = 0;
        const chunkSize = 1300; // one overlay packet per write, as the VPN writes
        const pushMore = (): void => {
          while (offset < total) {
            const end = Math.min(offset + chunkSize, total);
            const full = !stream.write(data.subarray(offset, end));
            offset = end;
            maxBuffered = Math.max(maxBuffered, stream.bufferedBytes);
            if (full) {
              refusedOrFull++;
              return;
            }
          }
          stream.end();
          resolve();
        };
        stream.onDrain = () => {
          drains++;
          pushMore();
        };
        pushMore();
      }),
      30_000,
      'writing 20 MiB',
    );
    const received = await withTimeout(digest, 30_000, 'receiving 20 MiB');
    expect(received.length).toBe(total);
    expect(received.hash).toBe(createHash('sha256').update(data).digest('hex'));
    expect(refusedOrFull).toBeGreaterThan(0);
    expect(drains).toBe(refusedOrFull);
    // The default high-water mark is 1 MiB; the queue never grew past it by more than one write.
    expect(maxBuffered).toBeLessThanOrEqual(1024 * 1024 + 1300);
  });

  it('refuses writes beyond 4x the high-water mark instead of buffering without bound', async () => {
    const a = await pool.create(alice, { maxStreamBuffer: 64 * 1024 });
    // Nobody answers: the connection never establishes, so everything stays queued.
    const client = a.connect('127.0.0.1:9');
    const stream = client.openStream();
    const chunk = Buffer.alloc(16 * 1024);
    const results: boolean[] = [];
    for (let i = 0; i < 20; i++) results.push(stream.write(chunk));
    expect(results.slice(0, 3)).toEqual([true, true, true]);
    expect(results[3]).toBe(false); // 64 KiB queued: at the high-water mark
    expect(stream.bufferedBytes).toBe(256 * 1024); // 4 x 64 KiB, then refused
    expect(results.slice(16)).toEqual([false, false, false, false]);
  });

  it('reports a peer reset with its code, and stops the writer', async () => {
    const { client, server } = await pair();
    const serverStream = new Promise<QuicStream>((resolve) => {
      server.onStream = resolve;
    });
    const stream = client.openStream();
    const resetCode = new Promise<number>((resolve) => {
      stream.onReset = resolve;
    });
    stream.write(Buffer.from('first'));
    const peer = await withTimeout(serverStream, 5000, 'stream at server');
    peer.reset(42);
    // The writer learns of STOP_SENDING either from quiche's frames or on its next write.
    const keepWriting = setInterval(() => stream.write(Buffer.from('more')), 5);
    try {
      expect(await withTimeout(resetCode, 5000, 'reset at client')).toBe(42);
    } finally {
      clearInterval(keepWriting);
    }
    expect(stream.write(Buffer.from('refused'))).toBe(false);
  });
});
