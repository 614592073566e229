// vpnctl doctor's checks of membership state (issue 12): for each network with admins, whether
// this node is one, and the files beside the config that the daemon reads: the admin's invite
// ledger, the held roster, a joiner's invite still to redeem. Each failure with its fix.

import { statSync } from 'node:fs';
import type { Config } from '../config/types.js';
import { ledgerPath, pendingInvitesPath, rosterPath } from '../config/state-files.js';
import { errorText, readTextIfExistsSync } from '../crypto/atomic-file.js';
import { parseLedger } from '../invite/ledger.js';
import { parsePendingInvites } from '../invite/pending.js';
import { parseRosterFile } from '../membership/roster-file.js';
import type { Check } from './doctor.js';

type Make = (check: string, detail: string, fix?: string) => Check;

/** The file's text, null when absent, or the read error's words. */
function read(path: string): string | null | { error: string } {
  try {
    return readTextIfExistsSync(path) ?? null;
  } catch (err) {
    return { error: errorText(err) };
  }
}

function modeProblem(path: string): string | null {
  const mode = statSync(path).mode & 0o777;
  return (mode & 0o077) === 0 ? null : `${path} is 0${mode.toString(8)}; it must be readable by its owner only`;
}

export function checkMembership(config: Config, ownFingerprint: string | undefined, make: { passed: Make; warned: Make; failed: Make }, checks: Check[]): void {
  const networks = [...config.networks.values()].filter((net) => net.admins?.length);
  if (networks.length === 0) return;
  const adminOf = networks.filter((net) => ownFingerprint !== undefined && net.admins!.includes(ownFingerprint));
  for (const net of networks) {
    const mine = adminOf.includes(net);
    checks.push(make.passed(`admins of ${net.name}`, `${net.admins!.length} admin(s)${mine ? '; this node is one: it issues invites and signs membership (keep its key file like a CA key)' : ''}`));
  }

  if (adminOf.length > 0) {
    checkFile(make, checks, 'invite ledger', ledgerPath(config.path), parseLedger, 'restore it from a backup, or delete it to cancel every outstanding invite', (ledger) => {
      const now = Date.now() / 1000;
      const open = ledger.invites.filter((e) => e.uses_left > 0 && e.expires_at > now);
      return `${open.length} invite(s) still usable (${open.reduce((n, e) => n + e.uses_left, 0)} use(s) left), ${ledger.invites.length} recorded`;
    });
  }
  checkFile(make, checks, 'roster', rosterPath(config.path), parseRosterFile, 'delete it: the daemon fetches the records again from its peers', (records) =>
    `${records.length} signed record(s) held (each verified again at start)`,
  );
  checkFile(
    make,
    checks,
    'pending invite',
    pendingInvitesPath(config.path),
    parsePendingInvites,
    'run vpnctl join again with the invite, or delete the file if this node is a member (vpnctl members)',
    (pending) =>
      pending.length === 0
        ? 'none: this node holds no invite to redeem'
        : `not yet redeemed: ${pending.map((p) => p.network).join(', ')} (the daemon presents it on its first connection to the admin; vpnctl peers shows a refusal)`,
  );
}

/** One state file: absent is fine; unreadable, damaged or open to others fails with the fix; else what it holds. */
function checkFile<T>(
  make: { passed: Make; failed: Make },
  checks: Check[],
  what: string,
  path: string,
  parse: (text: string) => T | string,
  fix: string,
  describe: (parsed: T) => string,
): void {
  const text = read(path);
  if (text === null) return void checks.push(make.passed(what, `${path} does not exist yet`));
  if (typeof text !== 'string') return void checks.push(make.failed(what, `cannot read ${path}: ${text.error}`, `run vpnctl doctor as the daemon's user (root)`));
  const parsed = parse(text);
  if (typeof parsed === 'string') return void checks.push(make.failed(what, `${path} is damaged (${parsed})`, fix));
  const mode = modeProblem(path);
  if (mode) checks.push(make.failed(`${what} permissions`, mode, `chmod 600 ${path}`));
  else checks.push(make.passed(what, `${path}: ${describe(parsed)}`));
}
