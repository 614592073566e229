// How rosters spread (PROTOCOL.md#v-roster): over the sessions a node already has, with peers
// that offered CAPABILITY_ROSTER, for the networks both are in. Anti-entropy and push together:
//   - when a session opens (the peer's C offered roster), and every ROUND_MS after, each side
//     sends D, its (fingerprint, version) pairs, and the other answers with Q for whatever it
//     lacks or holds older; Q is answered with R, the records themselves;
//   - a record that changed this node's roster is pushed as R at once to every other such peer,
//     so a revocation reaches the whole mesh within one round trip per hop.
// A stale record changes nothing and is pushed no further, so flooding ends.

import type { ControlMessage } from '../control/messages.js';
import { digestBodies, fetchBodies } from '../control/roster-messages.js';
import type { Logger } from '../log/logger.js';
import type { Roster } from '../roster/roster.js';
import type { VerifiedRecord } from '../roster/record.js';

/** A full digest exchange with every peer this often, to heal anything a push missed. */
export const GOSSIP_ROUND_MS = 30_000;
/** Records sent for one Q at most: a Q asks for at most MAX_FETCH_ENTRIES anyway. */
const MAX_RECORDS_PER_FETCH = 128;

/** A peer as gossip sees it: one with an open session that offered roster. */
export interface GossipPeer {
  readonly fingerprint: string;
  readonly label: string;
  inNetwork(network: string): boolean;
  send(msg: ControlMessage): void;
}

export interface GossipDeps {
  /** The rosters this node keeps, by network. */
  rosters(): ReadonlyMap<string, Roster>;
  /** Every peer gossip may talk to now. */
  peers(): Iterable<GossipPeer>;
  /** A record arrived (not verified yet); the owner verifies, merges and, if it changed, pushes it. */
  receive(from: GossipPeer, record: Uint8Array): void;
  logger: Logger;
}

export class Gossip {
  constructor(private readonly deps: GossipDeps) {}

  /** The session is open and the peer offered roster: say what we hold. */
  opened(peer: GossipPeer): void {
    for (const [network, roster] of this.deps.rosters()) {
      if (!peer.inNetwork(network)) continue;
      for (const body of digestBodies(network, roster.digest())) peer.send({ type: 'digest', ...body });
    }
  }

  /** Every GOSSIP_ROUND_MS: a digest to every peer. */
  round(): void {
    for (const peer of this.deps.peers()) this.opened(peer);
  }

  handle(peer: GossipPeer, msg: Extract<ControlMessage, { type: 'digest' | 'fetch' | 'record' }>): void {
    if (msg.type === 'record') return this.deps.receive(peer, msg.record);
    const roster = this.deps.rosters().get(msg.network);
    // A network we keep no roster for, or one the peer is not in here: nothing to say to it.
    if (!roster || !peer.inNetwork(msg.network)) return;
    if (msg.type === 'digest') {
      const wanted = msg.entries.filter(({ fingerprint, version }) => {
        const held = roster.get(fingerprint);
        return held === undefined || held.record.version < version;
      });
      for (const body of fetchBodies(msg.network, wanted.map((e) => e.fingerprint))) peer.send({ type: 'fetch', ...body });
      return;
    }
    let sent = 0;
    for (const fingerprint of new Set(msg.fingerprints)) {
      const held = roster.get(fingerprint);
      if (!held) continue;
      if (sent++ >= MAX_RECORDS_PER_FETCH) break;
      peer.send({ type: 'record', record: held.bytes });
    }
  }

  /** Records that just changed this node's roster, to every peer in their network but the one they came from. */
  push(records: readonly VerifiedRecord[], exceptFingerprint?: string): void {
    if (records.length === 0) return;
    for (const peer of this.deps.peers()) {
      if (peer.fingerprint === exceptFingerprint) continue;
      for (const { record, bytes } of records) if (peer.inNetwork(record.network)) peer.send({ type: 'record', record: bytes });
    }
  }
}
