// Prometheus metrics of one daemon, named by subsystem as Nebula does (vibepn_<subsystem>_<name>).
// Each Metrics owns its own Registry, never prom-client's global one, so several daemons can run
// in one process (tests) without sharing or clashing.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DROP_REASONS, ForwardTotals, newForwardCounters, type ForwardCounters } from './forward-counters.js';
import { MembershipCounters } from './membership-counters.js';
import { RelayCounters } from './relay-counters.js';

export const HANDSHAKE_REJECT_REASONS = [
  'unknown_fingerprint',
  'tofu_mismatch',
  'pin_mismatch',
  'cert_expired',
  'cert_invalid',
  'duplicate',
] as const;
export type HandshakeRejectReason = (typeof HANDSHAKE_REJECT_REASONS)[number];

export const CONNECTION_FAILURE_REASONS = ['dns', 'timeout', 'handshake', 'rejected', 'closed', 'error'] as const;
export type ConnectionFailureReason = (typeof CONNECTION_FAILURE_REASONS)[number];

export const CONTROL_MESSAGE_TYPES = ['hello', 'announce', 'withdraw', 'keepalive', 'goodbye', 'capabilities', 'introduce', 'endpoint', 'redeem', 'digest', 'fetch', 'record', 'unknown'] as const;
export type ControlMessageType = (typeof CONTROL_MESSAGE_TYPES)[number];

export const DIRECTIONS = ['in', 'out'] as const;
export type Direction = (typeof DIRECTIONS)[number];

// One-to-one with netgraph/policy.ts PolicyRefusal, in Prometheus spelling (underscores).
export const ROUTE_REJECT_REASONS = ['unknown_network', 'peer_not_in_network', 'bad_prefix', 'outside_policy', 'conflict'] as const;
export type RouteRejectReason = (typeof ROUTE_REJECT_REASONS)[number];

/**
 * Label value for things that belong to no local network. A network name a peer made up must
 * never become a label value: a hostile peer could otherwise create unbounded series.
 */
export const NO_NETWORK = '';

export interface MetricsOptions {
  /** process_* and nodejs_* metrics; default true. */
  processMetrics?: boolean;
}

/** State read at scrape time, so its owners never copy it into the metrics by hand. */
export interface ObservedState {
  peers(): { connected: number; configured: number };
  /** Learned routes per local network. */
  routeCounts(): ReadonlyMap<string, number>;
  /** Bytes each way on each connected peer's active connection, by peer name. */
  peerTraffic?(): Iterable<{ peer: string; rx: number; tx: number }>;
}

/** Unknown peers get a series of their own up to this many; beyond, they add up under one name. */
export const MAX_PEER_SERIES = 256;
export const OTHER_PEERS = '(other)';

export class Metrics {
  readonly registry = new Registry();
  /**
   * Counters for frames the forwarder cannot attribute to a local network (e.g. a raw-stream
   * frame naming an unknown network). Only its drops are exported, with network="".
   */
  readonly unattributedForward: ForwardCounters = newForwardCounters();
  /** What this node relayed and refused (PROTOCOL.md#v-relay). */
  readonly relay = new RelayCounters();
  /** Signed rosters and invite redemptions (issue 12). */
  readonly membership = new MembershipCounters();

  private readonly forwardTotals = new ForwardTotals();
  private observed: ObservedState | null = null;

  private readonly connectionAttempts: Counter;
  private readonly connectionFailures: Counter<'reason'>;
  private readonly handshakesRejected: Counter<'reason'>;
  private readonly protocolViolations: Counter;
  private readonly controlMessages: Counter<'type' | 'direction'>;
  private readonly routesRejected: Counter<'network' | 'reason'>;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    const observed = (): ObservedState | null => this.observed;
    const counter = <L extends string = never>(name: string, help: string, labelNames: L[] = []): Counter<L> =>
      new Counter<L>({ name, help, labelNames, registers });
    new Gauge({
      name: 'vibepn_peer_connected',
      help: 'Peers with a live, trusted QUIC connection.',
      registers,
      collect() {
        this.set(observed()?.peers().connected ?? 0);
      },
    });
    new Gauge({
      name: 'vibepn_peer_configured',
      help: 'Peers listed in the config file.',
      registers,
      collect() {
        this.set(observed()?.peers().configured ?? 0);
      },
    });
    this.connectionAttempts = counter('vibepn_peer_connection_attempts_total', 'Outbound connection attempts to peers.');
    this.connectionFailures = counter('vibepn_peer_connection_failures_total', 'Outbound connection attempts that failed, by reason.', ['reason']);
    this.handshakesRejected = counter('vibepn_peer_handshakes_rejected_total', 'Peer certificates refused by the trust check, by reason.', ['reason']);
    this.protocolViolations = counter('vibepn_peer_protocol_violations_total', 'Peer connections closed because of a malformed control stream.');
    this.controlMessages = counter('vibepn_control_messages_total', 'Control-stream messages, by type and direction.', ['type', 'direction']);
    new Gauge<'network'>({
      name: 'vibepn_routes',
      help: 'Routes learned from peers, per network.',
      labelNames: ['network'],
      registers,
      collect() {
        this.reset();
        for (const [network, count] of observed()?.routeCounts() ?? []) this.set({ network }, count);
      },
    });
    new Counter<'peer' | 'direction'>({
      name: 'vibepn_peer_bytes_total',
      help: "Bytes received from (in) and sent to (out) each connected peer on its active connection, QUIC overhead included; starts from 0 when the connection is replaced (a counter reset). Beyond 256 peers the rest add up under peer=\"(other)\".",
      labelNames: ['peer', 'direction'],
      registers,
      collect() {
        this.reset();
        let series = 0;
        for (const { peer, rx, tx } of observed()?.peerTraffic?.() ?? []) {
          const name = series++ < MAX_PEER_SERIES ? peer : OTHER_PEERS;
          this.inc({ peer: name, direction: 'in' }, rx);
          this.inc({ peer: name, direction: 'out' }, tx);
        }
      },
    });
    this.routesRejected = counter('vibepn_routes_rejected_total', 'Announced routes refused by the route policy, by network and reason.', ['network', 'reason']);

