// UdpDatagramSocket, the endpoint's default socket: bind errors that say what to change, and the
// buffer()/queue()/flush() send path (native batches on Linux) delivering every datagram intact
// even when one flush switches destinations or holds more than one batch.
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../src/log/logger.js';
import { UdpDatagramSocket } from '../../../src/quic/udp-socket.js';

const sockets: UdpDatagramSocket[] = [];

afterEach(async () => {
  await Promise.all(sockets.splice(0).map((socket) => socket.close()));
});

interface Received {
  text: string;
  port: number;
}

async function bound(host = '127.0.0.1', port = 0): Promise<{ socket: UdpDatagramSocket; received: Received[] }> {
  const socket = new UdpDatagramSocket({ maxDatagramBytes: 1350, logger: memoryLogger('udp', 'debug').logger });
  sockets.push(socket);
  const received: Received[] = [];
  socket.onDatagram = (data, _host, fromPort) => received.push({ text: Buffer.from(data).toString(), port: fromPort });
  await socket.bind(host, port);
  return { socket, received };
}

function queue(socket: UdpDatagramSocket, text: string, port: number): void {
  const bytes = Buffer.from(text);
  const buffer = socket.buffer();
  expect(buffer.length).toBeGreaterThanOrEqual(1350);
  buffer.set(bytes);
  socket.queue(bytes.length, '127.0.0.1', port);
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('UdpDatagramSocket', () => {
  it('reports a port in use with the clear bind error the daemon prints', async () => {
    const { socket } = await bound();
    const other = new UdpDatagramSocket({ maxDatagramBytes: 1350, logger: memoryLogger('udp').logger });
    sockets.push(other);
    await expect(other.bind('127.0.0.1', socket.port)).rejects.toThrow(
      new RegExp(`cannot bind UDP 127\\.0\\.0\\.1:${socket.port}: address already in use \\(is another vpn running\\?\\)`),
    );
    await expect(other.bind('localhost', 0)).rejects.toThrow(/cannot bind UDP localhost:0: "localhost" is not an IP address/);
    // A failed bind leaves the socket usable for another try.
    await other.bind('127.0.0.1', 0);
    expect(other.port).toBeGreaterThan(0);
  });

  it('delivers every datagram of a flush, in order, across destination switches and batch limits', async () => {
    const sender = await bound();
    const x = await bound();
    const y = await bound();
    const expectedX: string[] = [];
    const expectedY: string[] = [];
    // 300 datagrams (more than one 128-datagram batch), destinations alternating in runs.
    for (let i = 0; i < 300; i++) {
      const toX = Math.floor(i / 7) % 2 === 0;
      const text = `#${i} `.repeat(1 + (i % 50));
      queue(sender.socket, text, toX ? x.socket.port : y.socket.port);
      (toX ? expectedX : expectedY).push(text);
    }
    sender.socket.flush();
    await until(() => x.received.length === expectedX.length && y.received.length === expectedY.length);
    expect(x.received.map((r) => r.text)).toEqual(expectedX);
    expect(y.received.map((r) => r.text)).toEqual(expectedY);
    expect(new Set([...x.received, ...y.received].map((r) => r.port))).toEqual(new Set([sender.socket.port]));
  });

  it('drops sends after close instead of throwing, and closes once', async () => {
    const { socket } = await bound();
    const peer = await bound();
    await socket.close();
    queue(socket, 'late', peer.socket.port);
    socket.flush();
    await socket.close();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(peer.received).toEqual([]);
    await expect(socket.bind('127.0.0.1', 0)).rejects.toThrow(/already bound or closed/);
  });
});
