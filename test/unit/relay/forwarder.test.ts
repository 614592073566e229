import { describe, expect, it } from 'vitest';
import { RELAY_DROP_REASONS, RelayCounters, type RelayDropReason } from '../../../src/metrics/relay-counters.js';
import type { DatagramSocket } from '../../../src/quic/datagram.js';
import { VIRTUAL_PORT } from '../../../src/quic/virtual-path.js';
import { RelayForwarder, type RelayPeer } from '../../../src/relay/forwarder.js';
import { RELAY_FROM, RELAY_TO, encodeRelayDatagram } from '../../../src/relay/relay-datagram.js';
import { VirtualPaths } from '../../../src/relay/relayed-socket.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const FP_R = 'e'.repeat(64);
const PACKET = Uint8Array.of(0xc3, 0, 0, 0, 1, 0x42, 0x99);

/** A peer's session as the forwarder sees it; records each DATAGRAM frame it is given. */
class FakePeer implements RelayPeer {
  open = true;
  natTraversal = true;
  relays = false;
  /** What sendDatagram answers: false is quiche's full datagram queue. */
  accepts = true;
  readonly sent: Uint8Array[] = [];

  constructor(
    readonly fingerprint: string,
    settings: Partial<Pick<FakePeer, 'open' | 'natTraversal' | 'relays' | 'accepts'>> = {},
  ) {
    Object.assign(this, settings);
  }

  sendDatagram(data: Uint8Array): boolean {
    if (!this.accepts) return false;
    this.sent.push(Uint8Array.from(data));
    return true;
  }
}

/** The endpoint's socket below VirtualPaths: only what comes up through onDatagram matters here. */
class SilentSocket implements DatagramSocket {
  onDatagram: (data: Uint8Array, host: string, port: number) => void = () => {};
  port = 0;
  readonly queued: string[] = [];
  private readonly space = new Uint8Array(1500);
  async bind(): Promise<void> {}
  buffer(): Uint8Array {
    return this.space;
  }
  queue(_length: number, host: string): void {
    this.queued.push(host);
  }
  flush(): void {}
  async close(): Promise<void> {}
}

interface Setup {
  forwarder: RelayForwarder;
  counters: RelayCounters;
  paths: VirtualPaths;
  socket: DatagramSocket;
  inner: SilentSocket;
  /** What reached the endpoint through the wrapped socket. */
  delivered: Array<{ data: number[]; host: string; port: number }>;
  peers: Map<string, FakePeer>;
  setEnabled(on: boolean): void;
}

function setup(peers: FakePeer[], enabled = true): Setup {
  const counters = new RelayCounters();
  const paths = new VirtualPaths();
  const inner = new SilentSocket();
  const socket = paths.wrap(inner);
  const delivered: Setup['delivered'] = [];
  socket.onDatagram = (data, host, port) => delivered.push({ data: Array.from(data), host, port });
  const byFingerprint = new Map(peers.map((p) => [p.fingerprint, p]));
  let on = enabled;
  const forwarder = new RelayForwarder({
    enabled: () => on,
    peer: (fingerprint) => byFingerprint.get(fingerprint) ?? null,
    paths,
    counters,
  });
  return { forwarder, counters, paths, socket, inner, delivered, peers: byFingerprint, setEnabled: (v) => (on = v) };
}

/** The drop counters with `only` at `count` and every other reason at 0. */
function dropsOnly(only: RelayDropReason | null, count = 1): Record<RelayDropReason, number> {
  return Object.fromEntries(RELAY_DROP_REASONS.map((r) => [r, r === only ? count : 0])) as Record<RelayDropReason, number>;
}

function totals(counters: RelayCounters): Record<string, number> {
  const { forwardedPackets, forwardedBytes, viaRelayOut, viaRelayIn } = counters;
  return { forwardedPackets, forwardedBytes, viaRelayOut, viaRelayIn };
}

