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

  const files: Array<{ what: string; path: string; parse: (text: string) => unknown; describe: (parsed: never) => string; fix: string; needed: boolean }> = [
    {
      what: 'invite ledger',
      path: ledgerPath(config.path),
      parse: parseLedger,
      describe: (ledger: Exclude<ReturnType<typeof parseLedger>, string>) => {
        const now = Date.now() / 1000;
        const open = ledger.invites.filter((e) => e.uses_left > 0 && e.expires_at > now);
        return `${open.length} invite(s) still usable (${open.reduce((n, e) => n + e.uses_left, 0)} use(s) left), ${ledger.invites.length} recorded`;
      },
      fix: 'restore it from a backup, or delete it to cancel every outstanding invite',
      needed: adminOf.length > 0,
    },
    {
      what: 'roster',
      path: rosterPath(config.path),
      parse: parseRosterFile,
      describe: (records: Uint8Array[]) => `${records.length} signed record(s) held (each verified again at start)`,
      fix: 'delete it: the daemon fetches the records again from its peers',
      needed: true,
    },
    {
      what: 'pending invite',
      path: pendingInvitesPath(config.path),
      parse: parsePendingInvites,
      describe: (pending: Exclude<ReturnType<typeof parsePendingInvites>, string>) =>
        pending.length === 0
          ? 'none: this node holds no invite to redeem'
          : `not yet redeemed: ${pending.map((p) => p.network).join(', ')} (the daemon presents it on its first connection to the admin; vpnctl peers shows a refusal)`,
      fix: 'run vpnctl join again with the invite, or delete the file if this node is a member (vpnctl members)',
      needed: true,
    },
  ];
  for (const file of files) {
    if (!file.needed) continue;
    const text = read(file.path);
    if (text === null) {
      checks.push(make.passed(file.what, `${file.path} does not exist yet`));
      continue;
    }
    if (typeof text !== 'string') {
      checks.push(make.failed(file.what, `cannot read ${file.path}: ${text.error}`, `run vpnctl doctor as the daemon's user (root)`));
      continue;
    }
    const parsed = file.parse(text);
    if (typeof parsed === 'string') {
      checks.push(make.failed(file.what, `${file.path} is damaged (${parsed})`, file.fix));
      continue;
    }
    const mode = modeProblem(file.path);
    if (mode) checks.push(make.failed(`${file.what} permissions`, mode, `chmod 600 ${file.path}`));
    else checks.push(make.passed(file.what, `${file.path}: ${(file.describe as (p: unknown) => string)(parsed)}`));
  }
}
