// Which peers a node has once its signed rosters are counted (issue 12): the config file's
// [[peers]], plus one peer per roster member the file does not already list. Pure: the daemon
// runs what this returns as its config, so admission, dialing and route policy follow the roster
// through the same code as a reload.
//
// Local config wins (docs/CONFIG.md#v-admins):
//   - a file peer with the member's fingerprint stays as written, gains the roster's networks it
//     lacks, and takes the signed address and routes (route policy: its host route must be the
//     signed address);
//   - a file peer with the member's name and another (or no) fingerprint keeps the name; the
//     member is refused, and the reason is shown by `vpnctl members`;
//   - one fingerprint listed in two rosters under two names takes the first network's name.
// A node that finds itself revoked in a roster takes none of that roster's members.

import type { PeerConfig } from '../config/types.js';
import { parseCidr, parseIp, type Prefix } from '../netgraph/addr.js';
import { parseHostPort, type HostPort } from '../netgraph/hostport.js';
import type { MembershipRecord } from '../roster/record.js';

export interface RosterMembers {
  network: string;
  /** Current members (Roster.members): not revoked, not expired. */
  members: readonly MembershipRecord[];
  /** This node's own record in this roster is a revocation. */
  selfRevoked: boolean;
}

export interface RosterPeers {
  peers: PeerConfig[];
  /** `network\nfingerprint` → why that member is not a peer here. */
  refused: Map<string, string>;
}

export function refusalKey(network: string, fingerprint: string): string {
  return `${network}\n${fingerprint}`;
}

/** The first endpoint hint that parses as a dialable address (the record's are canonical). */
function firstEndpoint(record: MembershipRecord): HostPort | null {
  for (const text of record.endpoints) {
    const parsed = parseHostPort(text);
    if (parsed.ok) return { host: parsed.host, port: parsed.port };
  }
  return null;
}

function routesOf(record: MembershipRecord): Prefix[] {
  const out: Prefix[] = [];
  for (const text of record.routes) {
    const parsed = parseCidr(text);
    if (parsed.ok) out.push(parsed.prefix);
  }
  return out;
}

function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.length === b.length && a.bytes.every((byte, i) => byte === b.bytes[i]);
}

/** Adds the roster's view of one network to a peer entry (a copy; the input is left alone). */
function withMembership(peer: PeerConfig, network: string, record: MembershipRecord): PeerConfig {
  const address = parseIp(record.address);
  const signed = new Map(peer.signedAddresses ?? []);
  if (address) signed.set(network, address);
  const allowedRoutes = [...peer.allowedRoutes];
  for (const route of routesOf(record)) if (!allowedRoutes.some((held) => samePrefix(held, route))) allowedRoutes.push(route);
  return {
    ...peer,
    networks: peer.networks.includes(network) ? peer.networks : [...peer.networks, network],
    allowedRoutes,
    signedAddresses: signed,
  };
}

export function rosterPeers(filePeers: readonly PeerConfig[], rosters: readonly RosterMembers[], selfFingerprint: string): RosterPeers {
  const peers = filePeers.map((p) => ({ ...p }));
  const refused = new Map<string, string>();
  const byFingerprint = new Map<string, number>();
  const byName = new Map<string, number>();
  peers.forEach((p, i) => {
    if (p.fingerprint) byFingerprint.set(p.fingerprint, i);
    byName.set(p.name, i);
  });
  for (const roster of [...rosters].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0))) {
    if (roster.selfRevoked) continue;
    for (const record of roster.members) {
      if (record.fingerprint === selfFingerprint) continue;
      const key = refusalKey(roster.network, record.fingerprint);
      const held = byFingerprint.get(record.fingerprint);
      if (held !== undefined) {
        peers[held] = withMembership(peers[held]!, roster.network, record);
        continue;
      }
      const named = byName.get(record.name);
      if (named !== undefined) {
        const holder = peers[named]!;
        refused.set(
          key,
          holder.fromRoster
            ? `the name ${record.name} belongs to another member (${holder.fingerprint?.slice(0, 16)}…) in ${holder.networks.join(', ')}`
            : `the config's [[peers]] entry ${record.name} has ${holder.fingerprint ? `fingerprint ${holder.fingerprint.slice(0, 16)}…` : 'no pinned fingerprint'}, not this member's; local config wins (pin the member's fingerprint there, or rename one of them)`,
        );
        continue;
      }
      const peer = withMembership(
        { name: record.name, address: firstEndpoint(record), fingerprint: record.fingerprint, networks: [], allowedRoutes: [], fromRoster: true },
        roster.network,
        record,
      );
      byFingerprint.set(record.fingerprint, peers.length);
      byName.set(record.name, peers.length);
      peers.push(peer);
    }
  }
  return { peers, refused };
}