describe('RelayForwarder as a relay ("to X")', () => {
  it('re-sends the packet to X as "from <source>" and counts it', () => {
    const a = new FakePeer(FP_A);
    const b = new FakePeer(FP_B);
    const { forwarder, counters, delivered } = setup([a, b]);
    forwarder.receive(a, encodeRelayDatagram(RELAY_TO, FP_B, PACKET));
    expect(b.sent).toEqual([encodeRelayDatagram(RELAY_FROM, FP_A, PACKET)]);
    expect(a.sent).toEqual([]);
    expect(totals(counters)).toEqual({ forwardedPackets: 1, forwardedBytes: PACKET.length, viaRelayOut: 0, viaRelayIn: 0 });
    expect(counters.drops).toEqual(dropsOnly(null));
    // Relayed packets are for X, not for this node's own endpoint.
    expect(delivered).toEqual([]);
  });

  it('counts the end-to-end packet bytes only, not the 33-byte tags', () => {
    const a = new FakePeer(FP_A);
    const b = new FakePeer(FP_B);
    const { forwarder, counters } = setup([a, b]);
    forwarder.receive(a, encodeRelayDatagram(RELAY_TO, FP_B, new Uint8Array(1200)));
    forwarder.receive(b, encodeRelayDatagram(RELAY_TO, FP_A, new Uint8Array(1)));
    expect(counters.forwardedPackets).toBe(2);
    expect(counters.forwardedBytes).toBe(1201);
    expect(a.sent[0]!.length).toBe(34);
  });

  it('forwards a copy: the incoming frame buffer may be reused at once', () => {
    const a = new FakePeer(FP_A);
    const sent: Uint8Array[] = [];
    const b = new FakePeer(FP_B);
    // Keep the very array the forwarder passes, not a copy.
    b.sendDatagram = (data) => sent.push(data) > 0;
    const { forwarder } = setup([a, b]);
    const frame = encodeRelayDatagram(RELAY_TO, FP_B, PACKET);
    forwarder.receive(a, frame);
    frame.fill(0);
    expect(sent).toEqual([encodeRelayDatagram(RELAY_FROM, FP_A, PACKET)]);
  });

  const refusals: Array<[string, () => { source: FakePeer; peers: FakePeer[]; data: Uint8Array; enabled?: boolean }, RelayDropReason]> = [
    ['relay = false', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B)], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET), enabled: false }), 'relay_off'],
    ['a source whose session is not open', () => ({ source: new FakePeer(FP_A, { open: false }), peers: [new FakePeer(FP_B)], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET) }), 'no_session'],
    ['a source that never offered NAT traversal', () => ({ source: new FakePeer(FP_A, { natTraversal: false }), peers: [new FakePeer(FP_B)], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET) }), 'not_capable'],
    ['a target that is no peer', () => ({ source: new FakePeer(FP_A), peers: [], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET) }), 'no_session'],
    ['a target whose session is not open', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B, { open: false })], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET) }), 'no_session'],
    ['a target that is the source', () => ({ source: new FakePeer(FP_A), peers: [], data: encodeRelayDatagram(RELAY_TO, FP_A, PACKET) }), 'malformed'],
    ['a target that never offered NAT traversal', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B, { natTraversal: false })], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET) }), 'not_capable'],
    ['a full target datagram queue', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B, { accepts: false })], data: encodeRelayDatagram(RELAY_TO, FP_B, PACKET) }), 'queue_full'],
    ['a datagram shorter than the tag', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B)], data: Uint8Array.of(RELAY_TO, 0xbb) }), 'malformed'],
    ['a tag with no packet', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B)], data: encodeRelayDatagram(RELAY_TO, FP_B, new Uint8Array(0)) }), 'malformed'],
    ['an unknown kind', () => ({ source: new FakePeer(FP_A), peers: [new FakePeer(FP_B)], data: Uint8Array.from([0x03, ...encodeRelayDatagram(RELAY_TO, FP_B, PACKET).subarray(1)]) }), 'malformed'],
  ];
  for (const [label, make, reason] of refusals) {
    it(`refuses ${label}: counts ${reason} alone and sends nothing`, () => {
      const { source, peers, data, enabled } = make();
      // The source is a peer too, so "target is the source" finds it.
      const { forwarder, counters, delivered } = setup([source, ...peers], enabled ?? true);
      forwarder.receive(source, data);
      expect(counters.drops).toEqual(dropsOnly(reason));
      expect(totals(counters)).toEqual({ forwardedPackets: 0, forwardedBytes: 0, viaRelayOut: 0, viaRelayIn: 0 });
      for (const peer of [source, ...peers]) expect(peer.sent).toEqual([]);
      expect(delivered).toEqual([]);
    });
  }

  it('reads relay = true at each packet, so a reload takes effect at once', () => {
    const a = new FakePeer(FP_A);
    const b = new FakePeer(FP_B);
    const { forwarder, counters, setEnabled } = setup([a, b]);
    const data = encodeRelayDatagram(RELAY_TO, FP_B, PACKET);
    forwarder.receive(a, data);
    setEnabled(false);
    forwarder.receive(a, data);
    setEnabled(true);
    forwarder.receive(a, data);
    expect(b.sent).toHaveLength(2);
    expect(counters.forwardedPackets).toBe(2);
    expect(counters.drops).toEqual(dropsOnly('relay_off'));
  });
});

