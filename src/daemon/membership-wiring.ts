// Wires the membership parts (src/membership/) into one daemon: the roster owner, its file,
// gossip over the node's sessions, the admin's redeemer and ledger, the joiner's pending invite,
// and the control API's members/revoke. Composition only; every mechanism lives in its module.

import type { Clock } from '../clock/clock.js';
import { resolveNetworkAddress } from '../config/address.js';
import { ledgerPath, pendingInvitesPath, rosterPath } from '../config/state-files.js';
import type { Config } from '../config/types.js';
import type { RevokeResult, RosterStatus } from '../control/api.js';
import type { Identity } from '../crypto/identity.js';
import { Ledger } from '../invite/ledger.js';
import { PendingInvites } from '../invite/pending.js';
import type { Logger } from '../log/logger.js';
import type { MembershipCounters } from '../metrics/membership-counters.js';
import { Gossip, GOSSIP_ROUND_MS, type GossipPeer } from '../membership/gossip.js';
import { Joining } from '../membership/joining.js';
import { Membership } from '../membership/membership.js';
import { membersView } from '../membership/members-view.js';
import { Redeemer } from '../membership/redeem.js';
import { RosterFile } from '../membership/roster-file.js';
import type { Link, Peer } from '../peer/peer.js';
import type { PeerMap } from '../peer/peers.js';
import type { RosterMessage } from '../peer/session.js';
import type { NodeMembership } from './node.js';

export interface MembershipWiringParts {
  config: Config;
  identity: Identity;
  clock: Clock;
  logger: Logger;
  counters: MembershipCounters;
  peers: PeerMap;
  /** Serialized with reloads: runs membership.effective() as the node's config. */
  apply(cause: string): Promise<void>;
}

/** How gossip sees a peer with an open session: configured networks only, never an unknown peer's. */
function gossipView(peer: Peer, link: Link | null = peer.active): GossipPeer {
  return {
    fingerprint: peer.id,
    label: peer.label,
    inNetwork: (network) => peer.config?.networks.includes(network) ?? false,
    send: (msg) => {
      if (link?.session?.state === 'open') link.session.send(msg);
    },
  };
}

export class MembershipWiring implements NodeMembership {
  readonly membership: Membership;
  readonly gossip: Gossip;
  readonly redeemer: Redeemer;
  readonly joining: Joining;
  private lastRound: number;

  constructor(private readonly parts: MembershipWiringParts) {
    const { config, identity, clock, logger, counters } = parts;
    this.lastRound = clock.now();
    this.gossip = new Gossip({
      rosters: () => this.membership.rosterMap,
      peers: () => this.gossipPeers(),
      receive: (from, record) => void this.membership.offer(record, from.fingerprint),
      logger,
    });
    this.membership = new Membership(config, {
      identity,
      clock,
      logger,
      counters,
      file: new RosterFile(rosterPath(config.path)),
      push: (records, from) => this.gossip.push(records, from),
      apply: (cause) => parts.apply(cause),
      joined: (network, record) => this.joining.joined(network, record),
    });
    this.redeemer = new Redeemer({
      membership: this.membership,
      ledger: new Ledger(ledgerPath(config.path)),
      clock,
      logger,
      counters,
      filePeerFingerprint: (name) => {
        const peer = this.membership.file.peers.find((p) => p.name === name);
        return peer ? (peer.fingerprint ?? null) : undefined;
      },
    });
    this.joining = new Joining({
      store: new PendingInvites(pendingInvitesPath(config.path)),
      addressIn: (network) => {
        const net = this.membership.file.networks.get(network);
        return net ? resolveNetworkAddress(net, identity.fingerprint) : undefined;
      },
      logger,
    });
    counters.observeMembers(() => {
      const now = clock.now();
      return new Map([...this.membership.rosterMap].map(([network, roster]) => [network, roster.members(now).length]));
    });
  }

  /** The config to start with (the file's, plus the rosters' members). */
  async start(): Promise<Config> {
    await this.joining.load();
    return await this.membership.start();
  }

  /** A reload's new file: the config to apply. */
  async reload(fileConfig: Config): Promise<Config> {
    await this.joining.load();
    return await this.membership.configChanged(fileConfig);
  }

  /** Once a tick: expired members dropped, and a digest round every GOSSIP_ROUND_MS. */
  tick(): void {
    void this.membership.expire();
    const now = this.parts.clock.now();
    if (now - this.lastRound < GOSSIP_ROUND_MS) return;
    this.lastRound = now;
    this.gossip.round();
  }

  // ---- the node's session events and handshakes ----
  preamble(peer: Peer): Uint8Array | null {
    return this.joining.preamble(peer.fingerprint);
  }

  refusalHeard(code: string): void {
    this.parts.counters.refusalHeard(code);
  }

  capabilitiesHeard(link: Link): void {
    if (link.session?.peerCapabilities.roster && link.peer.config) this.gossip.opened(gossipView(link.peer, link));
  }

  roster(link: Link, msg: RosterMessage): void {
    this.gossip.handle(gossipView(link.peer, link), msg);
  }

  // ---- the control API ----
  members(network: string | undefined): RosterStatus[] {
    return membersView(this.membership, network, {
      reachable: (fingerprint) => this.parts.peers.withFingerprint(fingerprint)?.session?.state === 'open',
      nameOf: (fingerprint) => {
        if (fingerprint === this.parts.identity.fingerprint) return this.parts.identity.name;
        const peer = this.parts.peers.withFingerprint(fingerprint);
        if (peer) return peer.name;
        for (const roster of this.membership.rosterMap.values()) {
          const held = roster.get(fingerprint);
          if (held) return held.record.name;
        }
        return undefined;
      },
      now: this.parts.clock.now(),
    });
  }

  async revoke(name: string, network: string | undefined): Promise<RevokeResult> {
    const told = (net: string): number => [...this.gossipPeers()].filter((p) => p.inNetwork(net)).length;
    // Counted before: once applied, the revoked member is no longer a peer.
    const before = new Map([...this.membership.rosterMap.keys()].map((n) => [n, told(n)]));
    const verified = await this.membership.revoke(name, network);
    const { record } = verified;
    return { network: record.network, name: record.name, fingerprint: record.fingerprint, version: record.version.toString(), told: before.get(record.network) ?? 0 };
  }

  private *gossipPeers(): IterableIterator<GossipPeer> {
    for (const peer of this.parts.peers.withKeys()) {
      const session = peer.session;
      if (session?.state === 'open' && session.peerCapabilities.roster && peer.config) yield gossipView(peer);
    }
  }
}
