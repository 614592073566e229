// vpnctl invites: the admin's outstanding short invites, from its ledger (offline, like invite),
// and --cancel ID to withdraw one before it is used: like revoking an auth key. Whoever already
// redeemed it stays a member; `vpnctl revoke NAME` removes a member.

import { loadConfig } from '../config/load.js';
import { ledgerPath } from '../config/state-files.js';
import { DEFAULTS } from '../config/types.js';
import { Ledger, LedgerError, inviteId, type LedgerEntry } from '../invite/ledger.js';
import { CommandError, optionalString, parseCommandFlags, stringFlags } from './args.js';
import { printJson } from './new-node.js';
import { table, type Output } from './output.js';

export const INVITES_HELP = `usage: vpnctl invites [--config P] [--cancel ID] [--json]

Lists the short invites this admin issued (from invites.json beside the config): id, network,
uses left, expiry and who redeemed each. --cancel ID withdraws one (the daemon then refuses it as
invite.invalid); members who redeemed it stay members (vpnctl revoke NAME removes one).`;

type State = 'usable' | 'used up' | 'expired';

function stateOf(entry: LedgerEntry, now: number): State {
  if (now >= entry.expires_at * 1000) return 'expired';
  return entry.uses_left > 0 ? 'usable' : 'used up';
}

function row(entry: LedgerEntry, now: number) {
  return {
    id: inviteId(entry),
    network: entry.network,
    uses_left: entry.uses_left,
    expires_at: new Date(entry.expires_at * 1000).toISOString(),
    state: stateOf(entry, now),
    routes: entry.routes ?? [],
    redeemed: entry.redeemed.map((r) => ({ name: r.name, fingerprint: r.fingerprint, at: new Date(r.at * 1000).toISOString() })),
  };
}

export async function runInvites(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, { ...stringFlags('config', 'cancel'), json: { type: 'boolean' } }, INVITES_HELP, out);
  if (values === undefined) return;
  const config = loadConfig(optionalString(values, 'config') ?? DEFAULTS.configPath);
  const ledger = new Ledger(ledgerPath(config.path));
  const now = Date.now();
  const cancel = optionalString(values, 'cancel');
  try {
    if (cancel !== undefined) {
      const entry = await ledger.cancel(cancel);
      if (values.json === true) return printJson(out, { cancelled: row(entry, now) });
      const used = entry.redeemed.length ? `; ${entry.redeemed.map((r) => r.name).join(', ')} redeemed it and stay${entry.redeemed.length === 1 ? 's' : ''} (vpnctl revoke NAME to remove)` : '';
      out.stdout(`cancelled invite ${inviteId(entry)} to ${entry.network} (${entry.uses_left} use${entry.uses_left === 1 ? '' : 's'} left)${used}`);
      return;
    }
    const rows = (await ledger.read()).invites.map((e) => row(e, now));
    if (values.json === true) return printJson(out, rows);
    if (rows.length === 0) {
      out.stdout(`no invites in ${ledger.path}; make one with vpnctl invite --network NAME --address HOST:PORT`);
      return;
    }
    out.stdout(
      table(
        ['ID', 'NETWORK', 'USES LEFT', 'EXPIRES', 'STATE', 'REDEEMED BY'],
        rows.map((r) => [r.id, r.network, String(r.uses_left), r.expires_at, r.state, r.redeemed.map((x) => x.name).join(',') || '-']),
      ),
    );
  } catch (error) {
    if (error instanceof LedgerError) throw new CommandError(error.message);
    throw error;
  }
}