describe('RelayForwarder as an end node ("from X")', () => {
  it('delivers a packet from a relay into the endpoint as coming from the path to X via that relay', () => {
    const relay = new FakePeer(FP_R, { relays: true });
    const { forwarder, counters, paths, delivered, inner } = setup([relay]);
    forwarder.receive(relay, encodeRelayDatagram(RELAY_FROM, FP_B, PACKET));
    const path = paths.path(FP_R, FP_B)!;
    expect(delivered).toEqual([{ data: Array.from(PACKET), host: path.host, port: VIRTUAL_PORT }]);
    expect(counters.viaRelayIn).toBe(1);
    expect(counters.drops).toEqual(dropsOnly(null));
    expect(relay.sent).toEqual([]);
    expect(inner.queued).toEqual([]);
  });

  it('takes relayed packets for its own connections with relay = false (that only stops it relaying for others)', () => {
    const relay = new FakePeer(FP_R, { relays: true });
    const { forwarder, counters, delivered } = setup([relay], false);
    forwarder.receive(relay, encodeRelayDatagram(RELAY_FROM, FP_B, PACKET));
    expect(delivered).toHaveLength(1);
    expect(counters.viaRelayIn).toBe(1);
  });

  it('counts a "from" datagram from a peer that does not relay as unexpected and delivers nothing', () => {
    const peer = new FakePeer(FP_A, { relays: false });
    const { forwarder, counters, delivered } = setup([peer]);
    forwarder.receive(peer, encodeRelayDatagram(RELAY_FROM, FP_B, PACKET));
    expect(delivered).toEqual([]);
    expect(counters.drops).toEqual(dropsOnly('unexpected'));
    expect(counters.viaRelayIn).toBe(0);
  });

  it('counts a "from" datagram from a relay whose session is not open as unexpected', () => {
    const relay = new FakePeer(FP_R, { relays: true, open: false });
    const { forwarder, counters, delivered } = setup([relay]);
    forwarder.receive(relay, encodeRelayDatagram(RELAY_FROM, FP_B, PACKET));
    expect(delivered).toEqual([]);
    expect(counters.drops).toEqual(dropsOnly('unexpected'));
  });

  it('counts a "from" datagram the path table cannot take as unexpected', () => {
    const relay = new FakePeer(FP_R, { relays: true });
    const { forwarder, counters, paths, delivered } = setup([relay]);
    for (let i = 0; i < 4096; i++) paths.path(FP_A, i.toString(16).padStart(64, '0'));
    forwarder.receive(relay, encodeRelayDatagram(RELAY_FROM, FP_B, PACKET));
    expect(delivered).toEqual([]);
    expect(counters.drops).toEqual(dropsOnly('unexpected'));
    expect(counters.viaRelayIn).toBe(0);
  });

  it('counts a malformed datagram from a relay as malformed, not unexpected', () => {
    const relay = new FakePeer(FP_R, { relays: true });
    const { forwarder, counters } = setup([relay]);
    forwarder.receive(relay, Uint8Array.from([RELAY_FROM, ...new Uint8Array(32)]));
    expect(counters.drops).toEqual(dropsOnly('malformed'));
  });
});

