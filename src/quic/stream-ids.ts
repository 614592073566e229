// Bidirectional stream ids of one connection (RFC 9000 section 2.1: bit 0 is the initiator,
// 0 = client = dialer; bit 1 is 0 for bidirectional; each side counts up in steps of 4).
// Peer ids already seen are remembered, so a late frame for a released stream never looks like a
// new stream: every id below the floor was seen, plus the out-of-order ids above it.

export class StreamIds {
  private nextLocal: number;
  private peerFloor: number;
  private readonly peerAboveFloor = new Set<number>();

  constructor(dialer: boolean) {
    this.nextLocal = dialer ? 0 : 1;
    this.peerFloor = dialer ? 1 : 0;
  }

  /** The id for the next stream this side opens. */
  takeLocal(): number {
    const id = this.nextLocal;
    this.nextLocal += 4;
    return id;
  }

  /** True the first time a peer-initiated bidirectional id shows up; false for ours and for repeats. */
  firstSightOfPeer(id: number): boolean {
    if ((id & 3) !== (this.peerFloor & 3)) return false;
    if (id < this.peerFloor || this.peerAboveFloor.has(id)) return false;
    this.peerAboveFloor.add(id);
    while (this.peerAboveFloor.delete(this.peerFloor)) this.peerFloor += 4;
    return true;
  }
}
