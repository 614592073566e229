// Finds a path to one peer that has no address of its own (PROTOCOL.md#v-introductions), the way
// Tailscale's disco and Nebula's lighthouses do, through the peers both ends already reach:
//   1. ask every connected peer that takes introductions (N); one that has a session with the
//      target answers with the target's public address as it sees it (E), and tells the target
//      ours, so both dial at once from their one UDP socket and each NAT lets the other's in;
//   2. if no direct session comes up within RELAY_AFTER_MS, dial through a common peer with
//      relay = true: the end-to-end connection runs inside our sessions with the relay;
//   3. while relayed, ask again every RETRY_DIRECT_MS: a direct connection wins the tie-break
//      against the relayed one (peer.ts) and traffic moves to it;
//   4. a direct path that goes silent (PATH_SILENT_MS, pinged meanwhile) brings the relayed path
//      up at once; its Hello finds the direct one dead by probe and takes over (connections.ts).
// The finder only decides when and where to dial; Handshakes dials, Connections owns the result.

import type { Clock } from '../clock/clock.js';
import type { ObservedEndpoint } from '../control/nat-messages.js';
import type { Logger } from '../log/logger.js';
import { formatHostPort, type HostPort } from '../netgraph/hostport.js';
import type { DialPath } from './handshake.js';
import type { Link, Peer } from './peer.js';
import { APP_DEAD_PEER } from '../quic/errors.js';

/** No direct session this long after the search began: go through a relay. */
export const RELAY_AFTER_MS = 5000;
/** While relayed (or without any path), introductions are asked for again this often. */
export const RETRY_DIRECT_MS = 10_000;
/** A direct path with nothing received this long is pinged every tick... */
const PATH_QUIET_MS = 1000;
/** ...and after this long counts as broken: the relayed path is brought up. */
export const PATH_SILENT_MS = 3000;
/** A dial to one address is not repeated while it may still be running. */
const DIAL_HOLD_MS = 6000;

export interface PathFinderDeps {
  clock: Clock;
  logger: Logger;
  /** Connected peers that take introductions (their C offered nat), the target excluded. */
  introducers(): Peer[];
  /** Sends N(target) on the introducer's session. */
  ask(introducer: Peer): void;
  dial(path: DialPath): void;
  /** The virtual address of the target through `relay` (src/relay/relayed-socket.ts). */
  relayAddress(relay: Peer): HostPort | null;
  /** The relay a relayed link goes through. */
  relayOf(link: Link): Peer | undefined;
}

interface Answer {
  from: Peer;
  /** Where the introducer sees the target; null: it has no session with it. */
  address: ObservedEndpoint | null;
}

export class PathFinder {
  private readonly answers = new Map<Peer, Answer>();
  private readonly asked = new Set<Peer>();
  private readonly dialing = new Map<string, number>();
  private relayDialUntil = 0;
  private searchingSince: number | null = null;
  private lastRound = -Infinity;
  private lastDirectError: string | null = null;
  private lastRelayError: string | null = null;
  private watched: { conn: Peer['active']; received: number; changedAt: number; fellBack: boolean } | null = null;

  constructor(
    private readonly target: Peer,
    private readonly deps: PathFinderDeps,
  ) {}

  /**
   * Whether this peer needs finding: always without an address of its own; with one, while its
   * dials fail (it moved, or sits behind a NAT now) and while it is reached only through a relay.
   */
  get engaged(): boolean {
    const config = this.target.config;
    if (!config?.address) return true;
    if (this.target.active?.relayed) return true;
    const manager = this.target.manager;
    return !this.target.connected && manager !== null && manager.lastError !== null;
  }

  /** Once a tick (1 s). */
  tick(): void {
    if (!this.target.fingerprint || !this.engaged) {
      this.searchingSince = null;
      this.watched = null;
      return;
    }
    const now = this.deps.clock.now();
    const active = this.target.active;
    if (active && !active.relayed) {
      this.searchingSince = null;
      // The configured address is the peer's own business; a found path is watched, where a
      // relay could take over (a hub that peers dial in to has none, and pings nobody).
      if (!this.target.config?.address && this.relays().length > 0) this.watch(active, now);
      return;
    }
    const relay = active?.relayed ? this.deps.relayOf(active) : undefined;
    if (active?.relayed && !(relay?.connected && relay.session?.peerCapabilities.relay)) {
      // Its packets have nowhere to go (the relay is gone, or no longer relays): end it now
      // rather than after the liveness timeout.
      this.deps.logger.info(`${this.target.label}: the relay of its session is gone or no longer relays; looking for another path`);
      active.conn.close(APP_DEAD_PEER, 'relay gone');
      return;
    }
    this.watched = null;
    this.searchingSince ??= now;
    if (now - this.lastRound >= RETRY_DIRECT_MS) this.round(now);
    else for (const introducer of this.deps.introducers()) if (!this.asked.has(introducer)) this.askOne(introducer);
    if (!active && now - this.searchingSince >= RELAY_AFTER_MS) this.tryRelay(now);
  }

