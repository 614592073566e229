// Where a node keeps the state it writes itself, beside its config file (issue 12): an admin's
// invite ledger, every member's copy of the signed roster, and a joiner's invite still to redeem.
// One place derives the paths so vpnctl and the daemon can never disagree on them.

import { dirname, join } from 'node:path';

/** An admin's redemption ledger for short invites (src/invite/ledger.ts). */
export function ledgerPath(configPath: string): string {
  return join(dirname(configPath), 'invites.json');
}

/** The signed membership records this node holds (src/membership/roster-file.ts). */
export function rosterPath(configPath: string): string {
  return join(dirname(configPath), 'roster.json');
}

/** Short invites `vpnctl join` wrote for the daemon to redeem (src/invite/pending.ts). */
export function pendingInvitesPath(configPath: string): string {
  return join(dirname(configPath), 'pending-invites.json');
}
