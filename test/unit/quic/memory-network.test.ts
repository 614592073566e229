// The in-memory datagram network on its own (raw sockets, no QUIC): asynchronous batched delivery,
// binding rules, partitions, downed hosts, the per-datagram filter and the counters.
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, type MemoryDatagramSocket } from '../../../src/quic/memory-network.js';

interface Received {
  data: Buffer;
  host: string;
  port: number;
}

async function bound(network: MemoryNetwork, host: string, port = 0): Promise<{ socket: MemoryDatagramSocket; received: Received[] }> {
  const socket = network.socket(host);
  const received: Received[] = [];
  socket.onDatagram = (data, fromHost, fromPort) => received.push({ data: Buffer.from(data), host: fromHost, port: fromPort });
  await socket.bind(host, port);
  return { socket, received };
}

function send(socket: MemoryDatagramSocket, text: string, host: string, port: number): void {
  const bytes = Buffer.from(text);
  socket.buffer().set(bytes);
  socket.queue(bytes.length, host, port);
}

/** Lets the network land everything sent so far (one turn). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('MemoryNetwork delivery', () => {
  it('delivers on a later turn, never inside the send, with the sender as source', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1', 51820);
    const b = await bound(network, '10.0.0.2', 51820);
    send(a.socket, 'hello', '10.0.0.2', 51820);
    a.socket.flush();
    expect(b.received).toEqual([]);
    expect(network.pending).toBe(1);
    await turn();
    expect(b.received).toEqual([{ data: Buffer.from('hello'), host: '10.0.0.1', port: 51820 }]);
    expect(network.counters).toMatchObject({ sent: 1, delivered: 1, deliveredBytes: 5 });
    expect([a.socket.datagramsSent, b.socket.datagramsReceived]).toEqual([1, 1]);
  });

  it('keeps back-to-back datagrams intact: a queued buffer is never handed out again', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1');
    const b = await bound(network, '10.0.0.2', 4000);
    const texts = Array.from({ length: 500 }, (_, i) => `datagram ${i} `.repeat(1 + (i % 90)));
    for (const text of texts) send(a.socket, text, '10.0.0.2', 4000);
    await turn();
    expect(b.received.map((r) => r.data.toString())).toEqual(texts);
  });

  it('lands replies sent from a receive handler on the next turn, not re-entrantly', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1', 1);
    const b = await bound(network, '10.0.0.2', 2);
    let depth = 0;
    let maxDepth = 0;
    let bounces = 0;
    const bounce = (socket: MemoryDatagramSocket) => (_data: Uint8Array, host: string, port: number): void => {
      depth++;
      maxDepth = Math.max(maxDepth, depth);
      if (++bounces < 10) send(socket, 'ball', host, port);
      depth--;
    };
    a.socket.onDatagram = bounce(a.socket);
    b.socket.onDatagram = bounce(b.socket);
    send(a.socket, 'ball', '10.0.0.2', 2);
    for (let i = 0; i < 12; i++) await turn();
    expect(bounces).toBe(10);
    expect(maxDepth).toBe(1);
  });

  it('counts datagrams to an address nobody is bound to, or to a socket closed in flight', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1');
    const b = await bound(network, '10.0.0.2', 7);
    send(a.socket, 'nobody', '10.0.0.3', 7);
    send(a.socket, 'closing', '10.0.0.2', 7);
    await b.socket.close();
    await b.socket.close();
    await turn();
    expect(b.received).toEqual([]);
    expect(network.counters.droppedUnreachable).toBe(2);
    // A closed socket sends nothing.
    send(b.socket, 'ghost', '10.0.0.1', a.socket.port);
    await turn();
    expect(a.received).toEqual([]);
    expect(network.counters.sent).toBe(2);
  });

  it('drops datagrams above its size limit like a path MTU', async () => {
    const network = new MemoryNetwork({ maxDatagramBytes: 100 });
    const a = await bound(network, '10.0.0.1');
    const b = await bound(network, '10.0.0.2', 9);
    send(a.socket, 'x'.repeat(101), '10.0.0.2', 9);
    send(a.socket, 'x'.repeat(100), '10.0.0.2', 9);
    await turn();
    expect(b.received.map((r) => r.data.length)).toEqual([100]);
    expect(network.counters.droppedUnreachable).toBe(1);
  });
});

describe('MemoryNetwork binding', () => {
  it('picks distinct ephemeral ports for port 0 and refuses a port in use', async () => {
    const network = new MemoryNetwork();
    const first = await bound(network, '10.0.0.1');
    const second = await bound(network, '10.0.0.1');
    expect(first.socket.port).toBeGreaterThanOrEqual(49152);
    expect(second.socket.port).not.toBe(first.socket.port);
    await expect(network.socket('10.0.0.1').bind('10.0.0.1', first.socket.port)).rejects.toThrow(
      new RegExp(`cannot bind 10\\.0\\.0\\.1:${first.socket.port} on the memory network: address already in use`),
    );
    // The same port on another host is free, and a closed socket's port can be bound again.
    await bound(network, '10.0.0.2', first.socket.port);
    await first.socket.close();
    await bound(network, '10.0.0.1', first.socket.port);
  });

  it("binds the wildcard to its host's address, and explains the addresses it refuses", async () => {
    const network = new MemoryNetwork();
    const socket = network.socket('10.0.0.1');
    await socket.bind('0.0.0.0', 51820);
    expect(socket.address).toBe('10.0.0.1:51820');
    await expect(network.socket().bind('0.0.0.0', 1)).rejects.toThrow(/needs a specific address, e\.g\. 10\.0\.0\.1/);
    await expect(network.socket('10.0.0.1').bind('10.0.0.2', 1)).rejects.toThrow(/this socket's host is 10\.0\.0\.1/);
    await expect(network.socket().bind('node1', 1)).rejects.toThrow(/"node1" is not an IP address/);
    await expect(socket.bind('10.0.0.1', 2)).rejects.toThrow(/already bound/);
    expect(() => network.socket('0.0.0.0')).toThrow(/must be a specific IP address/);
    const v6 = network.socket();
    await v6.bind('fd00::1', 51820);
    expect(v6.address).toBe('[fd00::1]:51820');
  });
});

describe('MemoryNetwork dual stack', () => {
  it('delivers ::ffff:-mapped destinations as IPv4 and shows a [::] socket its IPv4 peers mapped', async () => {
    const network = new MemoryNetwork();
    const dual = network.socket('10.0.0.1');
    const seen: string[] = [];
    dual.onDatagram = (_data, host, port) => seen.push(`${host} ${port}`);
    await dual.bind('::', 5);
    const v4 = await bound(network, '10.0.0.2', 6);
    send(dual, 'mapped', '::ffff:10.0.0.2', 6);
    await turn();
    expect(v4.received.map((r) => `${r.host} ${r.port} ${r.data.toString()}`)).toEqual(['10.0.0.1 5 mapped']);
    send(v4.socket, 'reply', '10.0.0.1', 5);
    await turn();
    expect(seen).toEqual(['::ffff:10.0.0.2 6']);
  });
});

describe('MemoryNetwork faults', () => {
  it('partitions two hosts both ways, leaving their other links up, until healed', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1', 1);
    const b = await bound(network, '10.0.0.2', 1);
    const c = await bound(network, '10.0.0.3', 1);
    network.partition('10.0.0.2', '10.0.0.1');
    send(a.socket, 'a->b', '10.0.0.2', 1);
    send(b.socket, 'b->a', '10.0.0.1', 1);
    send(a.socket, 'a->c', '10.0.0.3', 1);
    await turn();
    expect([a.received.length, b.received.length, c.received.length]).toEqual([0, 0, 1]);
    expect(network.counters.droppedByPartition).toBe(2);
    network.heal('10.0.0.1', '10.0.0.2');
    send(a.socket, 'a->b', '10.0.0.2', 1);
    await turn();
    expect(b.received.map((r) => r.data.toString())).toEqual(['a->b']);
  });

  it('loses what is in flight when a link is cut before it lands; heal() without hosts heals all', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1', 1);
    const b = await bound(network, '10.0.0.2', 1);
    send(a.socket, 'in flight', '10.0.0.2', 1);
    network.partition('10.0.0.1', '10.0.0.2');
    await turn();
    expect(b.received).toEqual([]);
    network.heal();
    send(a.socket, 'after', '10.0.0.2', 1);
    await turn();
    expect(b.received.map((r) => r.data.toString())).toEqual(['after']);
  });

  it('drops everything to and from a host that is down, until it is up', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1', 1);
    const b = await bound(network, '10.0.0.2', 1);
    const c = await bound(network, '10.0.0.3', 1);
    network.down('10.0.0.2');
    send(a.socket, 'to down', '10.0.0.2', 1);
    send(b.socket, 'from down', '10.0.0.1', 1);
    send(a.socket, 'unrelated', '10.0.0.3', 1);
    await turn();
    expect([a.received.length, b.received.length, c.received.length]).toEqual([0, 0, 1]);
    expect(network.counters.droppedByDown).toBe(2);
    network.up('10.0.0.2');
    send(b.socket, 'back', '10.0.0.1', 1);
    await turn();
    expect(a.received.map((r) => r.data.toString())).toEqual(['back']);
  });

  it('lets a filter drop, rewrite and redirect datagrams as they land', async () => {
    const network = new MemoryNetwork();
    const a = await bound(network, '10.0.0.1', 1);
    const b = await bound(network, '10.0.0.2', 1);
    const b2 = await bound(network, '10.0.0.2', 2);
    const seen: string[] = [];
    network.filter = (packet) => {
      const text = Buffer.from(packet.data).toString();
      seen.push(`${packet.fromHost}:${packet.fromPort}>${packet.toHost}:${packet.toPort} ${text}`);
      if (text === 'lose me') return false;
      if (text === 'rewrite me') packet.data = Buffer.from('rewritten');
      if (text === 'redirect me') packet.toPort = 2;
      if (text === 'rebind me') packet.fromPort = 9999;
      return true;
    };
    for (const text of ['lose me', 'rewrite me', 'redirect me', 'rebind me', 'plain']) send(a.socket, text, '10.0.0.2', 1);
    await turn();
    expect(seen[0]).toBe('10.0.0.1:1>10.0.0.2:1 lose me');
    expect(b.received.map((r) => `${r.port} ${r.data.toString()}`)).toEqual(['1 rewritten', '9999 rebind me', '1 plain']);
    expect(b2.received.map((r) => r.data.toString())).toEqual(['redirect me']);
    expect(network.counters).toMatchObject({ sent: 5, delivered: 4, droppedByFilter: 1 });
  });
});
