// Per-network packet counters for the forwarding hot path, and the bookkeeping that turns them
// into monotonic Prometheus totals. The forwarder only does `counters.packetsIn++`; prom-client
// reads the numbers at scrape time, so no metrics library code runs per packet.

export const DROP_REASONS = ['no_route', 'peer_down', 'unknown_network', 'malformed', 'queue_full', 'spoofed'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * Plain numbers owned and incremented by the forwarding code of one network.
 * `In` = received from peers (QUIC → TUN), `Out` = sent to peers (TUN → QUIC).
 */
export interface ForwardCounters {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** TCP super-segments carried whole in one frame (each also counts as the packets it stands for). */
  superSegmentsIn: number;
  superSegmentsOut: number;
  drops: Record<DropReason, number>;
}

export function newForwardCounters(): ForwardCounters {
  return {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    superSegmentsIn: 0,
    superSegmentsOut: 0,
    drops: { no_route: 0, peer_down: 0, unknown_network: 0, malformed: 0, queue_full: 0, spoofed: 0 },
  };
}

function copyCounters(from: ForwardCounters): ForwardCounters {
  return { ...from, drops: { ...from.drops } };
}

/** How much a raw counter grew since it was last read; a value that went down restarted from zero. */
function growth(now: number, before: number): number {
  return now >= before ? now - before : now;
}

interface NetworkTotals {
  /** Everything ever counted for this network, across every source it has had. */
  totals: ForwardCounters;
  source: ForwardCounters | undefined;
  /** The most recent source, kept after unregister so re-registering it does not count twice. */
  lastSource: ForwardCounters | undefined;
  /** The source's values when last folded into `totals`. */
  seen: ForwardCounters;
}

/**
 * Totals per network that only ever go up: each read folds what every live source gained since
 * the previous read into an accumulated total. Removing a network and adding it back (reload), a
 * new counters object, or a source that resets itself therefore never makes a total go down.
 */
export class ForwardTotals {
  private readonly networks = new Map<string, NetworkTotals>();

  register(network: string, counters: ForwardCounters): void {
    const entry = this.networks.get(network);
    if (!entry) {
      this.networks.set(network, {
        totals: newForwardCounters(),
        source: counters,
        lastSource: counters,
        seen: newForwardCounters(),
      });
      return;
    }
    this.fold(entry);
    if (counters !== entry.lastSource) entry.seen = newForwardCounters();
    entry.source = counters;
    entry.lastSource = counters;
  }

  unregister(network: string): void {
    const entry = this.networks.get(network);
    if (!entry) return;
    this.fold(entry);
    entry.source = undefined;
  }

  /** Current totals per network (including networks whose source is gone). */
  read(): Map<string, ForwardCounters> {
    const result = new Map<string, ForwardCounters>();
    for (const [network, entry] of this.networks) {
      this.fold(entry);
      result.set(network, entry.totals);
    }
    return result;
  }

  private fold(entry: NetworkTotals): void {
    const { source, totals, seen } = entry;
    if (!source) return;
    totals.packetsIn += growth(source.packetsIn, seen.packetsIn);
    totals.packetsOut += growth(source.packetsOut, seen.packetsOut);
    totals.bytesIn += growth(source.bytesIn, seen.bytesIn);
    totals.bytesOut += growth(source.bytesOut, seen.bytesOut);
    totals.superSegmentsIn += growth(source.superSegmentsIn, seen.superSegmentsIn);
    totals.superSegmentsOut += growth(source.superSegmentsOut, seen.superSegmentsOut);
    for (const reason of DROP_REASONS) {
      totals.drops[reason] += growth(source.drops[reason], seen.drops[reason]);
    }
    entry.seen = copyCounters(source);
  }
}
