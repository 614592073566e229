import { describe, expect, it } from 'vitest';
import type { DatagramSocket } from '../../../src/quic/datagram.js';
import { VIRTUAL_PORT, virtualHost } from '../../../src/quic/virtual-path.js';
import { VirtualPaths, type VirtualPath } from '../../../src/relay/relayed-socket.js';

const RELAY = 'a'.repeat(64);
const RELAY_2 = 'c'.repeat(64);
const REMOTE = 'b'.repeat(64);
const REMOTE_2 = 'd'.repeat(64);
/** VirtualPaths' table bound (not exported). */
const MAX_PATHS = 4096;

interface Received {
  data: number[];
  host: string;
  port: number;
}

/**
 * The UDP socket under the wrapper: records what reaches it, and hands out the same buffer every
 * time, as the real socket does for a datagram that was not queued.
 */
class RecordingSocket implements DatagramSocket {
  onDatagram: (data: Uint8Array, host: string, port: number) => void = () => {
    throw new Error('the wrapper did not install its onDatagram');
  };
  port = 0;
  readonly space = new Uint8Array(1500);
  readonly queued: Received[] = [];
  readonly binds: Array<[string, number]> = [];
  flushes = 0;
  closes = 0;

  async bind(host: string, port: number): Promise<void> {
    this.binds.push([host, port]);
    this.port = port === 0 ? 40000 : port;
  }

  buffer(): Uint8Array {
    return this.space;
  }

  queue(length: number, host: string, port: number): void {
    this.queued.push({ data: Array.from(this.space.subarray(0, length)), host, port });
  }

  flush(): void {
    this.flushes++;
  }

  async close(): Promise<void> {
    this.closes++;
  }

  /** A datagram from the network. */
  arrive(data: number[], host: string, port: number): void {
    this.onDatagram(Uint8Array.from(data), host, port);
  }
}

interface Sent {
  path: VirtualPath;
  packet: number[];
}

function setup(): { paths: VirtualPaths; inner: RecordingSocket; socket: DatagramSocket; sent: Sent[]; received: Received[] } {
  const paths = new VirtualPaths();
  const sent: Sent[] = [];
  paths.sender = (path, packet) => {
    sent.push({ path, packet: Array.from(packet) });
    return true;
  };
  const inner = new RecordingSocket();
  const socket = paths.wrap(inner);
  const received: Received[] = [];
  socket.onDatagram = (data, host, port) => received.push({ data: Array.from(data), host, port });
  return { paths, inner, socket, sent, received };
}

/** What the endpoint does to send: quiche writes into buffer(), then queue() claims `bytes.length` of it. */
function send(socket: DatagramSocket, bytes: number[], host: string, port: number): void {
  const space = socket.buffer();
  space.set(bytes);
  socket.queue(bytes.length, host, port);
}

describe('VirtualPaths table', () => {
  it('numbers paths from 1 and reuses the one path of a (relay, remote) pair', () => {
    const paths = new VirtualPaths();
    const first = paths.path(RELAY, REMOTE)!;
    expect(first).toEqual({ id: 1, relay: RELAY, remote: REMOTE, host: '0.0.0.1' });
    expect(paths.path(RELAY, REMOTE)).toBe(first);
    // The same remote through another relay, and another remote through the same relay, are other paths.
    expect(paths.path(RELAY_2, REMOTE)).toMatchObject({ id: 2, host: '0.0.0.2' });
    expect(paths.path(RELAY, REMOTE_2)).toMatchObject({ id: 3, host: '0.0.0.3' });
    expect(paths.path(RELAY, REMOTE)).toBe(first);
  });

  it('maps a connection remote host back to its path in both address forms', () => {
    const paths = new VirtualPaths();
    paths.path(RELAY, REMOTE);
    const second = paths.path(RELAY, REMOTE_2)!;
    expect(paths.pathOf('0.0.0.2')).toBe(second);
    expect(paths.pathOf('::ffff:0.0.0.2')).toBe(second);
  });

  it('knows no path for a real address or a virtual one it never handed out', () => {
    const paths = new VirtualPaths();
    paths.path(RELAY, REMOTE);
    expect(paths.pathOf('10.0.0.1')).toBeUndefined();
    expect(paths.pathOf('::ffff:10.0.0.1')).toBeUndefined();
    expect(paths.pathOf('0.0.0.2')).toBeUndefined();
    expect(paths.pathOf('0.0.0.0')).toBeUndefined();
  });

  it(`holds at most ${MAX_PATHS} paths and refuses new pairs beyond, keeping the old ones`, () => {
    const paths = new VirtualPaths();
    const remote = (i: number): string => i.toString(16).padStart(64, '0');
    for (let i = 0; i < MAX_PATHS; i++) expect(paths.path(RELAY, remote(i))?.id).toBe(i + 1);
    expect(paths.path(RELAY, remote(MAX_PATHS))).toBeNull();
    expect(paths.path(RELAY_2, remote(0))).toBeNull();
    expect(paths.path(RELAY, remote(0))?.id).toBe(1);
    expect(paths.path(RELAY, remote(MAX_PATHS - 1))?.host).toBe(virtualHost(MAX_PATHS));
    expect(paths.pathOf(virtualHost(MAX_PATHS + 1))).toBeUndefined();
  });
});

