import { afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createHook } from 'node:async_hooks';
import { createHash, X509Certificate } from 'node:crypto';
import { APP_SHUTDOWN, APP_UNTRUSTED } from '../../../src/quic/errors.js';
import { certDerFromPem } from '../../../src/quic/tls.js';
import { fingerprintOfDer } from '../../../src/crypto/identity.js';
import type { QuicConnection } from '../../../src/quic/connection.js';
import {
  closed,
  connectPair,
  EndpointPool,
  established,
  makeIdentity,
  nextConnection,
  withTimeout,
  type TestIdentity,
} from '../../helpers/quic-fixtures.js';

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

function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

describe('QUIC handshake', () => {
  it('completes mutual TLS: each side sees the other leaf certificate and its fingerprint', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    expect(a.port).toBeGreaterThan(0);
    const { client, server } = await connectPair(a, b);

    expect(client.direction).toBe('outbound');
    expect(server.direction).toBe('inbound');
    expect(client.remoteAddress).toBe(`127.0.0.1:${b.port}`);
    expect(server.remoteAddress).toBe(`127.0.0.1:${a.port}`);

    expect(Buffer.from(client.peerCertDer()!)).toEqual(Buffer.from(bob.certDer));
    expect(Buffer.from(server.peerCertDer()!)).toEqual(Buffer.from(alice.certDer));
    expect(client.peerFingerprint()).toBe(sha256Hex(bob.certDer));
    expect(server.peerFingerprint()).toBe(sha256Hex(alice.certDer));
    expect(client.peerFingerprint()).toMatch(/^[0-9a-f]{64}$/);
    // Our own fingerprint, computed from the PEM the way the daemon will, matches what the peer sees.
    expect(fingerprintOfDer(certDerFromPem(alice.certPem))).toBe(server.peerFingerprint());
    expect(new X509Certificate(Buffer.from(client.peerCertDer()!)).subject).toBe('CN=bob');
  });

  it('fails when the ALPN protocols differ, and never announces the connection', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob, { alpn: 'something-else/9' });
    let announced = false;
    b.onConnection = () => {
      announced = true;
    };
    const client = a.connect(`127.0.0.1:${b.port}`);
    let establishedFired = false;
    client.onEstablished = () => {
      establishedFired = true;
    };
    const info = await withTimeout(closed(client), 5000, 'close after ALPN mismatch');
    expect(establishedFired).toBe(false);
    expect(announced).toBe(false);
    expect(info.isApp).toBe(false);
    // TLS alert 120 (no_application_protocol) as a QUIC crypto error 0x100 + 120, sent by the server.
    expect(info.errorCode).toBe(0x100 + 120);
    expect(info.local).toBe(false);
  });

  it('rejects a listen address that is not an IP literal, naming the fix', async () => {
    await expect(pool.create(alice, { listen: 'localhost:0' })).rejects.toThrow(/must be an IP address/);
  });

  it('takes {host, port} objects for listen and connect', async () => {
    const a = await pool.create(alice, { listen: { host: '127.0.0.1', port: 0 } });
    const b = await pool.create(bob, { listen: { host: '127.0.0.1', port: 0 } });
    expect(b.localAddress).toBe(`127.0.0.1:${b.port}`);
    const { client, server } = await connectPair(a, b, { host: '127.0.0.1', port: b.port });
    expect(client.remoteAddress).toBe(`127.0.0.1:${b.port}`);
    expect(server.peerFingerprint()).toBe(sha256Hex(alice.certDer));
  });

  it('refuses malformed addresses, text or object, with the host:port parser\'s message', async () => {
    await expect(pool.create(alice, { listen: '::1:0' })).rejects.toThrow(
      /'::1:0' is not a valid HOST:PORT \(IPv6 addresses need brackets, e\.g\. \[::1\]:0\)/,
    );
    await expect(pool.create(alice, { listen: { host: '127.0.0.1', port: 70000 } })).rejects.toThrow(
      /'127\.0\.0\.1:70000' is not a valid HOST:PORT \(port must be a number 0\.\.65535\)/,
    );
    const a = await pool.create(alice);
    expect(() => a.connect('127.0.0.1')).toThrow(/'127\.0\.0\.1' is not a valid HOST:PORT \(missing :PORT/);
    expect(() => a.connect('127.0.0.1:0')).toThrow(/port must be a number 1\.\.65535/);
    expect(() => a.connect({ host: 'not a host', port: 1 })).toThrow(/'not a host' is not an IP address or hostname/);
    expect(a.connectionCount).toBe(0);
  });

  it('fails a dial whose hostname does not resolve, via onClose', async () => {
    const a = await pool.create(alice);
    const client = a.connect('no-such-host.invalid:51820');
    const info = await withTimeout(closed(client), 10_000, 'DNS failure');
    expect(info.local).toBe(true);
    expect(info.reason).toMatch(/cannot resolve no-such-host\.invalid/);
  });

  it('reports an impossible dial (IPv6 target from an IPv4 socket) through onClose, not a throw', async () => {
    const a = await pool.create(alice);
    const client = a.connect('[::1]:51820');
    const info = await withTimeout(closed(client), 5000, 'address family failure');
    expect(info).toMatchObject({ local: true, isApp: false });
    expect(info.reason).toMatch(/cannot dial IPv6 ::1 from an IPv4 endpoint; listen on \[::\] instead/);
    expect(a.connectionCount).toBe(0);
  });

  it('dials IPv4 peers from a dual-stack [::] endpoint', async () => {
    const a = await pool.create(alice, { listen: '[::]:0' });
    const b = await pool.create(bob);
    const accepted = nextConnection(b);
    const client = a.connect(`127.0.0.1:${b.port}`);
    const [server] = await withTimeout(Promise.all([accepted, established(client)]), 5000, 'dual-stack handshake');
    expect(server.remoteAddress).toBe(`127.0.0.1:${a.port}`);
    expect(client.peerFingerprint()).toBe(sha256Hex(bob.certDer));
  });

  it('dials a hostname (resolved once) and connects', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    const accepted = nextConnection(b);
    const client = a.connect(`localhost:${b.port}`);
    await withTimeout(Promise.all([accepted, established(client)]), 5000, 'handshake via hostname');
    expect(client.remoteAddress).toBe(`localhost:${b.port}`);
  });
});

