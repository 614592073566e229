// One peer, configured or admitted, and everything this node knows about it: its connections,
// the one whose session is active, a connection about to take over, when it was last heard from,
// its redial schedule and its data sender (wireguard-go's device/peer.go, Nebula's HostInfo).
// Route tables store the Peer itself, so a lookup yields its sender in one step.

import type { PeerConfig } from '../config/types.js';
import { deriveAutoAddress, deriveOriginalAutoAddress } from '../config/address.js';
import type { ForwardTarget } from '../forward/dataplane.js';
import type { PeerSender } from '../forward/send.js';
import { shortFingerprint } from '../log/logger.js';
import type { Prefix } from '../netgraph/addr.js';
import type { RoutePeer } from '../netgraph/routes.js';
import type { QuicConnection } from '../quic/connection.js';
import type { QuicStream } from '../quic/stream.js';
import type { PeerManager } from './manager.js';
import type { PathFinder } from './path-finder.js';
import type { Session } from './session.js';
import { survives } from './tiebreak.js';

/** A QUIC connection with this peer that passed admission, and its control session once opened. */
export interface Link {
  readonly conn: QuicConnection;
  readonly peer: Peer;
  session: Session | null;
  control: QuicStream | null;
  /** Carried through a relay (a virtual address, src/quic/virtual-path.ts) rather than UDP. */
  readonly relayed: boolean;
}

export class Peer implements RoutePeer, ForwardTarget {
  /** Admitted connections with this peer, duplicates included until the tie-break closes them. */
  readonly links = new Set<Link>();
  /** The link whose session carries this peer's routes and traffic. */
  active: Link | null = null;
  /** The active session ended while this link still awaited its Hello: it takes over on Hello. */
  handover: Link | null = null;
  /** When the peer last sent anything, kept after it disconnects for `vpnctl peers`. */
  lastSeen: number | null = null;
  /** Redials a configured peer that has an address; null for inbound-only and unknown peers. */
  manager: PeerManager | null = null;
  /** Finds a path to a peer without an address of its own (path-finder.ts); null otherwise. */
  pathFinder: PathFinder | null = null;
  /** Sends to the peer over the active link; null while it has none. */
  sender: PeerSender | null = null;
  private readonly autoAddresses = new Map<string, Uint8Array>();

  constructor(
    /** The [[peers]] entry; null for a peer let in by accept_unknown_peers. */
    public config: PeerConfig | null,
    readonly name: string,
    /** Pinned, learned, or (unknown peers) presented; null until an unpinned peer is learned. */
    public fingerprint: string | null,
  ) {}

  get id(): string {
    return this.fingerprint ?? '';
  }

  get label(): string {
    return this.fingerprint ? `${this.name} (${shortFingerprint(this.fingerprint)})` : this.name;
  }

  get session(): Session | null {
    return this.active?.session ?? null;
  }

  get connected(): boolean {
    return this.active !== null;
  }

  get lastError(): string | null {
    return this.pathFinder?.reason ?? this.manager?.lastError ?? null;
  }

  /** An original VibePN node (config `original = true`): see connections.ts for what changes. */
  get original(): boolean {
    return this.config?.original === true;
  }

  /** Its address in a network by the original's own `auto` formula, for its network-wide announcement. */
  originalAddressIn(network: string, prefix: Prefix): Uint8Array | null {
    return this.original && this.fingerprint ? deriveOriginalAutoAddress(network, prefix, this.fingerprint) : null;
  }

  inNetwork(network: string): boolean {
    return this.config === null || this.config.networks.includes(network);
  }

  signedAddressIn(network: string): Uint8Array | undefined {
    return this.config?.signedAddresses?.get(network);
  }

  allowedRoutes(): readonly Prefix[] {
    return this.config?.allowedRoutes ?? [];
  }

  autoAddressIn(network: string, prefix: Prefix): Uint8Array {
    // The fingerprint is part of the key: a reload can forget a learned key and a first use learn another.
    const key = `${this.id}\n${network}\n${prefix.length}\n${prefix.bytes.join('.')}`;
    let address = this.autoAddresses.get(key);
    if (!address) this.autoAddresses.set(key, (address = deriveAutoAddress(network, prefix, this.id)));
    return address;
  }

  /**
   * A link finished its Hello exchange. With another active link, PROTOCOL.md's tie-break decides
   * which one survives, a direct one always before a relayed one; the caller closes the loser.
   */
  offer(link: Link): { winner: Link; loser: Link | null } {
    const current = this.active;
    if (!current || current === link) {
      this.active = link;
      return { winner: link, loser: null };
    }
    // A direct path beats a relayed one (PROTOCOL.md#v-relay); both ends know which is which.
    if (link.relayed !== current.relayed ? !link.relayed : survives(link.session!.dialer, current.session!.dialer)) {
      this.active = link;
      return { winner: link, loser: current };
    }
    return { winner: current, loser: link };
  }

  /** Another link whose session is still alive, preferring one past Hello. */
  successor(): Link | undefined {
    let waiting: Link | undefined;
    for (const link of this.links) {
      const state = link.session?.state;
      if (state === 'open') return link;
      if (state === 'awaiting-hello') waiting = link;
    }
    return waiting;
  }
}
