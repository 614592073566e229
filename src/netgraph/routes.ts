// The one owner of learned routes: every network's table, the static-address claims, and the
// route policy applied to what peers announce. Everything else derives from it: the forwarder
// looks peers up in its tables, kernel routes follow its onChange notifications, the routes
// gauge reads its counts at scrape time, `vpnctl routes` lists it.

import type { RouteAnnouncement } from '../control/messages.js';
import { printable, type Logger } from '../log/logger.js';
import { LogBudget } from '../log/rate-limit.js';
import type { Metrics, RouteRejectReason } from '../metrics/metrics.js';
import { type Prefix, bytesEqual, formatPrefix, hostPrefix, parseCidr, prefixCovers } from './addr.js';
import { AddressClaims } from './claims.js';
import { NetGraph, type NetworkRoute } from './graph.js';
import { checkAnnouncedPrefix, type HostOwnership, type PolicyRefusal, type PolicyResult } from './policy.js';
import type { RouteTable } from './table.js';

/** What route policy needs to know about the peer a route comes from. */
export interface RoutePeer {
  /** Its fingerprint: the table's tie-break key and the claims' holder id. */
  readonly id: string;
  readonly name: string;
  /** "name (fingerprint…)" for log lines. */
  readonly label: string;
  /** Whether the local config lets it take part in `network`. */
  inNetwork(network: string): boolean;
  /** Extra prefixes the local config lets it announce. */
  allowedRoutes(): readonly Prefix[];
  /** Its `auto` address in a network with this name and prefix. */
  autoAddressIn(network: string, prefix: Prefix): Uint8Array;
  /**
   * For an original VibePN node: its address by the original's auto formula. The original
   * announces its whole network prefix; that announcement stands for this host route.
   */
  originalAddressIn(network: string, prefix: Prefix): Uint8Array | null;
  /** The address a signed roster gives it in `network` (issue 12); then its only host route there. */
  signedAddressIn?(network: string): Uint8Array | undefined;
}

export interface RoutesDeps<P extends RoutePeer> {
  /** Peers whose auto addresses count as taken: configured ones with a known key, and connected ones. */
  knownPeers(): Iterable<P>;
  metrics: Pick<Metrics, 'routeRejected'>;
  logger: Logger;
  /** A network's set of routed prefixes changed; kernel routes are derived from it. */
  onChange(network: string): void;
  /** Milliseconds, for the budget of refusal log lines per peer (default Date.now). */
  now?(): number;
}

interface NetworkInfo {
  prefix: Prefix;
  local: Uint8Array;
}

const REJECT_REASON: Record<PolicyRefusal, RouteRejectReason> = {
  'unknown-network': 'unknown_network',
  'peer-not-in-network': 'peer_not_in_network',
  'bad-prefix': 'bad_prefix',
  'outside-policy': 'outside_policy',
  conflict: 'conflict',
};

export class Routes<P extends RoutePeer> {
  private readonly graph = new NetGraph<P>((peer) => peer.id);
  private readonly networks = new Map<string, NetworkInfo>();
  private readonly claims = new AddressClaims();
  /** Every refusal is counted; only so many are logged per peer and minute. */
  private readonly refusalLog: LogBudget;

  constructor(private readonly deps: RoutesDeps<P>) {
    this.refusalLog = new LogBudget(deps.now ?? (() => Date.now()));
  }

  addNetwork(name: string, prefix: Prefix, localAddress: Uint8Array): RouteTable<P> {
    this.networks.set(name, { prefix, local: localAddress });
    return this.graph.ensure(name);
  }

  removeNetwork(name: string): void {
    this.networks.delete(name);
    this.claims.dropNetwork(name);
    if (this.graph.drop(name)) this.deps.onChange(name);
  }

  table(network: string): RouteTable<P> | undefined {
    return this.graph.table(network);
  }

  /** Whether an announcement is worth remembering for a re-check, and for which kind of network (see Session). */
  remembers(network: string, prefix: string): 'local' | 'foreign' | 'drop' {
    if (!parseCidr(prefix, true).ok) return 'drop';
    return this.networks.has(network) ? 'local' : 'foreign';
  }

  /** Applies one Announce from `peer`: each prefix through policy, refusals logged and counted. */
  announce(peer: P, network: string, routes: readonly RouteAnnouncement[]): void {
    const table = this.graph.table(network);
    let changed = false;
    for (const announced of routes) {
      const route = { prefix: this.fromOriginal(peer, network, announced.prefix), metric: announced.metric };
      if (route.prefix !== announced.prefix) {
        this.deps.logger.debug(`${peer.label} (original VibePN) announces ${announced.prefix} in ${network}: taken as its address ${route.prefix}`);
      }
      const verdict = this.check(peer, network, route.prefix);
      if (!verdict.ok) {
        this.refused(peer, network, route.prefix, verdict);
        continue;
      }
      if (verdict.claim) this.claims.claim(network, peer.id, peer.name, verdict.prefix.bytes);
      if (table!.add(verdict.prefix, peer, route.metric)) {
        changed = true;
        this.deps.logger.debug(`route ${formatPrefix(verdict.prefix)} in ${network} via ${peer.label} metric ${route.metric}`);
      }
    }
    if (changed) this.deps.onChange(network);
  }

