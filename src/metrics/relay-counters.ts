// What this node relayed between two of its peers (PROTOCOL.md#v-relay), as plain numbers the
// relay's hot path bumps, exported at scrape time, and what it refused or dropped, by reason.

import { Counter, type Registry } from 'prom-client';

export const RELAY_DROP_REASONS = [
  /** This node has `relay = false`. */
  'relay_off',
  /** The sender or the target has no open session with this node (or, for our own packets, the relay). */
  'no_session',
  /** The target never said it takes relayed packets (an older node, or an original one). */
  'not_capable',
  /** The target's datagram queue is full (it, or the path to it, is slower than the sender). */
  'queue_full',
  /** Not a relay datagram: too short, an unknown kind, or addressed to its own sender. */
  'malformed',
  /** Relayed packets from a peer that is not a relay, or for a path this node did not open. */
  'unexpected',
] as const;
export type RelayDropReason = (typeof RELAY_DROP_REASONS)[number];

export class RelayCounters {
  forwardedPackets = 0;
  forwardedBytes = 0;
  /** Packets of our own end-to-end connections sent through a relay, and received from one. */
  viaRelayOut = 0;
  viaRelayIn = 0;
  readonly drops: Record<RelayDropReason, number> = Object.fromEntries(RELAY_DROP_REASONS.map((r) => [r, 0])) as Record<RelayDropReason, number>;

  register(registers: Registry[]): void {
    const drops = this.drops;
    const via = (): [number, number] => [this.viaRelayOut, this.viaRelayIn];
    const read = (name: string, help: string, value: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    };
    read('vibepn_relay_forwarded_packets_total', 'Packets this node relayed between two of its peers (relay = true).', () => this.forwardedPackets);
    read('vibepn_relay_forwarded_bytes_total', 'Bytes of end-to-end QUIC packets this node relayed between two of its peers.', () => this.forwardedBytes);
    new Counter<'direction'>({
      name: 'vibepn_relay_path_packets_total',
      help: "Packets of this node's own connections that went through a relay; out = sent, in = received.",
      labelNames: ['direction'],
      registers,
      collect() {
        this.reset();
        const [out, into] = via();
        this.inc({ direction: 'out' }, out);
        this.inc({ direction: 'in' }, into);
      },
    });
    new Counter<'reason'>({
      name: 'vibepn_relay_dropped_total',
      help: 'Relayed packets refused or dropped, by reason: by this node as a relay, or on their way to one.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const reason of RELAY_DROP_REASONS) this.inc({ reason }, drops[reason]);
      },
    });
  }
}
