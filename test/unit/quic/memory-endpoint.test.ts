// Two QuicEndpoints over a MemoryNetwork: real quiche handshakes and streams with no sockets, and
// the faults a UDP test cannot stage (partitions, downed hosts, loss, rewritten connection IDs).
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { APP_SHUTDOWN } from '../../../src/quic/errors.js';
import { MemoryDatagramSocket, MemoryNetwork } from '../../../src/quic/memory-network.js';
import type { QuicEndpointOptions } from '../../../src/quic/endpoint.js';
import type { QuicStream } from '../../../src/quic/stream.js';
import {
  closed,
  connectPair,
  EndpointPool,
  makeIdentity,
  withTimeout,
  type TestIdentity,
} from '../../helpers/quic-fixtures.js';

const A = '10.0.0.1';
const B = '10.0.0.2';
let alice: TestIdentity;
let bob: TestIdentity;
let network: MemoryNetwork;
const pool = new EndpointPool();

beforeAll(() => {
  alice = makeIdentity('alice');
  bob = makeIdentity('bob');
});

beforeEach(() => {
  network = new MemoryNetwork();
});

afterEach(async () => {
  await pool.closeAll();
});

async function memoryPair(options: Partial<QuicEndpointOptions> = {}) {
  const a = await pool.createOnNetwork(network, A, alice, options);
  const b = await pool.createOnNetwork(network, B, bob, options);
  return { a, b, ...(await connectPair(a, b, { host: B, port: 51820 })) };
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function collect(stream: QuicStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.onData = (chunk) => chunks.push(Buffer.from(chunk));
    stream.onEnd = () => resolve(Buffer.concat(chunks));
    stream.onReset = (code) => reject(new Error(`stream ${stream.id} reset with ${code}`));
  });
}

function echoServer(connection: { onStream: (stream: QuicStream) => void }): void {
  connection.onStream = (stream) => {
    stream.onData = (chunk) => stream.write(chunk);
    stream.onEnd = () => stream.end();
  };
}

/** Writes `data` through `stream` honouring backpressure, then ends it. */
function writeAll(stream: QuicStream, data: Uint8Array, chunkSize = 1300): void {
  let offset = 0;
  const pushMore = (): void => {
    while (offset < data.length) {
      const end = Math.min(offset + chunkSize, data.length);
      const full = !stream.write(data.subarray(offset, end));
      offset = end;
      if (full) return;
    }
    stream.end();
  };
  stream.onDrain = pushMore;
  pushMore();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;
}

