// What this node announces to a peer (PROTOCOL.md "What a node announces", fix): per exported
// network the peer belongs to, its own host route plus the network's extra `routes` — never the
// whole network prefix, so with three or more nodes every route names exactly one node.

import type { Config, NetworkConfig, PeerConfig } from '../config/types.js';
import { resolveNetworkAddress } from '../config/address.js';
import { DEFAULT_METRIC, type RouteAnnouncement } from '../control/messages.js';
import { formatPrefix, hostPrefix } from '../netgraph/addr.js';

/** Our host route in `net`: /32 or /128 of our (possibly derived) overlay address, as wire text. */
export function ownHostRoute(net: NetworkConfig, fingerprint: string): string {
  return formatPrefix(hostPrefix(resolveNetworkAddress(net, fingerprint)));
}

/** Whether `peer` takes part in `network`; unknown peers admitted by accept_unknown_peers take part in all. */
export function peerInNetwork(peer: PeerConfig | null, network: string): boolean {
  return peer === null || peer.networks.includes(network);
}

export function announcementsFor(config: Config, peer: PeerConfig | null, fingerprint: string): Map<string, RouteAnnouncement[]> {
  const out = new Map<string, RouteAnnouncement[]>();
  for (const net of config.networks.values()) {
    if (!net.export || !peerInNetwork(peer, net.name)) continue;
    const prefixes = [ownHostRoute(net, fingerprint), ...net.routes.map(formatPrefix)];
    out.set(
      net.name,
      prefixes.map((prefix) => ({ prefix, metric: DEFAULT_METRIC })),
    );
  }
  return out;
}

export interface AnnouncementDiff {
  announce: Map<string, RouteAnnouncement[]>;
  withdraw: Array<{ network: string; prefix: string }>;
}

/** The A and W messages that move a peer from `before` to `after` (reload). */
export function diffAnnouncements(before: Map<string, RouteAnnouncement[]>, after: Map<string, RouteAnnouncement[]>): AnnouncementDiff {
  const announce = new Map<string, RouteAnnouncement[]>();
  const withdraw: Array<{ network: string; prefix: string }> = [];
  const key = (r: RouteAnnouncement) => `${r.prefix}#${r.metric}`;
  for (const [network, routes] of after) {
    const old = new Set((before.get(network) ?? []).map(key));
    const added = routes.filter((r) => !old.has(key(r)));
    if (added.length > 0) announce.set(network, added);
  }
  for (const [network, routes] of before) {
    const still = new Set((after.get(network) ?? []).map((r) => r.prefix));
    for (const r of routes) if (!still.has(r.prefix)) withdraw.push({ network, prefix: r.prefix });
  }
  return { announce, withdraw };
}
