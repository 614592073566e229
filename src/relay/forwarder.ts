// Relayed packets in and out of this node's sessions (PROTOCOL.md#v-relay). Every DATAGRAM frame
// a peer sends lands in receive():
//   "to X"   - a peer asks this node to relay: decide.ts judges it, and it goes on to X as
//              "from <sender>" in a DATAGRAM frame of X's session, never queued here: quiche's
//              bounded datagram queue is the only buffer, and a full one drops (counted);
//   "from X" - a relay delivers a packet of our own end-to-end connection with X: into the
//              endpoint through VirtualPaths.
// send() is the other half of the end node's side: a packet of a virtual path goes to its relay.

import type { RelayCounters } from '../metrics/relay-counters.js';
import { decideRelay, type RelayParty } from './decide.js';
import { RELAY_FROM, RELAY_TO, decodeRelayDatagram, encodeRelayDatagram } from './relay-datagram.js';
import type { VirtualPath, VirtualPaths } from './relayed-socket.js';

/** A peer as the relay sees it: its session, what it offered, and its connection's datagrams. */
export interface RelayPeer extends RelayParty {
  /** Its C offered CAPABILITY_RELAY: it may deliver relayed packets to us. */
  relays: boolean;
  sendDatagram(data: Uint8Array): boolean;
}

export interface RelayForwarderDeps {
  /** `relay = true` in the running config. */
  enabled(): boolean;
  /** The peer with this fingerprint on its active session, or null. */
  peer(fingerprint: string): RelayPeer | null;
  paths: VirtualPaths;
  counters: RelayCounters;
}

export class RelayForwarder {
  constructor(private readonly deps: RelayForwarderDeps) {
    deps.paths.sender = (path, packet) => this.send(path, packet);
  }

  /** A DATAGRAM frame from `source`, on the connection it arrived on. */
  receive(source: RelayPeer, data: Uint8Array): void {
    const { counters } = this.deps;
    const datagram = decodeRelayDatagram(data);
    if (datagram === null) {
      counters.drops.malformed++;
      return;
    }
    if (datagram.kind === RELAY_FROM) {
      if (!source.relays || !source.open) {
        counters.drops.unexpected++;
        return;
      }
      if (this.deps.paths.deliver(source.fingerprint, datagram.fingerprint, datagram.packet)) counters.viaRelayIn++;
      else counters.drops.unexpected++;
      return;
    }
    const target = this.deps.peer(datagram.fingerprint);
    const decision = decideRelay(this.deps.enabled(), source, target);
    if (!decision.forward) {
      counters.drops[decision.reason]++;
      return;
    }
    if (!target!.sendDatagram(encodeRelayDatagram(RELAY_FROM, source.fingerprint, datagram.packet))) {
      counters.drops.queue_full++;
      return;
    }
    counters.forwardedPackets++;
    counters.forwardedBytes += datagram.packet.length;
  }

  /** A packet of our own connection through a relay; a refusal counts like one the relay would make. */
  private send(path: VirtualPath, packet: Uint8Array): boolean {
    const { counters } = this.deps;
    const relay = this.deps.peer(path.relay);
    if (relay === null || !relay.open) {
      counters.drops.no_session++;
      return false;
    }
    if (!relay.relays) {
      counters.drops.not_capable++;
      return false;
    }
    if (!relay.sendDatagram(encodeRelayDatagram(RELAY_TO, path.remote, packet))) {
      counters.drops.queue_full++;
      return false;
    }
    counters.viaRelayOut++;
    return true;
  }
}
