// vpnctl members | revoke (issue 12): a network's signed roster as the daemon holds it, and an
// admin's revocation of a member. Online commands like peers (online.ts dispatches them here);
// the request goes through the caller's requester, so this file needs no socket of its own.

import type { MemberRow, RevokeResult, RosterStatus } from '../control/api.js';
import { networkNameProblem } from '../config/names.js';
import { peerNameProblem } from '../config/peer-values.js';
import { UsageError } from './args.js';
import { table, type Output } from './output.js';

const TARGET = '[--socket PATH | --config FILE]';

export const MEMBERS_HELP = `usage: vpnctl ${TARGET} [--json] members [--network N]

Lists each network's signed roster: every member an admin signed in, its overlay address,
fingerprint, which admin signed it and whether this node reaches it now. Only networks with
admins (networks.NAME.admins in the config) have a roster. --network: that network alone.`;

export const REVOKE_HELP = `usage: vpnctl ${TARGET} [--json] revoke NAME [--network N]

On an admin: revokes member NAME from the network's roster, signs the revocation and sends it
to every member connected now (the rest get it on their next connection). Every member then
refuses NAME's key in that network. --network: needed when NAME is in several rosters.`;

/** Sends one control request and returns the daemon's output (online.ts's requestWaiting). */
export type Requester = (request: { cmd: 'members' | 'revoke' } & Record<string, unknown>) => Promise<unknown>;

export interface RosterOptions {
  json: boolean;
  /** Arguments after the command: revoke NAME. */
  args: string[];
  network?: string;
}

function networkFlag(network: string | undefined, help: string): { network?: string } {
  if (network === undefined) return {};
  const problem = networkNameProblem(network);
  if (problem) throw new UsageError(`--network ${problem}`, help);
  return { network };
}

export async function runMembers(request: Requester, options: RosterOptions, out: Output): Promise<void> {
  if (options.args.length > 0) throw new UsageError(`unexpected argument${options.args.length > 1 ? 's' : ''} '${options.args.join(' ')}'`, MEMBERS_HELP);
  const output = await request({ cmd: 'members', ...networkFlag(options.network, MEMBERS_HELP) });
  out.stdout(options.json ? JSON.stringify(output, null, 2) : formatMembers(output as RosterStatus[]));
}

export async function runRevoke(request: Requester, options: RosterOptions, out: Output): Promise<void> {
  const [name, ...extra] = options.args;
  if (name === undefined) throw new UsageError('revoke needs the name of the member to revoke (vpnctl members lists them)', REVOKE_HELP);
  if (extra.length > 0) throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''} '${extra.join(' ')}'`, REVOKE_HELP);
  const problem = peerNameProblem(name);
  if (problem) throw new UsageError(`${problem}; give the NAME vpnctl members lists`, REVOKE_HELP);
  const output = await request({ cmd: 'revoke', name, ...networkFlag(options.network, REVOKE_HELP) });
  out.stdout(options.json ? JSON.stringify(output, null, 2) : formatRevoke(output as RevokeResult));
}

function short(fingerprint: string): string {
  return fingerprint ? `${fingerprint.slice(0, 16)}…` : '-';
}

/** An admin as a person knows it: its name where some record tells it, and its fingerprint's start. */
function adminLabel(fingerprint: string, members: MemberRow[]): string {
  const name =
    members.find((m) => m.fingerprint === fingerprint)?.name ??
    members.find((m) => m.signed_by_fingerprint === fingerprint && m.signed_by !== fingerprint)?.signed_by;
  return name ? `${name} (${short(fingerprint)})` : short(fingerprint);
}

/** How a network gets a roster, for [networks.`section`] of the config. */
function rosterFix(section: string): string {
  return (
    `add admins = ["<admin fingerprint>"] to [networks.${section}] in the config of every node ` +
    '(vpnctl init writes it on the node that creates a network), then vpnctl reload'
  );
}

/** `vpnctl members`: one block per network, a blank line between them. */
export function formatMembers(rosters: RosterStatus[]): string {
  if (rosters.length === 0) return `no network has a roster: ${rosterFix('NAME')}`;
  return rosters.map(formatRoster).join('\n\n');
}

function formatRoster(r: RosterStatus): string {
  if (r.admins.length === 0) return `network ${r.network}: no admins, so no roster; ${rosterFix(r.network)}`;
  const admins = r.admins.map((fp) => adminLabel(fp, r.members)).join(', ');
  const count = r.members.length === 0 ? 'no members yet' : `${r.members.length} member${r.members.length === 1 ? '' : 's'}`;
  const lines = [`network ${r.network} — ${count}; admins: ${admins}${r.admin ? '; this node is an admin' : ''}`];
  if (r.members.length === 0) {
    lines.push(
      r.admin
        ? `  add one with vpnctl invite --network ${r.network} --address HOST:PORT (its daemon redeems the invite here)`
        : '  this node learns the roster from an admin once it is connected to one',
    );
  } else {
    const withRoutes = r.members.some((m) => m.routes.length > 0);
    const headers = ['NAME', 'ADDRESS', 'FINGERPRINT', 'SIGNED BY', 'REACHABLE', ...(withRoutes ? ['ROUTES'] : [])];
    const rows = r.members.map((m) => [
      m.name,
      m.address || '-',
      short(m.fingerprint),
      m.signed_by || short(m.signed_by_fingerprint),
      m.self ? 'self' : m.reachable ? 'yes' : 'no',
      ...(withRoutes ? [m.routes.join(',') || '-'] : []),
    ]);
    lines.push(table(headers, rows));
    // Why a listed member is not a peer here: the local config holds its name or key otherwise.
    for (const m of r.members) if (m.refused) lines.push(`note: ${m.name} is in the roster but not a peer here: ${m.refused}`);
  }
  if (r.revoked.length > 0) lines.push(`revoked: ${r.revoked.join(', ')}`);
  return lines.join('\n');
}

/** `vpnctl revoke NAME`: one line. */
export function formatRevoke(r: RevokeResult): string {
  return `revoked ${r.name} (${short(r.fingerprint)}) from ${r.network}; told ${r.told} peer${r.told === 1 ? '' : 's'}`;
}