    // Series with a value of 0 from the start, so dashboards and rate() see them before the
    // first event rather than a missing series.
    for (const reason of CONNECTION_FAILURE_REASONS) this.connectionFailures.inc({ reason }, 0);
    for (const reason of HANDSHAKE_REJECT_REASONS) this.handshakesRejected.inc({ reason }, 0);
    for (const type of CONTROL_MESSAGE_TYPES) {
      for (const direction of DIRECTIONS) this.controlMessages.inc({ type, direction }, 0);
    }
    this.routesRejected.inc({ network: NO_NETWORK, reason: 'unknown_network' }, 0);

    this.registerForwardMetrics(registers);
    this.relay.register(registers);
    this.membership.register(registers);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Where the peer and route gauges read their values at scrape time. */
  observe(state: ObservedState): void {
    this.observed = state;
  }

  connectionAttempt(): void {
    this.connectionAttempts.inc();
  }

  connectionFailure(reason: ConnectionFailureReason): void {
    this.connectionFailures.inc({ reason });
  }

  handshakeRejected(reason: HandshakeRejectReason): void {
    this.handshakesRejected.inc({ reason });
  }

  protocolViolation(): void {
    this.protocolViolations.inc();
  }

  controlMessage(type: ControlMessageType, direction: Direction): void {
    this.controlMessages.inc({ type, direction });
  }

  /** Makes a local network's rejection series visible (at 0) before its first rejection. */
  declareNetwork(network: string): void {
    for (const reason of ROUTE_REJECT_REASONS) {
      if (reason !== 'unknown_network') this.routesRejected.inc({ network, reason }, 0);
    }
  }

  /** For `unknown_network` the name came from the peer, so it is recorded as network="". */
  routeRejected(network: string, reason: RouteRejectReason): void {
    this.routesRejected.inc({ network: reason === 'unknown_network' ? NO_NETWORK : network, reason });
  }

  /**
   * The forwarder of `network` keeps incrementing `counters`; they are read at scrape time.
   * Totals stay monotonic across unregister/register of the same network.
   */
  registerForwardSource(network: string, counters: ForwardCounters): void {
    this.forwardTotals.register(network, counters);
  }

  unregisterForwardSource(network: string): void {
    this.forwardTotals.unregister(network);
  }

  private registerForwardMetrics(registers: Registry[]): void {
    const unattributed = new ForwardTotals();
    unattributed.register(NO_NETWORK, this.unattributedForward);
    const forwardTotals = this.forwardTotals;

    const inOut = (name: string, help: string, read: (t: ForwardCounters) => [number, number]): void => {
      new Counter<'network' | 'direction'>({
        name,
        help,
        labelNames: ['network', 'direction'],
        registers,
        collect() {
          this.reset();
          for (const [network, totals] of forwardTotals.read()) {
            const [valueIn, valueOut] = read(totals);
            this.inc({ network, direction: 'in' }, valueIn);
            this.inc({ network, direction: 'out' }, valueOut);
          }
        },
      });
    };
    inOut('vibepn_forward_packets_total', 'IP packets forwarded, per network; in = from peers to TUN, out = from TUN to peers.', (t) => [
      t.packetsIn,
      t.packetsOut,
    ]);
    inOut('vibepn_forward_bytes_total', 'IP packet bytes forwarded, per network; in = from peers to TUN, out = from TUN to peers.', (t) => [
      t.bytesIn,
      t.bytesOut,
    ]);
    inOut(
      'vibepn_forward_super_segments_total',
      'TCP super-segments carried whole in one frame, per network (each also counts in vibepn_forward_packets_total as the packets it stands for); in = from peers, out = to peers.',
      (t) => [t.superSegmentsIn, t.superSegmentsOut],
    );
    new Counter<'network' | 'reason'>({
      name: 'vibepn_forward_drops_total',
      help: 'IP packets dropped by the forwarder, per network and reason.',
      labelNames: ['network', 'reason'],
      registers,
      collect() {
        this.reset();
        const sources = [...unattributed.read(), ...forwardTotals.read()];
        for (const [network, totals] of sources) {
          for (const reason of DROP_REASONS) this.inc({ network, reason }, totals.drops[reason]);
        }
      },
    });
  }
}