  /** An introducer told us where the target is (or that it has no session with it). */
  endpoint(from: Peer, address: ObservedEndpoint | null): void {
    this.answers.set(from, { from, address });
    const active = this.target.active;
    if (address === null || (active && !active.relayed)) return;
    this.dialDirect(address, from);
  }

  /** Why there is no path, for `vpnctl peers`; null while connected or not looking. */
  get reason(): string | null {
    if (this.target.connected || !this.engaged) return null;
    const own = this.target.manager?.lastError ?? null;
    const found = this.foundReason();
    if (own === null || found === null) return own ?? found;
    return `${own}; ${found}`;
  }

  /** Null for a peer with an address when no other path was ever in sight: its own error says it all. */
  private foundReason(): string | null {
    const introducers = this.deps.introducers();
    const hasAddress = Boolean(this.target.config?.address);
    const start = hasAddress ? 'no other path' : 'no address';
    if (introducers.length === 0 && this.answers.size === 0) {
      if (hasAddress) return null;
      return `${start}, and no connected peer that can introduce it (a common peer running vibepn with NAT traversal)`;
    }
    const knowing = [...this.answers.values()].filter((a) => a.address !== null);
    if (knowing.length === 0) {
      const names = [...new Set([...introducers, ...this.answers.keys()].map((p) => p.name))].sort().join(', ');
      return `${start}, and none of the peers asked (${names}) has a session with it; no relay either`;
    }
    const direct = `direct attempts through ${knowing.map((a) => a.from.name).join(', ')} failed${this.lastDirectError ? ` (${this.lastDirectError})` : ''}`;
    const relays = this.relays();
    if (relays.length === 0) return `${direct}; no common peer has relay = true to relay for it`;
    if (this.lastRelayError) return `${direct}; relaying via ${relays[0]!.name} failed: ${this.lastRelayError}`;
    return `${direct}; trying via relay ${relays[0]!.name}`;
  }

  /** Common peers with relay = true that told us they have a session with the target. */
  private relays(): Peer[] {
    const out: Peer[] = [];
    for (const { from, address } of this.answers.values()) {
      if (address !== null && from.session?.state === 'open' && from.session.peerCapabilities.relay) out.push(from);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private round(now: number): void {
    this.lastRound = now;
    this.asked.clear();
    for (const introducer of this.deps.introducers()) this.askOne(introducer);
  }

  private askOne(introducer: Peer): void {
    this.asked.add(introducer);
    this.deps.ask(introducer);
  }

  private dialDirect(address: ObservedEndpoint, from: Peer): void {
    const now = this.deps.clock.now();
    const key = formatHostPort(address.host, address.port);
    if ((this.dialing.get(key) ?? 0) > now) return;
    this.dialing.set(key, now + DIAL_HOLD_MS);
    this.deps.logger.debug(`${this.target.label}: dialing ${key}, introduced by ${from.name}`);
    this.deps.dial({
      address,
      shown: `${key} (introduced by ${from.name})`,
      failed: (reason) => {
        this.dialing.delete(key);
        this.lastDirectError = reason;
      },
    });
  }

  private tryRelay(now: number): void {
    if (this.relayDialUntil > now || [...this.target.links].some((l) => l.relayed && l.session?.state !== 'closed')) return;
    const relay = this.relays()[0];
    if (!relay) return;
    const address = this.deps.relayAddress(relay);
    if (address === null) return;
    this.relayDialUntil = now + DIAL_HOLD_MS;
    this.deps.logger.info(`${this.target.label}: no direct path; connecting via relay ${relay.name}`);
    this.deps.dial({
      address,
      shown: `via ${relay.name}`,
      failed: (reason) => {
        this.relayDialUntil = 0;
        this.lastRelayError = reason;
      },
    });
  }

  /** A direct path stays only while something comes back on it. */
  private watch(active: NonNullable<Peer['active']>, now: number): void {
    const received = active.conn.packetsReceived();
    const watched = this.watched;
    if (!watched || watched.conn !== active || watched.received !== received) {
      this.watched = { conn: active, received, changedAt: now, fellBack: false };
      return;
    }
    const silent = now - watched.changedAt;
    if (silent >= PATH_QUIET_MS) active.conn.ping();
    if (silent >= PATH_SILENT_MS && !watched.fellBack) {
      watched.fellBack = true;
      this.deps.logger.info(`${this.target.label}: nothing received on the direct path for ${silent / 1000}s; bringing up the relayed path`);
      this.lastDirectError = 'direct path went silent';
      this.round(now);
      this.tryRelay(now);
    }
  }
}