describe('QUIC connection close', () => {
  it('delivers an application close code and reason to the peer', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    const { client, server } = await connectPair(a, b);
    const serverClosed = closed(server);
    const clientClosed = closed(client);
    client.close(APP_UNTRUSTED, 'fingerprint not pinned');
    const [remote, local] = await withTimeout(Promise.all([serverClosed, clientClosed]), 5000, 'close');
    expect(remote).toEqual({ local: false, isApp: true, errorCode: APP_UNTRUSTED, reason: 'fingerprint not pinned', timedOut: false });
    expect(local).toEqual({ local: true, isApp: true, errorCode: APP_UNTRUSTED, reason: 'fingerprint not pinned', timedOut: false });
    expect(client.isClosed).toBe(true);
    expect(() => client.openStream()).toThrow(/closed/);
  });

  it('delivers the close code even when a probe timer runs between close() and the next service', async () => {
    // Just after the handshake the dialer has not read the server's HANDSHAKE_DONE yet, so its
    // Handshake-space probe timer (about 3 RTTs) is armed. Holding the event loop past that
    // deadline, as a loaded machine does, makes the timer run first once close() has returned.
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    const { client, server } = await connectPair(a, b);
    const serverClosed = closed(server);
    const clientClosed = closed(client);
    client.close(APP_UNTRUSTED, 'fingerprint not pinned');
    blockEventLoop(8 * (client.stats().rttMs ?? 0) + 50);
    const [remote, local] = await withTimeout(Promise.all([serverClosed, clientClosed]), 5000, 'close');
    expect(remote).toEqual({ local: false, isApp: true, errorCode: APP_UNTRUSTED, reason: 'fingerprint not pinned', timedOut: false });
    expect(local).toMatchObject({ local: true, isApp: true, errorCode: APP_UNTRUSTED });
  });

  it('lets the acceptor refuse a peer from onConnection (trust decision by the caller)', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    b.onConnection = (connection) => {
      expect(connection.peerFingerprint()).toBe(sha256Hex(alice.certDer));
      connection.close(APP_UNTRUSTED, 'unknown peer');
    };
    const client = a.connect(`127.0.0.1:${b.port}`);
    const info = await withTimeout(closed(client), 5000, 'refusal');
    expect(info).toMatchObject({ local: false, isApp: true, errorCode: APP_UNTRUSTED, reason: 'unknown peer' });
  });

  it('closes a silent connection after the idle timeout', async () => {
    const a = await pool.create(alice, { idleTimeoutMs: 1000 });
    const b = await pool.create(bob, { idleTimeoutMs: 1000 });
    const { client, server } = await connectPair(a, b);
    const started = Date.now();
    const [clientInfo, serverInfo] = await withTimeout(Promise.all([closed(client), closed(server)]), 5000, 'idle timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(clientInfo).toMatchObject({ local: true, timedOut: true });
    expect(serverInfo).toMatchObject({ local: true, timedOut: true });
    expect(a.connectionCount).toBe(0);
    expect(b.connectionCount).toBe(0);
  });
});

