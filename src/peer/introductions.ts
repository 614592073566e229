// The common peer's side of hole punching (PROTOCOL.md#v-introductions). A peer asks (N) to be put
// in touch with another by fingerprint; if this node has an open, direct session with that one
// and both take introductions, each is told the other's address as this node sees it (E), so
// they can dial each other at the same moment. Otherwise the asker hears "no session with it".
// Every node does this, relay or not: it costs two small control messages, rate-limited per pair.

import type { Clock } from '../clock/clock.js';
import type { ObservedEndpoint } from '../control/nat-messages.js';
import type { Logger } from '../log/logger.js';
import type { Link } from './peer.js';
import type { PeerMap } from './peers.js';

/** One introduction per (asker, target) pair this often at most; more asks are answered by silence. */
const PAIR_INTERVAL_MS = 1000;
/** Pairs remembered for the rate limit before the table is swept. */
const MAX_PAIRS = 4096;

export interface IntroductionsDeps {
  peers: PeerMap;
  clock: Clock;
  logger: Logger;
}

export class Introductions {
  private readonly lastIntroduced = new Map<string, number>();

  constructor(private readonly deps: IntroductionsDeps) {}

  /** N from `link`'s peer about `fingerprint`. */
  requested(link: Link, fingerprint: string): void {
    const asker = link.peer;
    const session = link.session;
    if (!session || session.state !== 'open' || !session.peerCapabilities.natTraversal) return;
    const now = this.deps.clock.now();
    const pair = `${asker.id}/${fingerprint}`;
    if (now - (this.lastIntroduced.get(pair) ?? -Infinity) < PAIR_INTERVAL_MS) return;
    this.remember(pair, now);
    const target = this.deps.peers.withFingerprint(fingerprint);
    const targetLink = target?.active;
    const targetSession = targetLink?.session;
    const reachable =
      target !== undefined &&
      target !== asker &&
      targetLink !== null &&
      targetLink !== undefined &&
      !targetLink.relayed &&
      !link.relayed &&
      targetSession?.state === 'open' &&
      targetSession.peerCapabilities.natTraversal;
    if (!reachable) {
      session.send({ type: 'endpoint', fingerprint, address: null });
      return;
    }
    const targetAddress = observed(targetLink);
    const askerAddress = observed(link);
    this.deps.logger.debug(`introducing ${asker.label} at ${askerAddress.host}:${askerAddress.port} and ${target.label} at ${targetAddress.host}:${targetAddress.port}`);
    session.send({ type: 'endpoint', fingerprint, address: targetAddress });
    targetSession.send({ type: 'endpoint', fingerprint: asker.id, address: askerAddress });
  }

  private remember(pair: string, now: number): void {
    if (this.lastIntroduced.size >= MAX_PAIRS) {
      for (const [key, at] of this.lastIntroduced) if (now - at >= PAIR_INTERVAL_MS) this.lastIntroduced.delete(key);
    }
    if (this.lastIntroduced.size < MAX_PAIRS) this.lastIntroduced.set(pair, now);
  }
}

/** Where a link's packets come from, as an IPv4 literal when it is an IPv4-mapped one. */
function observed(link: Link): ObservedEndpoint {
  const { host, port } = link.conn.remoteEndpoint();
  return { host: host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host, port };
}