describe('QUIC over a MemoryNetwork', () => {
  it('completes mutual TLS with real certificates, without any UDP socket', async () => {
    const before = udpHandles();
    const { a, b, client, server } = await memoryPair();
    expect(a.socket).toBeInstanceOf(MemoryDatagramSocket);
    expect(udpHandles()).toBe(before);
    expect(a.localAddress).toBe(`${A}:51820`);
    expect(client.remoteAddress).toBe(`${B}:51820`);
    expect(server.remoteAddress).toBe(`${A}:51820`);
    expect(client.peerFingerprint()).toBe(sha256Hex(bob.certDer));
    expect(server.peerFingerprint()).toBe(sha256Hex(alice.certDer));
    expect(a.connectionCount).toBe(1);
    expect(b.connectionCount).toBe(1);
    expect(network.counters.delivered).toBeGreaterThan(0);
    expect(network.counters.delivered + network.pending, 'nothing dropped').toBe(network.counters.sent);
  });

  it('works with endpoints listening on the wildcard address of their host', async () => {
    const a = await pool.createOnNetwork(network, A, alice, { listen: '0.0.0.0:4000' });
    const b = await pool.createOnNetwork(network, B, bob, { listen: { host: '0.0.0.0', port: 0 } });
    expect(b.port).toBeGreaterThanOrEqual(49152);
    const { client, server } = await connectPair(a, b, `${B}:${b.port}`);
    expect(server.remoteAddress).toBe(`${A}:4000`);
    echoServer(server);
    const stream = client.openStream();
    const reply = collect(stream);
    stream.write(Buffer.from('through the wildcard'));
    stream.end();
    expect((await withTimeout(reply, 5000, 'echo')).toString()).toBe('through the wildcard');
  });

  it('lets a dual-stack [::] endpoint on an IPv4 host dial and be dialled, as on Linux', async () => {
    const a = await pool.createOnNetwork(network, A, alice, { listen: '[::]:51820' });
    const b = await pool.createOnNetwork(network, B, bob, { listen: '0.0.0.0:51820' });
    const out = await connectPair(a, b, `${B}:51820`);
    expect(out.client.remoteAddress).toBe(`${B}:51820`);
    expect(out.server.remoteAddress).toBe(`${A}:51820`);
    const back = await connectPair(b, a, `${A}:51820`);
    expect(back.server.remoteAddress).toBe(`[::ffff:${B}]:51820`);
    expect(back.client.peerFingerprint()).toBe(sha256Hex(alice.certDer));
  });

  it('carries 10 MB through one stream intact', async () => {
    const { client, server } = await memoryPair();
    const data = randomBytes(10 * 1000 * 1000);
    const received = new Promise<Buffer>((resolve) => {
      server.onStream = (stream) => void collect(stream).then(resolve);
    });
    writeAll(client.openStream(), data);
    const result = await withTimeout(received, 30_000, 'receiving 10 MB');
    expect(result.length).toBe(data.length);
    expect(sha256Hex(result)).toBe(sha256Hex(data));
  });

  it('reads a steady stream without building quiche\'s readable() iterator, and still finds a new stream', async () => {
    const { client, server } = await memoryPair();
    const native = (server as unknown as { native: { readable: () => Iterable<number> } }).native;
    const readable = vi.spyOn(native, 'readable');
    const first = client.openStream();
    const chunks: number[] = [];
    const streams: number[] = [];
    server.onStream = (stream) => {
      streams.push(stream.id);
      stream.onData = (chunk) => chunks.push(chunk.length);
    };
    first.write(Uint8Array.of(1));
    await withTimeout(
      (async () => {
        while (chunks.length < 1) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'the first chunk',
    );
    const callsAfterFirst = readable.mock.calls.length;
    for (let i = 0; i < 20; i++) {
      first.write(new Uint8Array(100).fill(i));
      await new Promise((r) => setTimeout(r, 2));
    }
    await withTimeout(
      (async () => {
        while (chunks.reduce((a, b) => a + b, 0) < 2001) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'twenty more chunks',
    );
    expect(readable.mock.calls.length).toBe(callsAfterFirst);
    client.openStream().write(Uint8Array.of(2));
    await withTimeout(
      (async () => {
        while (streams.length < 2) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'the second stream',
    );
    expect(readable.mock.calls.length).toBeGreaterThan(callsAfterFirst);
  });

  it('keeps a busy connection past the idle timeout, and closes it by idle timeout once partitioned', async () => {
    const { a, b, client, server } = await memoryPair({ idleTimeoutMs: 1000 });
    echoServer(server);
    const stream = client.openStream();
    stream.onData = () => {};
    const ping = setInterval(() => stream.write(Buffer.from('ping')), 100);
    try {
      await sleep(1500);
      expect(client.isEstablished && server.isEstablished).toBe(true);
      const both = Promise.all([closed(client), closed(server)]);
      network.partition(A, B);
      const [clientInfo, serverInfo] = await withTimeout(both, 10_000, 'idle timeout after the partition');
      expect(clientInfo).toMatchObject({ local: true, timedOut: true });
      expect(serverInfo).toMatchObject({ local: true, timedOut: true });
    } finally {
      clearInterval(ping);
    }
    expect(network.counters.droppedByPartition).toBeGreaterThan(0);
    expect(a.connectionCount).toBe(0);
    expect(b.connectionCount).toBe(0);
  });

  it('times out a connection whose peer host went down', async () => {
    const { client } = await memoryPair({ idleTimeoutMs: 1000 });
    network.down(B);
    const info = await withTimeout(closed(client), 10_000, 'idle timeout after down');
    expect(info).toMatchObject({ local: true, timedOut: true });
  });

  it('delivers a stream intact through 10% datagram loss', async () => {
    const { client, server } = await memoryPair();
    echoServer(server);
    let seq = 0;
    network.filter = () => seq++ % 10 !== 3;
    const data = randomBytes(1024 * 1024);
    const stream = client.openStream();
    const reply = collect(stream);
    writeAll(stream, data);
    const echoed = await withTimeout(reply, 30_000, 'echo through loss').catch((error: Error) => {
      // Seen once under load (not reproduced since): say where the transfer stood.
      const state = { client: client.stats(), server: server.stats(), network: network.counters, buffered: stream.bufferedBytes };
      throw new Error(`${error.message}; ${JSON.stringify(state)}`);
    });
    expect(sha256Hex(echoed)).toBe(sha256Hex(data));
    expect(network.counters.droppedByFilter).toBeGreaterThan(0);
    expect(client.stats().packetsLost).toBeGreaterThan(0);
  });

  it('routes no packet whose connection ID was changed, in its random part or in its index', async () => {
    const { client, server } = await memoryPair();
    const routed = vi.spyOn(server, 'receiveDatagram');
    // Offset within the DCID; long headers (the client may still ACK at Handshake level just
    // after the handshake) carry it at byte 6, short headers at byte 1.
    let corruptAt = 12;
    let corrupted = 0;
    network.filter = (packet) => {
      if (packet.toHost === B) {
        const at = ((packet.data[0]! & 0x80) === 0 ? 1 : 6) + corruptAt;
        packet.data[at] = packet.data[at]! ^ 0x01;
        corrupted++;
      }
      return true;
    };
    const received = new Promise<string>((resolve) => {
      server.onStream = (stream) => void collect(stream).then((data) => resolve(data.toString()));
    });
    const stream = client.openStream();
    stream.write(Buffer.from('held back'));
    stream.end();
    await sleep(150);
    corruptAt = 3; // the slot index itself
    await sleep(150);
    expect(corrupted).toBeGreaterThan(2);
    expect(routed).not.toHaveBeenCalled();
    network.filter = null;
    expect(await withTimeout(received, 10_000, 'data once the IDs are intact')).toBe('held back');
    expect(routed).toHaveBeenCalled();
  });

  it('drops a stale connection ID after release; a replayed Initial is a new handshake, as before', async () => {
    const initials: Uint8Array[] = [];
    const shortHeaders: Uint8Array[] = [];
    network.filter = (packet) => {
      if (packet.toHost !== B) return true;
      const first = packet.data[0]!;
      if ((first & 0x80) === 0) shortHeaders.push(packet.data.slice());
      else if ((first & 0x30) === 0 && initials.length === 0) initials.push(packet.data.slice());
      return true;
    };
    const { b, client, server } = await memoryPair();
    const raw = network.socket('10.0.0.9');
    const replies: number[] = [];
    raw.onDatagram = (data) => replies.push(data.length);
    await raw.bind('10.0.0.9', 1);
    const inject = async (data: Uint8Array): Promise<void> => {
      raw.buffer().set(data);
      raw.queue(data.length, B, 51820);
      await sleep(30);
    };
    // While the connection lives, its Initial DCID still routes to it: no second connection.
    await inject(initials[0]!);
    expect(b.connectionCount).toBe(1);

    const serverClosed = closed(server);
    client.close(0, 'done');
    await withTimeout(serverClosed, 5000, 'server close');
    await waitFor(() => b.connectionCount === 0);
    expect(shortHeaders.length).toBeGreaterThan(0);
    await inject(shortHeaders[shortHeaders.length - 1]!);
    expect(b.connectionCount).toBe(0);
    expect(replies).toEqual([]);

    await inject(initials[0]!);
    expect(b.connectionCount).toBe(1);
    expect(replies.length).toBeGreaterThan(0);
    expect(pool.logs[1]!.filter((line) => line.includes('ERROR'))).toEqual([]);
    await raw.close();
  });

  it('close() tells the peer over the network (APP_SHUTDOWN)', async () => {
    const { a, server } = await memoryPair();
    const remote = closed(server);
    await a.close();
    expect(await withTimeout(remote, 5000, 'peer noticing shutdown')).toMatchObject({
      local: false,
      isApp: true,
      errorCode: APP_SHUTDOWN,
    });
  });
});

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(10);
  }
}
