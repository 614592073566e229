// Static overlay addresses held by peers, per network (see policy.ts): the first free host route
// a peer announces inside a network prefix, other than its auto address, becomes its address
// there. A claim ends when the peer withdraws it. When the peer disconnects the claim goes stale:
// still reserved against everyone else, but the peer itself may move to another address when it
// comes back (its static address may have changed while it was away).

interface Claim {
  /** The holder's fingerprint. */
  readonly peer: string;
  /** The holder's name, for messages naming who holds an address. */
  readonly name: string;
  readonly address: Uint8Array;
  stale: boolean;
}

export class AddressClaims {
  /** network → address key → claim */
  private readonly byAddress = new Map<string, Map<string, Claim>>();
  /** network → peer → claim */
  private readonly byPeer = new Map<string, Map<string, Claim>>();

  /** Who holds `address` in `network`, stale claims included. */
  holder(network: string, address: Uint8Array): { peer: string; name: string } | undefined {
    return this.byAddress.get(network)?.get(key(address));
  }

  /** The address `peer` actively holds in `network`; a stale claim does not bind the peer. */
  activeClaim(network: string, peer: string): Uint8Array | undefined {
    const claim = this.byPeer.get(network)?.get(peer);
    return claim && !claim.stale ? claim.address : undefined;
  }

  /** Records `peer` holding `address`, replacing its previous (stale) claim in that network. */
  claim(network: string, peer: string, name: string, address: Uint8Array): void {
    const addresses = ensure(this.byAddress, network);
    const peers = ensure(this.byPeer, network);
    const previous = peers.get(peer);
    if (previous) addresses.delete(key(previous.address));
    const claim: Claim = { peer, name, address: new Uint8Array(address), stale: false };
    addresses.set(key(address), claim);
    peers.set(peer, claim);
  }

  /** The peer withdrew `address`: it is free again. */
  release(network: string, peer: string, address: Uint8Array): void {
    const claim = this.byPeer.get(network)?.get(peer);
    if (!claim || key(claim.address) !== key(address)) return;
    this.byPeer.get(network)!.delete(peer);
    this.byAddress.get(network)!.delete(key(address));
  }

  /** The peer went away: its claims stay reserved for it. */
  markStale(peer: string): void {
    for (const peers of this.byPeer.values()) {
      const claim = peers.get(peer);
      if (claim) claim.stale = true;
    }
  }

  dropNetwork(network: string): void {
    this.byAddress.delete(network);
    this.byPeer.delete(network);
  }
}

function key(address: Uint8Array): string {
  return Buffer.from(address.buffer, address.byteOffset, address.byteLength).toString('hex');
}

function ensure<V>(map: Map<string, Map<string, V>>, network: string): Map<string, V> {
  let inner = map.get(network);
  if (!inner) map.set(network, (inner = new Map()));
  return inner;
}