describe('RelayForwarder sending on a virtual path', () => {
  it('installs the sender: a datagram the endpoint queues to a virtual host goes to its relay as "to <remote>"', () => {
    const relay = new FakePeer(FP_R, { relays: true });
    const { counters, paths, socket, inner } = setup([relay]);
    const path = paths.path(FP_R, FP_B)!;
    const space = socket.buffer();
    space.set(PACKET);
    socket.queue(PACKET.length, path.host, VIRTUAL_PORT);
    expect(relay.sent).toEqual([encodeRelayDatagram(RELAY_TO, FP_B, PACKET)]);
    expect(inner.queued).toEqual([]);
    expect(counters.viaRelayOut).toBe(1);
    expect(counters.drops).toEqual(dropsOnly(null));
  });

  it('answers true from the sender when the relay took the packet', () => {
    const relay = new FakePeer(FP_R, { relays: true });
    const { paths } = setup([relay]);
    expect(paths.sender(paths.path(FP_R, FP_B)!, PACKET)).toBe(true);
  });

  const refusals: Array<[string, FakePeer[]]> = [
    ['the relay is no longer a peer', []],
    ['the relay session is not open', [new FakePeer(FP_R, { relays: true, open: false })]],
    ['the relay does not relay', [new FakePeer(FP_R, { relays: false })]],
    ['the relay datagram queue is full', [new FakePeer(FP_R, { relays: true, accepts: false })]],
  ];
  for (const [label, peers] of refusals) {
    it(`refuses when ${label}, sending and counting nothing`, () => {
      const { counters, paths } = setup(peers);
      expect(paths.sender(paths.path(FP_R, FP_B)!, PACKET)).toBe(false);
      for (const peer of peers) expect(peer.sent).toEqual([]);
      expect(counters.viaRelayOut).toBe(0);
    });
  }

  it('carries a packet end to end: A via relay R to B, which sees it from its path to A via R', () => {
    const nodeA = setup([]);
    const nodeR = setup([]);
    const nodeB = setup([]);
    // Each node's view of its peers: A and B see R (a relay), R sees A and B.
    const rOnA = new FakePeer(FP_R, { relays: true });
    const aOnR = new FakePeer(FP_A);
    const bOnR = new FakePeer(FP_B);
    const rOnB = new FakePeer(FP_R, { relays: true });
    rOnA.sendDatagram = (data) => (nodeR.forwarder.receive(aOnR, data), true);
    bOnR.sendDatagram = (data) => (nodeB.forwarder.receive(rOnB, data), true);
    nodeA.peers.set(FP_R, rOnA);
    nodeR.peers.set(FP_A, aOnR).set(FP_B, bOnR);
    nodeB.peers.set(FP_R, rOnB);

    const path = nodeA.paths.path(FP_R, FP_B)!;
    nodeA.socket.buffer().set(PACKET);
    nodeA.socket.queue(PACKET.length, path.host, VIRTUAL_PORT);

    expect(nodeB.delivered).toEqual([{ data: Array.from(PACKET), host: nodeB.paths.path(FP_R, FP_A)!.host, port: VIRTUAL_PORT }]);
    expect([nodeA.counters.viaRelayOut, nodeR.counters.forwardedPackets, nodeB.counters.viaRelayIn]).toEqual([1, 1, 1]);
  });
});
