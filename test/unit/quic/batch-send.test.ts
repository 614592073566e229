// The native batch sender: datagrams packed back to back leave as separate datagrams, intact and
// in order, whether they form GSO runs (equal sizes, one shorter tail) or not.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { openBatchSender } from '../../../src/quic/batch-send.js';

const sockets: dgram.Socket[] = [];

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function bound(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

function datagram(length: number, seq: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (seq * 7 + i) & 0xff;
  return bytes;
}

describe('openBatchSender', () => {
  it.runIf(process.platform === 'linux')('delivers every datagram of a batch separately, in order', async () => {
    const receiver = await bound();
    const sender = await bound();
    const batch = openBatchSender(sender);
    expect(batch, 'the native UdpSender should load on Linux').not.toBeNull();

    // A GSO run of four 1200-byte datagrams closed by a 300-byte one, then sizes that break runs.
    const sizes = [1200, 1200, 1200, 1200, 300, 50, 1350, 1350, 20, 999];
    const sent = sizes.map((size, seq) => datagram(size, seq));
    const buffer = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
    const lengths = new Uint32Array(sizes);
    let offset = 0;
    for (const d of sent) {
      buffer.set(d, offset);
      offset += d.length;
    }
    const received: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      receiver.on('message', (message) => {
        received.push(message);
        if (received.length === sent.length) resolve();
      }),
    );
    expect(batch!.send(buffer, lengths, sizes.length, '127.0.0.1', receiver.address().port)).toBe(sizes.length);
    await all;
    expect(received.map((m) => m.length)).toEqual(sizes);
    received.forEach((message, i) => expect(message.equals(sent[i]!), `datagram ${i}`).toBe(true));
  });

  it.runIf(process.platform === 'linux')('refuses a host that is not an IP literal', async () => {
    const sender = await bound();
    const batch = openBatchSender(sender)!;
    expect(() => batch.send(new Uint8Array(10), new Uint32Array([10]), 1, 'localhost', 9)).toThrow(/IP address literal/);
  });
});
