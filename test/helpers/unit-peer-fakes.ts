// Fakes for unit tests of the connection, handshake and daemon code (src/peer/connections.ts,
// handshake.ts, src/daemon/node.ts, apply-reload.ts): a QuicConnection stand-in with the
// direction, close, probe and certificate surface those modules use, a known-peers file held in
// memory (with writes that can be held back or made to fail), a PeerManager that only records,
// and helpers to drive a link's control session by hand. Nothing here touches a socket, the
// disk or a timer.

import { X509Certificate } from 'node:crypto';
import { FakeClock } from '../../src/clock/fake.js';
import type { Config } from '../../src/config/types.js';
import { ControlDecoder } from '../../src/control/decoder.js';
import { encodeAnnouncements, encodeControlMessage, type ControlMessage, type RouteAnnouncement } from '../../src/control/messages.js';
import type { AtomicFsAsync } from '../../src/crypto/atomic-file.js';
import type { GeneratedIdentity, Identity } from '../../src/crypto/identity.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { Node } from '../../src/daemon/node.js';
import { DataPlane } from '../../src/forward/dataplane.js';
import { FrameEncoder } from '../../src/forward/frame.js';
import { memoryLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { formatHostPort, type HostPort } from '../../src/netgraph/hostport.js';
import { Routes } from '../../src/netgraph/routes.js';
import type { Connections } from '../../src/peer/connections.js';
import type { PeerManager } from '../../src/peer/manager.js';
import type { Link, Peer } from '../../src/peer/peer.js';
import { PeerMap } from '../../src/peer/peers.js';
import { DEFAULT_TIMING } from '../../src/peer/timing.js';
import type { QuicCloseInfo, QuicConnection, QuicDirection } from '../../src/quic/connection.js';
import type { QuicStream } from '../../src/quic/stream.js';
import { memoryTunFactory } from '../../src/tun/memory.js';
import { VirtualPaths } from '../../src/relay/relayed-socket.js';
import { FakeStream, concatBytes, decodeFrames, ipv4Packet, type DecodedFrame } from './unit-fakes.js';

/** The DER certificate of a generated identity, as a peer presents it over TLS. */
export function certDer(identity: GeneratedIdentity): Uint8Array {
  return new Uint8Array(new X509Certificate(identity.certPem).raw);
}

/**
 * A QuicConnection stand-in. close() only records (the real one reports onClose later, once
 * quiche is done): a test delivers that with finishClose(). ping() counts, and answers when
 * `answersPings` is set (a live peer: packetsReceived() grows).
 */
export class FakeQuicConnection {
  onEstablished: () => void = () => {};
  onClose: (info: QuicCloseInfo) => void = () => {};
  onStream: (stream: QuicStream) => void = () => {};
  /** Streams we opened (openStream), in order. */
  readonly opened: FakeStream[] = [];
  /** Streams the peer opened (peerStream), in order. */
  readonly peerStreams: FakeStream[] = [];
  /** Every close() call that took effect (the first one; later ones are ignored, like the real one). */
  readonly closes: Array<{ code: number; reason: string }> = [];
  pings = 0;
  received = 0;
  /** A live peer: every ping is answered at once. */
  answersPings = false;
  rtt: number | null = null;
  /** The peer closed it (finishClose with local: false). */
  closedByPeer = false;
  closeDelivered = false;
  private nextLocalStream: number;
  private nextPeerStream: number;

  constructor(
    readonly direction: QuicDirection,
    readonly remoteAddress = '192.0.2.1:51820',
    public certDer: Uint8Array | null = null,
  ) {
    this.nextLocalStream = direction === 'outbound' ? 0 : 1;
    this.nextPeerStream = direction === 'outbound' ? 1 : 0;
  }

  get isClosed(): boolean {
    return this.closes.length > 0 || this.closedByPeer;
  }

  /** The code of our close, or null if we did not close it. */
  get closeCode(): number | null {
    return this.closes[0]?.code ?? null;
  }

  close(code: number, reason: string): void {
    if (this.isClosed) return;
    this.closes.push({ code, reason });
  }

  ping(): void {
    if (this.isClosed) return;
    this.pings++;
    if (this.answersPings) this.received++;
  }

  packetsReceived(): number {
    return this.received;
  }

  rttMs(): number | null {
    return this.rtt;
  }

  openStream(): QuicStream {
    if (this.isClosed) throw new Error(`cannot open a stream: connection to ${this.remoteAddress} is closed`);
    const stream = new FakeStream(this.nextLocalStream);
    this.nextLocalStream += 4;
    this.opened.push(stream);
    return stream.asQuic();
  }

  peerCertDer(): Uint8Array | null {
    return this.certDer;
  }

  remoteEndpoint(): { host: string; port: number } {
    const match = /^\[?(.*?)\]?:(\d+)$/.exec(this.remoteAddress);
    if (!match) throw new Error(`bad fake remote address ${this.remoteAddress}`);
    return { host: match[1]!, port: Number(match[2]) };
  }

  /** The TLS handshake finished (dialed connections report it through onEstablished). */
  establish(): void {
    this.onEstablished();
  }

  /** The peer opens a stream; `first` is its first chunk, delivered after onStream as QUIC does. */
  peerStream(first?: Uint8Array): FakeStream {
    const stream = new FakeStream(this.nextPeerStream);
    this.nextPeerStream += 4;
    this.peerStreams.push(stream);
    this.onStream(stream.asQuic());
    if (first) stream.onData(first);
    return stream;
  }

  /**
   * quiche is done with the connection: onClose fires. Without `info`, with our own close (which
   * must have happened); with `info`, as given (default: the peer closed it).
   */
  finishClose(info?: Partial<QuicCloseInfo>): void {
    if (this.closeDelivered) throw new Error('onClose already delivered');
    let full: QuicCloseInfo;
    if (info === undefined) {
      const ours = this.closes[0];
      if (!ours) throw new Error('finishClose() without info needs a close() first');
      full = { local: true, errorCode: ours.code, reason: ours.reason, isApp: true, timedOut: false };
    } else {
      full = { local: false, errorCode: 0, reason: '', isApp: true, timedOut: false, ...info };
      if (!full.local) this.closedByPeer = true;
    }
    this.closeDelivered = true;
    this.onClose(full);
  }

  asQuic(): QuicConnection {
    return this as unknown as QuicConnection;
  }
}

/** Decodes a whole control-stream byte sequence; throws on a malformed one. */
export function decodeControl(bytes: Uint8Array): ControlMessage[] {
  const decoder = new ControlDecoder();
  const out: ControlMessage[] = [];
  const error = decoder.push(bytes, (msg) => out.push(msg));
  if (error !== null) throw new Error(error);
  return out;
}

/** Every control message written on `stream`, in order. */
export function controlSent(stream: FakeStream): ControlMessage[] {
  return decodeControl(stream.written());
}

/** The types of the control messages written on `stream`, e.g. ['hello', 'announce']. */
export function controlTypes(stream: FakeStream): string[] {
  return controlSent(stream).map((m) => m.type);
}

export const helloBytes = (nonce: bigint): Uint8Array => encodeControlMessage({ type: 'hello', nonce });
export const goodbyeBytes = (): Uint8Array => encodeControlMessage({ type: 'goodbye' });
export const keepaliveBytes = (): Uint8Array => encodeControlMessage({ type: 'keepalive', time: 0n });
export const withdrawBytes = (network: string, prefix: string): Uint8Array => encodeControlMessage({ type: 'withdraw', network, prefix });

/** One network's Announce message(s), as one chunk. */
export function announceBytes(network: string, prefixes: readonly string[], metric = 1): Uint8Array {
  const routes: RouteAnnouncement[] = prefixes.map((prefix) => ({ prefix, metric }));
  return concatBytes(encodeAnnouncements(network, routes));
}

/** A connection with a peer, admitted and with its control stream, driven by hand. */
export interface DrivenLink {
  conn: FakeQuicConnection;
  control: FakeStream;
  link: Link;
  /** Bytes from the peer on the control stream. */
  receive(bytes: Uint8Array): void;
  hello(nonce: bigint): void;
  announce(network: string, prefixes: readonly string[]): void;
}

/** Registers a fake connection with `connections` and opens its control session (Hello and announcements go out). */
export function openLink(
  connections: Connections,
  peer: Peer,
  direction: QuicDirection,
  remoteAddress = direction === 'outbound' ? '192.0.2.10:51820' : '192.0.2.10:40000',
): DrivenLink {
  const conn = new FakeQuicConnection(direction, remoteAddress);
  const link = connections.register(peer, conn.asQuic());
  const control = new FakeStream(direction === 'outbound' ? 0 : 1);
  connections.openSession(link, control.asQuic());
  const receive = (bytes: Uint8Array): void => control.onData(bytes);
  return {
    conn,
    control,
    link,
    receive,
    hello: (nonce) => receive(helloBytes(nonce)),
    announce: (network, prefixes) => receive(announceBytes(network, prefixes)),
  };
}

/**
 * Sends one packet through the peer's data sender (then framesOn() shows which connection it went
 * out on). False when the peer has no sender or the sender refused the packet.
 */
export function sendThrough(peer: Peer, network = 'corp'): boolean {
  const sender = peer.sender;
  if (!sender) return false;
  const accepted = sender.add(new FrameEncoder(network), ipv4Packet('10.42.0.1', '10.42.0.2'));
  sender.flush();
  return accepted;
}

/** The frames written on the data streams we opened on `conn`. */
export function framesOn(conn: FakeQuicConnection): DecodedFrame[] {
  return conn.opened.flatMap((stream) => (stream.writes.length ? decodeFrames(stream.written()) : []));
}

/** A PeerManager that only records what it is told. */
export class RecordingManager {
  readonly calls: string[] = [];
  lastError: string | null = null;
  state = 'waiting';

  connected(): void {
    this.calls.push('connected');
  }

  disconnected(reason: string): void {
    this.calls.push(`disconnected: ${reason}`);
  }

  dialFailed(reason: string): void {
    this.calls.push(`dialFailed: ${reason}`);
  }

  dialLostLottery(reason: string): void {
    this.calls.push(`dialLostLottery: ${reason}`);
  }

  retryNow(): void {
    this.calls.push('retryNow');
  }

  start(): void {
    this.calls.push('start');
  }

  stop(): void {
    this.calls.push('stop');
  }

  asManager(): PeerManager {
    return this as unknown as PeerManager;
  }
}

/** The sum of a counter's values whose labels include `labels`. */
export async function counterValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

/**
 * A known-peers file held in memory, for a real TrustStore: reads and atomic writes go through
 * it. Writes can be held back (a slow disk) or made to fail (a full one).
 */
export class MemoryKnownPeers {
  /** The file's content; null = it does not exist. */
  text: string | null = null;
  /** When set, every write fails with it. */
  failWrites: Error | null = null;
  /** Files renamed into place, in order (the known-peers file's successive contents). */
  readonly written: string[] = [];
  private held: Array<() => void> | null = null;
  private heldReads: Array<() => void> | null = null;
  private readonly temps = new Map<string, string>();

  constructor(readonly path = '/virtual/vibepn/known_peers.json') {}

  /** Writes wait until releaseWrites(). */
  holdWrites(): void {
    this.held ??= [];
  }

  releaseWrites(): void {
    const waiting = this.held ?? [];
    this.held = null;
    for (const go of waiting) go();
  }

  /** Reads wait until releaseReads() (then see the file as it is at that moment). */
  holdReads(): void {
    this.heldReads ??= [];
  }

  releaseReads(): void {
    const waiting = this.heldReads ?? [];
    this.heldReads = null;
    for (const go of waiting) go();
  }

  /** A TrustStore on this file, read once (as the daemon does at start). */
  async store(): Promise<TrustStore> {
    const store = new TrustStore(this.path, { fs: this.fs, readFile: (p) => this.readFile(p) });
    await store.reload();
    return store;
  }

  async readFile(path: string): Promise<string> {
    if (this.heldReads) await new Promise<void>((resolve) => this.heldReads!.push(resolve));
    if (path !== this.path || this.text === null) {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    }
    return this.text;
  }

  readonly fs: AtomicFsAsync = {
    mkdir: async () => undefined,
    unlink: async (path) => {
      this.temps.delete(path);
    },
    rename: async (from, to) => {
      const text = this.temps.get(from);
      this.temps.delete(from);
      if (to === this.path && text !== undefined) {
        this.text = text;
        this.written.push(text);
      }
    },
    open: async (path, flags) => {
      if (flags === 'r') return { chmod: async () => {}, write: async () => {}, sync: async () => {}, close: async () => {} } as never;
      if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
      if (this.failWrites) throw this.failWrites;
      this.temps.set(path, '');
      const handle = {
        chmod: async () => {},
        write: async (data: string) => {
          this.temps.set(path, (this.temps.get(path) ?? '') + data);
        },
        sync: async () => {},
        close: async () => {},
      };
      return handle as never;
    },
  };
}

export interface FakeNodeOptions {
  config: Config;
  /** This node; only its name and fingerprint are used. */
  identity: GeneratedIdentity & { name?: string };
  /** The known-peers file; a fresh empty one by default. */
  file?: MemoryKnownPeers;
  /** Hello nonces; 77 by default. */
  nonce?: () => bigint;
}

/**
 * A Node built as Daemon.start builds it (networks, then peers; managers not started), on fakes:
 * a FakeClock, MemoryTuns, an in-memory known-peers file, a dial that hands out
 * FakeQuicConnections, and a host-address list a test can change (roaming).
 */
export async function fakeNode(options: FakeNodeOptions) {
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger('test', 'debug');
  const metrics = new Metrics({ processMetrics: false });
  const peers = new PeerMap();
  const file = options.file ?? new MemoryKnownPeers(options.config.identity.knownPeers);
  const trust = await file.store();
  const tuns = memoryTunFactory();
  const dataPlane = new DataPlane<Peer>({ metrics, logger: logger.child('forward'), tunFactory: tuns.factory, offload: true });
  const routes = new Routes<Peer>({ knownPeers: () => peers.withKeys(), metrics, logger: logger.child('netgraph'), onChange: () => {}, now: () => clock.now() });
  const addresses = {
    list: [
      { interface: 'eth0', address: '192.0.2.50' },
      { interface: 'eth0', address: '2001:db8::50' },
    ],
  };
  const dials: Array<{ to: HostPort; conn: FakeQuicConnection }> = [];
  const node = new Node({
    identity: { name: options.identity.name ?? 'self', fingerprint: options.identity.fingerprint } as Identity,
    config: options.config,
    trust,
    clock,
    // No jitter: redials at 1 s, 2 s, 4 s…
    timing: { ...DEFAULT_TIMING, backoff: { random: () => 0.5 } },
    metrics,
    log: logger,
    peers,
    routes,
    dataPlane,
    nonce: options.nonce ?? (() => 77n),
    localAddresses: () => addresses.list,
    dial: (to) => {
      const conn = new FakeQuicConnection('outbound', formatHostPort(to.host, to.port));
      dials.push({ to, conn });
      return conn.asQuic();
    },
    virtualPaths: new VirtualPaths(),
  });
  for (const net of options.config.networks.values()) node.addNetwork(net);
  for (const peer of options.config.peers) node.addPeer(peer);
  return { node, clock, lines, logger, metrics, peers, routes, dataPlane, tuns, file, trust, addresses, dials };
}
