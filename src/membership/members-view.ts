// `vpnctl members`: the rosters as this node holds them, one row per current member, with what
// only this node knows (whether it has a session with the member, why its config refuses one).

import type { RosterStatus } from '../control/api.js';
import type { Membership } from './membership.js';

export interface MembersViewDeps {
  /** This node has an open session with the fingerprint. */
  reachable(fingerprint: string): boolean;
  /** The name this node knows a fingerprint by (a peer, or a member of any roster). */
  nameOf(fingerprint: string): string | undefined;
  now: number;
}

export function membersView(membership: Membership, network: string | undefined, deps: MembersViewDeps): RosterStatus[] {
  const out: RosterStatus[] = [];
  for (const [name, roster] of membership.rosterMap) {
    if (network !== undefined && name !== network) continue;
    const revoked: string[] = [];
    for (const { fingerprint } of roster.digest()) {
      const held = roster.get(fingerprint)!.record;
      if (held.kind === 'revoked') revoked.push(held.name);
    }
    out.push({
      network: name,
      admins: [...membership.admins(name)],
      admin: membership.isAdminOf(name),
      members: roster.members(deps.now).map((record) => {
        const self = record.fingerprint === membership.selfFingerprint;
        return {
          network: name,
          name: record.name,
          address: record.address,
          fingerprint: record.fingerprint,
          routes: [...record.routes],
          endpoints: [...record.endpoints],
          signed_by: deps.nameOf(record.signerFingerprint) ?? record.signerFingerprint,
          signed_by_fingerprint: record.signerFingerprint,
          version: record.version.toString(),
          issued_at: new Date(record.issuedAt).toISOString(),
          expires_at: record.expiresAt === undefined ? null : new Date(record.expiresAt).toISOString(),
          self,
          reachable: self || deps.reachable(record.fingerprint),
          refused: self ? null : membership.refusal(name, record.fingerprint),
        };
      }),
      revoked: revoked.sort(),
    });
  }
  return out;
}
