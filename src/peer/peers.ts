// Every Peer of one daemon: one map keyed by fingerprint, with a name index for configured peers
// (Nebula's HostMap). A configured peer whose key is not known yet (trust on first use, nothing
// learned) is in the name index only, until a connection teaches its fingerprint.

import type { PeerConfig } from '../config/types.js';
import { Peer } from './peer.js';

export class PeerMap {
  private readonly byFingerprint = new Map<string, Peer>();
  /** Configured peers, in config order. */
  private readonly byName = new Map<string, Peer>();

  /** Adds a configured peer, with its pinned or previously learned fingerprint. */
  addConfigured(config: PeerConfig, learned: string | undefined): Peer {
    const peer = new Peer(config, config.name, config.fingerprint ?? learned ?? null);
    this.byName.set(config.name, peer);
    if (peer.fingerprint) this.byFingerprint.set(peer.fingerprint, peer);
    return peer;
  }

  /** The peer for a connection let in by accept_unknown_peers (one per fingerprint). */
  unknown(fingerprint: string, name: string): Peer {
    const existing = this.byFingerprint.get(fingerprint);
    if (existing) return existing;
    const peer = new Peer(null, name, fingerprint);
    this.byFingerprint.set(fingerprint, peer);
    return peer;
  }

  /** A connection proved the peer's key (first use), or the known-peers file forgot it (null). */
  setFingerprint(peer: Peer, fingerprint: string | null): void {
    if (peer.fingerprint === fingerprint) return;
    if (peer.fingerprint && this.byFingerprint.get(peer.fingerprint) === peer) this.byFingerprint.delete(peer.fingerprint);
    peer.fingerprint = fingerprint;
    if (fingerprint) this.byFingerprint.set(fingerprint, peer);
  }

  /** Forgets a peer (removed from the config, or an unknown peer whose last connection closed). */
  remove(peer: Peer): void {
    if (peer.config && this.byName.get(peer.name) === peer) this.byName.delete(peer.name);
    if (peer.fingerprint && this.byFingerprint.get(peer.fingerprint) === peer) this.byFingerprint.delete(peer.fingerprint);
  }

  byConfigName(name: string): Peer | undefined {
    return this.byName.get(name);
  }

  withFingerprint(fingerprint: string): Peer | undefined {
    return this.byFingerprint.get(fingerprint);
  }

  /** Configured peers in config order. */
  configured(): Peer[] {
    return [...this.byName.values()];
  }

  /** Peers admitted by accept_unknown_peers. */
  unknowns(): Peer[] {
    return [...this.byFingerprint.values()].filter((p) => p.config === null);
  }

  /** Peers whose key is known: configured with a pin or a learned key, and unknown ones. */
  *withKeys(): IterableIterator<Peer> {
    yield* this.byFingerprint.values();
  }

  /** Peers with an active session. */
  connectedCount(): number {
    let count = 0;
    for (const peer of this.byFingerprint.values()) if (peer.connected) count++;
    return count;
  }
}