  withdraw(peer: P, network: string, withdrawn: string): void {
    const table = this.graph.table(network);
    const prefixText = this.fromOriginal(peer, network, withdrawn);
    const parsed = parseCidr(prefixText, true);
    if (!table || !parsed.ok) return;
    this.claims.release(network, peer.id, parsed.prefix.bytes);
    if (!table.withdraw(parsed.prefix, peer)) return;
    this.deps.logger.debug(`route ${prefixText} in ${network} withdrawn by ${peer.label}`);
    this.deps.onChange(network);
  }

  /** The peer is gone: all its routes go, its static addresses stay reserved for its return. */
  removePeer(peer: P): number {
    this.claims.markStale(peer.id);
    this.refusalLog.forget(peer.id);
    const removed = this.graph.removePeer(peer);
    for (const network of new Set(removed.map((r) => r.network))) this.deps.onChange(network);
    return removed.length;
  }

  /** The peer's routes become exactly what `announced` lists (a session taking over from another). */
  replace(peer: P, announced: ReadonlyMap<string, ReadonlyMap<string, number>>): void {
    this.removePeer(peer);
    for (const [network, routes] of announced) {
      this.announce(
        peer,
        network,
        [...routes].map(([prefix, metric]) => ({ prefix, metric })),
      );
    }
  }

  /** After a reload: drops learned routes the new config no longer allows. */
  revalidate(): void {
    for (const route of this.graph.routes()) {
      const text = formatPrefix(route.prefix);
      const verdict = this.check(route.peer, route.network, text);
      if (verdict.ok) continue;
      this.graph.table(route.network)?.withdraw(route.prefix, route.peer);
      this.claims.release(route.network, route.peer.id, route.prefix.bytes);
      this.deps.onChange(route.network);
      this.deps.logger.info(`reload: dropped route ${text} in ${route.network}: ${verdict.message}`);
    }
  }

  list(): NetworkRoute<P>[] {
    return this.graph.routes();
  }

  /** Route count per network, for the gauge read at scrape time. */
  counts(): Map<string, number> {
    return new Map(this.graph.networks().map((network) => [network, this.graph.routeCount(network)]));
  }

  /**
   * An original node announces its network's whole prefix (possibly with host bits set) where it
   * means "here I am": unless allowed_routes grants the prefix itself, that text stands for the
   * host route of its own auto address, so several originals in one network stay apart.
   */
  private fromOriginal(peer: P, network: string, text: string): string {
    const info = this.networks.get(network);
    if (!info) return text;
    const address = peer.originalAddressIn(network, info.prefix);
    if (!address) return text;
    const parsed = parseCidr(text, true);
    if (!parsed.ok || parsed.prefix.length !== info.prefix.length || !prefixCovers(info.prefix, parsed.prefix)) return text;
    if (peer.allowedRoutes().some((allowed) => prefixCovers(allowed, parsed.prefix))) return text;
    return formatPrefix(hostPrefix(address));
  }

  private check(peer: P, network: string, announced: string): PolicyResult {
    const info = this.networks.get(network);
    const exists = info !== undefined && this.graph.table(network) !== undefined;
    return checkAnnouncedPrefix({
      network,
      networkExists: exists,
      peerAllowedOnNetwork: exists && peer.inNetwork(network),
      networkPrefix: info?.prefix ?? ZERO_PREFIX,
      allowedRoutes: peer.allowedRoutes(),
      announced,
      ownership: info ? this.ownership(peer, network, info) : NO_OWNERSHIP,
    });
  }

  private ownership(peer: P, network: string, info: NetworkInfo): HostOwnership {
    return {
      local: info.local,
      peerAuto: peer.autoAddressIn(network, info.prefix),
      peerClaim: this.claims.activeClaim(network, peer.id),
      peerSigned: peer.signedAddressIn?.(network),
      holderOf: (address) => {
        const claim = this.claims.holder(network, address);
        if (claim && claim.peer !== peer.id) return claim.name;
        for (const other of this.deps.knownPeers()) {
          if (other.id === peer.id) continue;
          const signed = other.signedAddressIn?.(network);
          if (signed ? bytesEqual(signed, address) : bytesEqual(other.autoAddressIn(network, info.prefix), address)) return other.name;
        }
        return undefined;
      },
    };
  }

  private refused(peer: P, network: string, prefix: string, verdict: Extract<PolicyResult, { ok: false }>): void {
    const known = this.networks.has(network);
    this.deps.metrics.routeRejected(known ? network : '', REJECT_REASON[verdict.reason]);
    const budget = this.refusalLog.take(peer.id);
    if (!budget.ok) return;
    // Wire text is untrusted: a made-up network name or prefix is logged bounded and single-line.
    const where = known ? network : `unknown network ${printable(network)}`;
    const shown = /^[\x21-\x7e]{1,64}$/.test(prefix) ? prefix : printable(prefix);
    const line = `rejected route ${shown} in ${where} from ${peer.label}: ${verdict.message}${budget.note}`;
    if (verdict.reason === 'conflict') this.deps.logger.error(line);
    else this.deps.logger.warn(line);
  }
}

const ZERO_PREFIX: Prefix = { family: 4, bytes: new Uint8Array(4), length: 0 };
const NO_OWNERSHIP: HostOwnership = { local: new Uint8Array(4), peerAuto: new Uint8Array(4), peerClaim: undefined, holderOf: () => undefined };