describe('QUIC endpoint', () => {
  it('accepts and dials on one socket: simultaneous dials give two connections', async () => {
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    const inboundAtA: QuicConnection[] = [];
    const inboundAtB: QuicConnection[] = [];
    const bothInbound = new Promise<void>((resolve) => {
      const check = (): void => {
        if (inboundAtA.length === 1 && inboundAtB.length === 1) resolve();
      };
      a.onConnection = (connection) => {
        inboundAtA.push(connection);
        check();
      };
      b.onConnection = (connection) => {
        inboundAtB.push(connection);
        check();
      };
    });
    const fromA = a.connect(`127.0.0.1:${b.port}`);
    const fromB = b.connect(`127.0.0.1:${a.port}`);
    await withTimeout(Promise.all([bothInbound, established(fromA), established(fromB)]), 5000, 'both handshakes');
    expect(a.connectionCount).toBe(2);
    expect(b.connectionCount).toBe(2);
    expect(inboundAtA[0]!.peerFingerprint()).toBe(sha256Hex(bob.certDer));
    expect(inboundAtB[0]!.peerFingerprint()).toBe(sha256Hex(alice.certDer));

    // Both connections carry data independently.
    const echoed = new Promise<string>((resolve) => {
      inboundAtB[0]!.onStream = (stream) => {
        stream.onData = (chunk) => resolve(Buffer.from(chunk).toString());
      };
    });
    const stream = fromA.openStream();
    expect(stream.id).toBe(0);
    stream.write(Buffer.from('over the A->B connection'));
    expect(await withTimeout(echoed, 5000, 'data on A->B')).toBe('over the A->B connection');
  });

  it('close() shuts every connection (peer sees APP_SHUTDOWN) and leaves no handles', async () => {
    const resources = trackResources();
    onTestFinished(() => resources.stop());
    const a = await pool.create(alice);
    const b = await pool.create(bob);
    const { client, server } = await connectPair(a, b);
    const serverClosed = closed(server);
    const clientClosed = closed(client);
    await a.close();
    const local = await clientClosed;
    expect(local).toMatchObject({ local: true, isApp: true, errorCode: APP_SHUTDOWN });
    const remote = await withTimeout(serverClosed, 5000, 'peer noticing shutdown');
    expect(remote).toMatchObject({ local: false, isApp: true, errorCode: APP_SHUTDOWN });
    expect(() => a.connect(`127.0.0.1:${b.port}`)).toThrow(/not running/);
    await b.close();
    expect(await resources.leftOver()).toEqual({});
  });
});

/** Keeps the event loop busy for `ms`, so that every timer due meanwhile runs on the next turn. */
function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

/**
 * Tracks the UDP sockets, timers and immediates created from now on. Only what the test creates
 * counts: the process's resource list (process.getActiveResourcesInfo) also holds vitest's own
 * timers, which come and go at any moment (its task-update throttle is a 100 ms timer).
 */
function trackResources(): { leftOver(): Promise<Record<string, number>>; stop(): void } {
  const alive = new Map<number, string>();
  let recording = true;
  const hook = createHook({
    init(asyncId, type) {
      if (recording && (type === 'UDPWRAP' || type === 'Timeout' || type === 'Immediate')) alive.set(asyncId, type);
    },
    destroy(asyncId) {
      alive.delete(asyncId);
    },
  }).enable();
  return {
    /** Stops recording, then counts what is still alive once pending destroy events are out. */
    async leftOver() {
      recording = false;
      // node emits destroy events from a later check phase of the event loop than the clear or
      // close that caused them; this immediate runs after that phase.
      await new Promise((resolve) => setImmediate(resolve));
      const counts: Record<string, number> = {};
      for (const type of alive.values()) counts[type] = (counts[type] ?? 0) + 1;
      return counts;
    },
    stop() {
      hook.disable();
    },
  };
}