describe('RelayedSocket sending', () => {
  it('hands a datagram for a virtual host to the sender, exactly the queued bytes, and not to the UDP socket', () => {
    const { paths, inner, socket, sent } = setup();
    const path = paths.path(RELAY, REMOTE)!;
    // Longer junk first: the sender must get `length` bytes, not the rest of the buffer.
    socket.buffer().fill(0xee);
    send(socket, [0xc3, 1, 2, 3], path.host, VIRTUAL_PORT);
    socket.flush();
    expect(sent).toEqual([{ path, packet: [0xc3, 1, 2, 3] }]);
    expect(inner.queued).toEqual([]);
  });

  it('recognises the IPv4-mapped form an IPv6 endpoint queues to', () => {
    const { paths, inner, socket, sent } = setup();
    const path = paths.path(RELAY, REMOTE)!;
    send(socket, [9, 8, 7], `::ffff:${path.host}`, VIRTUAL_PORT);
    expect(sent).toEqual([{ path, packet: [9, 8, 7] }]);
    expect(inner.queued).toEqual([]);
  });

  it('passes every other datagram through to the UDP socket untouched', () => {
    const { paths, inner, socket, sent } = setup();
    paths.path(RELAY, REMOTE);
    send(socket, [1, 2, 3], '192.0.2.10', 4433);
    send(socket, [4, 5], '::ffff:192.0.2.11', 4434);
    send(socket, [6], '2001:db8::1', 4435);
    socket.flush();
    expect(inner.queued).toEqual([
      { data: [1, 2, 3], host: '192.0.2.10', port: 4433 },
      { data: [4, 5], host: '::ffff:192.0.2.11', port: 4434 },
      { data: [6], host: '2001:db8::1', port: 4435 },
    ]);
    expect(inner.flushes).toBe(1);
    expect(sent).toEqual([]);
  });

  it('keeps the order of a mixed run: each virtual datagram leaves with its own bytes', () => {
    const { paths, inner, socket, sent } = setup();
    const path = paths.path(RELAY, REMOTE)!;
    send(socket, [1, 1, 1], path.host, VIRTUAL_PORT);
    send(socket, [2, 2], '192.0.2.10', 4433);
    send(socket, [3], path.host, VIRTUAL_PORT);
    expect(sent.map((s) => s.packet)).toEqual([[1, 1, 1], [3]]);
    expect(inner.queued.map((q) => q.data)).toEqual([[2, 2]]);
  });

  it('drops a datagram for a virtual host with no path, rather than sending it into the kernel', () => {
    const { paths, inner, socket, sent } = setup();
    paths.path(RELAY, REMOTE);
    send(socket, [1], '0.0.0.9', VIRTUAL_PORT);
    send(socket, [1], '0.0.0.0', VIRTUAL_PORT);
    expect(sent).toEqual([]);
    expect(inner.queued).toEqual([]);
  });

  it('drops virtual datagrams until a sender is installed', () => {
    const paths = new VirtualPaths();
    const inner = new RecordingSocket();
    const socket = paths.wrap(inner);
    const path = paths.path(RELAY, REMOTE)!;
    expect(paths.send(path.host, Uint8Array.of(1))).toBe(false);
    send(socket, [1], path.host, VIRTUAL_PORT);
    expect(inner.queued).toEqual([]);
  });

  it("reports the sender's refusal from send()", () => {
    const { paths } = setup();
    const path = paths.path(RELAY, REMOTE)!;
    expect(paths.send(path.host, Uint8Array.of(1))).toBe(true);
    paths.sender = () => false;
    expect(paths.send(path.host, Uint8Array.of(1))).toBe(false);
  });
});

