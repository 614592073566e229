// The native batch receiver: datagrams arrive intact, in order, with the right source, whether the
// kernel coalesced them (GSO burst read back with UDP GRO) or not; node's own reader stays quiet.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { openBatchReceiver, type BatchReceiver } from '../../../src/quic/batch-receive.js';
import { openBatchSender } from '../../../src/quic/batch-send.js';

const sockets: dgram.Socket[] = [];
const receivers: BatchReceiver[] = [];

afterEach(async () => {
  for (const receiver of receivers.splice(0)) receiver.close();
  await Promise.all(sockets.splice(0).map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
});

async function bound(type: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', resolve));
  return socket;
}

function datagram(length: number, seq: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (seq * 7 + i) & 0xff;
  return bytes;
}

interface Received {
  data: Buffer;
  host: string;
  port: number;
}

/** A receiver on `socket` collecting copies (the handler's buffer is reused) until `expected` arrive. */
function collect(socket: dgram.Socket, expected: number): { done: Promise<Received[]>; errors: string[] } {
  const received: Received[] = [];
  const errors: string[] = [];
  let resolveDone: (value: Received[]) => void = () => {};
  const done = new Promise<Received[]>((resolve) => (resolveDone = resolve));
  const receiver = openBatchReceiver(
    socket,
    (data, host, port) => {
      received.push({ data: Buffer.from(data), host, port });
      if (received.length === expected) resolveDone(received);
    },
    (message) => errors.push(message),
  );
  expect(receiver, 'the native UdpReceiver should load on Linux').not.toBeNull();
  receivers.push(receiver!);
  return { done, errors };
}

function packed(sizes: number[], seqBase: number): { buffer: Uint8Array; lengths: Uint32Array; sent: Uint8Array[] } {
  const sent = sizes.map((size, i) => datagram(size, seqBase + i));
  const buffer = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  let offset = 0;
  for (const d of sent) {
    buffer.set(d, offset);
    offset += d.length;
  }
  return { buffer, lengths: new Uint32Array(sizes), sent };
}

describe.runIf(process.platform === 'linux')('openBatchReceiver', () => {
  it('splits a GSO burst back into its datagrams, in order, with the sender as source', async () => {
    const receiver = await bound();
    const sender = await bound();
    const nodeMessages: Buffer[] = [];
    receiver.on('message', (message) => nodeMessages.push(message));
    // Four GSO runs (40 x 1350 closed by 700, then 1200-byte ones) and sizes that break runs.
    const sizes = [...Array<number>(40).fill(1350), 700, 1200, 1200, 1200, 30, 1350, 20, 999];
    const { buffer, lengths, sent } = packed(sizes, 0);
    const { done, errors } = collect(receiver, sizes.length);
    expect(openBatchSender(sender)!.send(buffer, lengths, sizes.length, '127.0.0.1', receiver.address().port)).toBe(sizes.length);

    const received = await done;
    expect(received.map((r) => r.data.length)).toEqual(sizes);
    received.forEach((r, i) => expect(r.data.equals(sent[i]!), `datagram ${i} content`).toBe(true));
    expect(new Set(received.map((r) => `${r.host}:${r.port}`))).toEqual(new Set([`127.0.0.1:${sender.address().port}`]));
    expect(errors).toEqual([]);
    expect(nodeMessages, "node's own reader must be stopped, or it would take datagrams").toEqual([]);
  });

  it('tells interleaved sources apart', async () => {
    const receiver = await bound();
    const senders = [await bound(), await bound(), await bound()];
    const { done } = collect(receiver, 30);
    for (let i = 0; i < 30; i++) {
      const from = senders[i % 3]!;
      from.send(datagram(100 + i, i), receiver.address().port, '127.0.0.1');
    }
    const received = await done;
    const byLength = new Map(received.map((r) => [r.data.length, r.port]));
    for (let i = 0; i < 30; i++) {
      expect(byLength.get(100 + i), `source port of datagram ${i}`).toBe(senders[i % 3]!.address().port);
    }
    expect(received.every((r) => r.host === '127.0.0.1')).toBe(true);
  });

  it('formats IPv6 sources as node does', async () => {
    const receiver = await bound('udp6');
    const sender = await bound('udp6');
    const { done } = collect(receiver, 1);
    sender.send(datagram(64, 1), receiver.address().port, '::1');
    const [r] = await done;
    expect(r!.host).toBe('::1');
    expect(r!.port).toBe(sender.address().port);
    expect(r!.data.equals(datagram(64, 1))).toBe(true);
  });

  it('leaves an unbound socket to node (no fd yet)', () => {
    const socket = dgram.createSocket('udp4');
    sockets.push(socket);
    expect(openBatchReceiver(socket, () => {}, () => {})).toBeNull();
  });

  it('releases the port when the socket closes without the receiver being closed first', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    expect(openBatchReceiver(socket, () => {}, () => {})).not.toBeNull();
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    const again = dgram.createSocket('udp4');
    sockets.push(again);
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', resolve);
    });
    expect(again.address().port).toBe(port);
  });

  it('delivers nothing after close, and the socket still closes cleanly', async () => {
    const receiver = await bound();
    const sender = await bound();
    const seen: number[] = [];
    const batch = openBatchReceiver(receiver, (data) => seen.push(data.length), () => {});
    expect(batch).not.toBeNull();
    batch!.close();
    batch!.close();
    sender.send(datagram(10, 0), receiver.address().port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual([]);
  });
});