describe('RelayedSocket receiving', () => {
  it('passes datagrams from real addresses up', () => {
    const { inner, received } = setup();
    inner.arrive([1, 2], '192.0.2.10', 4433);
    inner.arrive([3], '::ffff:192.0.2.10', 4433);
    expect(received).toEqual([
      { data: [1, 2], host: '192.0.2.10', port: 4433 },
      { data: [3], host: '::ffff:192.0.2.10', port: 4433 },
    ]);
  });

  it('drops a datagram from the network that claims a virtual source, whichever form', () => {
    const { paths, inner, received } = setup();
    const path = paths.path(RELAY, REMOTE)!;
    inner.arrive([1], path.host, VIRTUAL_PORT);
    inner.arrive([1], `::ffff:${path.host}`, VIRTUAL_PORT);
    inner.arrive([1], '0.0.0.0', 4433);
    inner.arrive([1], '0.200.0.1', 4433);
    expect(received).toEqual([]);
  });

  it("delivers a relayed packet as coming from the path's IPv4 address", async () => {
    const { paths, inner, socket, received } = setup();
    await socket.bind('0.0.0.0', 0);
    expect(paths.deliver(RELAY, REMOTE, Uint8Array.of(0xc3, 7))).toBe(true);
    expect(received).toEqual([{ data: [0xc3, 7], host: '0.0.0.1', port: VIRTUAL_PORT }]);
    expect(paths.path(RELAY, REMOTE)?.host).toBe('0.0.0.1');
    expect(inner.queued).toEqual([]);
  });

  it('delivers as ::ffff:0.a.b.c when bound to an IPv6 host, as a dual-stack socket reports IPv4', async () => {
    const { paths, socket, received } = setup();
    await socket.bind('::', 0);
    paths.deliver(RELAY, REMOTE, Uint8Array.of(1));
    paths.deliver(RELAY, REMOTE_2, Uint8Array.of(2));
    expect(received).toEqual([
      { data: [1], host: '::ffff:0.0.0.1', port: VIRTUAL_PORT },
      { data: [2], host: '::ffff:0.0.0.2', port: VIRTUAL_PORT },
    ]);
    // The address it reported leads back to the path, so replies find the relay.
    expect(paths.pathOf(received[1]!.host)).toEqual({ id: 2, relay: RELAY, remote: REMOTE_2, host: '0.0.0.2' });
  });

  it('delivers through the path the endpoint already sends on', async () => {
    const { paths, socket, received } = setup();
    await socket.bind('10.0.0.1', 0);
    const path = paths.path(RELAY, REMOTE)!;
    paths.path(RELAY, REMOTE_2);
    paths.deliver(RELAY, REMOTE, Uint8Array.of(1));
    expect(received[0]!.host).toBe(path.host);
  });

  it('refuses to deliver before it wraps a socket, and when the table is full', () => {
    const unwrapped = new VirtualPaths();
    expect(unwrapped.deliver(RELAY, REMOTE, Uint8Array.of(1))).toBe(false);

    const { paths, received } = setup();
    for (let i = 0; i < MAX_PATHS; i++) paths.path(RELAY, i.toString(16).padStart(64, '0'));
    expect(paths.deliver(RELAY, REMOTE, Uint8Array.of(1))).toBe(false);
    expect(received).toEqual([]);
  });
});

describe('RelayedSocket pass-through', () => {
  it('binds, reports the port, flushes and closes the inner socket', async () => {
    const { inner, socket } = setup();
    expect(socket.port).toBe(0);
    await socket.bind('::', 0);
    expect(inner.binds).toEqual([['::', 0]]);
    expect(socket.port).toBe(40000);
    socket.flush();
    await socket.close();
    expect(inner.flushes).toBe(1);
    expect(inner.closes).toBe(1);
  });

  it('hands out the inner socket buffer, so quiche writes in place', () => {
    const { inner, socket } = setup();
    expect(socket.buffer()).toBe(inner.space);
  });
});
