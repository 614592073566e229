// vpnctl invite: a short `vibepn2:` invite by default (issue 12), redeemed once against this
// admin's ledger, so the joiner needs no add-peer step here; or, with --long, the signed
// `vibepn1:` invite of before, which any node can make and which still needs add-peer.
//
// stdout's first line is the invite alone, so `INVITE=$(vpnctl invite …)` keeps working; the
// hint about how to use it goes to stderr whenever stdout carries the invite.

import { randomBytes } from 'node:crypto';
import QRCode from 'qrcode';
import { DEFAULTS, type Config, type NetworkConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { ledgerPath } from '../config/state-files.js';
import { peerNameProblem, undialableProblem } from '../config/peer-values.js';
import { formatEndpoint, parseDialAddress } from '../config/values.js';
import { loadIdentity, type Identity } from '../crypto/identity.js';
import { MAX_INVITE_TTL_SECONDS, createInvite, parseInvite } from '../crypto/invite.js';
import { LedgerError, Ledger, MAX_INVITE_ROUTES, MAX_INVITE_USES, inviteId } from '../invite/ledger.js';
import { MAX_INVITE_ADMIN_NAME_BYTES, SHORT_INVITE_SECRET_BYTES, ShortInviteError, encodeShortInvite } from '../invite/short-invite.js';
import { formatPrefix, parseCidr } from '../netgraph/addr.js';
import type { HostPort } from '../netgraph/hostport.js';
import {
  CommandError,
  FORCE_FLAG,
  UsageError,
  flagValue,
  optionalString,
  parseCommandFlags,
  parseDuration,
  requireString,
  stringFlags,
  type OptionSpec,
  type Parsed,
} from './args.js';
import { JSON_FLAG, nodeNameFlag, printJson, refuseExisting, writeSecretFile } from './new-node.js';
import type { Output } from './output.js';

export const INVITE_HELP = `usage: vpnctl invite [--config P] --network N --address HOST:PORT [--uses K] [--ttl DURATION]
                    [--routes CIDR,...] [--qr] [--long [--name N]] [--out FILE|-] [--force] [--json]

Prints an invite for another machine to join NETWORK through this node. By default a short
vibepn2: invite (at most 200 characters), recorded in this admin's ledger and redeemed by the
joiner's daemon on its first connection here: no add-peer step. Only an admin of the network
(networks.NAME.admins in the config; vpnctl init makes the creator one) can make it.
  --address HOST:PORT  where the joiner reaches this node's QUIC port (required; not 0.0.0.0)
  --uses K             how many machines may join with it, 1..${MAX_INVITE_USES} (default 1)
  --ttl DURATION       validity, e.g. 30m, 24h, 7d; at most 365d (default 24h)
  --routes CIDR,...    subnets the joiner may announce as a subnet router (signed into its
                       membership record; it still lists them in its networks.NAME.routes)
  --qr                 also print the invite as a QR code, to scan on the new machine
                       (with --json on stderr, so stdout stays one JSON object)
  --long               a signed vibepn1: invite instead (no admin needed, but the inviter then
                       runs the add-peer command join prints); --uses and --qr do not apply
  --name N             --long only: the name the joiner will know this node by (default: CN)
  --out FILE|-         write the invite to FILE (mode 0600) or - for stdout (default -)
  --json               print the invite and its details as one JSON object`;

const INVITE_FLAGS: OptionSpec = {
  ...stringFlags('config', 'network', 'address', 'name', 'ttl', 'out', 'uses', 'routes'),
  qr: { type: 'boolean' },
  long: { type: 'boolean' },
  ...FORCE_FLAG,
  ...JSON_FLAG,
};

/** --ttl in seconds: a duration, positive, and no longer than an invite may live. */
function ttlFlag(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === null || seconds <= 0) throw new UsageError(`--ttl must be a duration like 30m, 24h or 7d, got '${text}'`, INVITE_HELP);
  if (seconds > MAX_INVITE_TTL_SECONDS) {
    throw new UsageError(
      `--ttl ${text} is longer than an invite may be valid (at most 365d): whoever holds it can join until it expires; ` +
        `use a shorter --ttl (default 24h) and send a new invite when needed`,
      INVITE_HELP,
    );
  }
  return seconds;
}

/** --uses: a whole number of joiners; the ledger's ceiling keeps an invite from being a standing credential. */
function usesFlag(text: string | undefined): number {
  if (text === undefined) return 1;
  const uses = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(uses) || uses < 1 || uses > MAX_INVITE_USES) {
    throw new UsageError(
      `--uses must be a whole number 1..${MAX_INVITE_USES} (how many machines may join with this invite), got '${text}'; ` +
        `for more, send more invites`,
      INVITE_HELP,
    );
  }
  return uses;
}

/** The flags --long and the short invite do not share, refused as usage errors naming the other. */
function checkKindFlags(values: Parsed['values']): void {
  if (values.long === true) {
    if (values.uses !== undefined) {
      throw new UsageError(
        '--uses applies only to short invites: a --long invite is signed, not recorded, and whoever holds it may join until it expires; ' +
          'leave out --long to limit the uses, or --uses to make a long invite',
        INVITE_HELP,
      );
    }
    if (values.routes !== undefined) {
      throw new UsageError('--routes applies only to short invites (it is signed into the member\'s record when it redeems one); with --long, the inviter lists them in add-peer --allowed-routes', INVITE_HELP);
    }
    if (values.qr === true) {
      throw new UsageError('--qr needs a short invite: a --long one is over 1000 characters, too dense a QR code for a terminal; leave out --long', INVITE_HELP);
    }
  } else if (values.name !== undefined) {
    throw new UsageError(
      "--name applies only to --long invites: a short invite carries this node's certificate name (CN), the name the " +
        'joiner must know it by when it redeems the invite; leave out --name, or add --long',
      INVITE_HELP,
    );
  }
}

interface InviteRequest {
  values: Parsed['values'];
  networkName: string;
  network: NetworkConfig;
  address: HostPort;
  ttlText: string;
  ttlSeconds: number;
  config: Config;
  identity: Identity;
  target: string;
}

export async function runInvite(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, INVITE_FLAGS, INVITE_HELP, out);
  if (values === undefined) return;
  checkKindFlags(values);
  const networkName = requireString(values, 'network', INVITE_HELP);
  const address = flagValue('address', parseDialAddress(requireString(values, 'address', INVITE_HELP)), INVITE_HELP);
  const undialable = undialableProblem(address);
  if (undialable) throw new UsageError(`--address ${undialable}`, INVITE_HELP);
  const ttlText = optionalString(values, 'ttl') ?? '24h';
  const ttlSeconds = ttlFlag(ttlText);
  const uses = usesFlag(optionalString(values, 'uses'));
  const config = loadConfig(optionalString(values, 'config') ?? DEFAULTS.configPath);
  const network = config.networks.get(networkName);
  if (!network) {
    const known = [...config.networks.keys()].join(', ') || 'none';
    throw new CommandError(`network '${networkName}' is not in ${config.path} (networks: ${known})`);
  }
  const identity = loadIdentity(config.identity.cert, config.identity.key, config.identity.fingerprint);
  const target = optionalString(values, 'out') ?? '-';
  const request: InviteRequest = { values, networkName, network, address, ttlText, ttlSeconds, config, identity, target };
  if (values.long === true) longInvite(request, out);
  else await shortInvite(request, uses, out);
}

/** The signed vibepn1: invite, exactly as before issue 12. */
function longInvite(r: InviteRequest, out: Output): void {
  // The joiner lists this node under this name, so it must be one its loader accepts.
  const name = nodeNameFlag(r.values, INVITE_HELP, { name: r.identity.name, what: `the certificate's name (CN of ${r.config.identity.cert})` });
  const invite = createInvite(
    r.identity,
    { network: r.networkName, prefix: formatPrefix(r.network.prefix), address: formatEndpoint(r.address), name },
    { ttlSeconds: r.ttlSeconds },
  );
  if (r.target !== '-') {
    refuseExisting([r.target], r.values.force === true);
    writeSecretFile(r.target, invite + '\n');
  }
  if (r.values.json === true) {
    const { invite: fields } = parseInvite(invite);
    printJson(out, {
      invite,
      kind: 'long',
      network: r.networkName,
      prefix: fields.prefix,
      name: fields.inviter.name,
      address: fields.inviter.address,
      fingerprint: fields.inviter.fingerprint,
      issued_at: fields.issued_at,
      expires_at: fields.expires_at,
      out: r.target === '-' ? null : r.target,
    });
    return;
  }
  if (r.target === '-') out.stdout(invite);
  else out.stdout(`wrote invite for network ${r.networkName} to ${r.target} (valid ${r.ttlText})`);
}

/**
 * Only a listed admin may issue: the joiners' daemons believe roster records signed by the
 * admins alone, so an invite redeemed anywhere else could never make its joiner a member.
 */
function checkAdmin(r: InviteRequest): void {
  const { networkName, config, identity } = r;
  const admins = r.network.admins;
  const own = identity.fingerprint;
  if (admins === undefined) {
    throw new CommandError(
      `network ${networkName} has no admins in ${config.path}, so no node can redeem a short invite to it: ` +
        `to make this node its admin, add admins = ["${own}"] to [networks.${networkName}] and run vpnctl reload; ` +
        `or make a signed invite with vpnctl invite --long (the inviter then runs the add-peer command join prints)`,
    );
  }
  if (!admins.includes(own)) {
    const listed = admins.map((fp) => `"${fp.slice(0, 16)}…"`).join(', ');
    throw new CommandError(
      `this node is not an admin of ${networkName} (admins = [${listed}] in ${config.path}): run vpnctl invite on an admin, ` +
        `or add this node's fingerprint ${own} to networks.${networkName}.admins (then vpnctl reload), or use --long`,
    );
  }
}

/** The admin name the invite carries: the CN, which the joiner's loader must accept as a peer name. */
function adminName(r: InviteRequest): string {
  const name = r.identity.name;
  const problem =
    peerNameProblem(name) ??
    (name.length > MAX_INVITE_ADMIN_NAME_BYTES ? `'${name}' is longer than the ${MAX_INVITE_ADMIN_NAME_BYTES} characters a short invite carries` : null);
  if (problem === null) return name;
  throw new CommandError(
    `this node's name cannot go into a short invite (the joiner lists the admin under it): ${problem} (CN of ${r.config.identity.cert}); ` +
      `make a signed invite with vpnctl invite --long --name NAME, or give this node a new name with vpnctl rekey --name NAME --force`,
  );
}

/** The invite as a QR code of half-height blocks (about 50 columns); its trailing colour-reset line dropped. */
async function terminalQr(text: string): Promise<string> {
  const lines = (await QRCode.toString(text, { type: 'terminal', small: true })).split('\n');
  // The library's colour codes (ESC [ n m) are all a trailing line holds.
  // eslint-disable-next-line no-control-regex
  const visible = (line: string) => line.replace(/\u001b\[[0-9;]*m/g, '').trim() !== '';
  while (lines.length > 0 && !visible(lines[lines.length - 1]!)) lines.pop();
  return lines.join('\n');
}

/** --routes: canonical CIDRs, host bits zero, none twice, at most a record's worth. */
function routesFlag(text: string | undefined): string[] {
  if (text === undefined || text.trim() === '') return [];
  const out: string[] = [];
  for (const item of text.split(',').map((t) => t.trim()).filter((t) => t !== '')) {
    const parsed = parseCidr(item);
    if (!parsed.ok) throw new UsageError(`--routes ${parsed.error}`, INVITE_HELP);
    const canonical = formatPrefix(parsed.prefix);
    if (!out.includes(canonical)) out.push(canonical);
  }
  if (out.length > MAX_INVITE_ROUTES) throw new UsageError(`--routes lists ${out.length} prefixes; a membership record holds at most ${MAX_INVITE_ROUTES}`, INVITE_HELP);
  return out;
}

async function shortInvite(r: InviteRequest, uses: number, out: Output): Promise<void> {
  checkAdmin(r);
  const routes = routesFlag(optionalString(r.values, 'routes'));
  const name = adminName(r);
  const secret = new Uint8Array(randomBytes(SHORT_INVITE_SECRET_BYTES));
  const expiresAt = Math.floor(Date.now() / 1000) + r.ttlSeconds;
  let invite: string;
  try {
    invite = encodeShortInvite({
      endpoint: r.address,
      fingerprint: r.identity.fingerprint,
      network: r.networkName,
      name,
      prefix: r.network.prefix,
      expiresAt,
      secret,
    });
  } catch (error) {
    // The module's words name the field; here the fix is also a flag away.
    if (error instanceof ShortInviteError) {
      throw new CommandError(/long invite/.test(error.message) ? `${error.message} (--long)` : `${error.message}, or make a long invite with --long`);
    }
    throw error;
  }
  if (r.target !== '-') refuseExisting([r.target], r.values.force === true);
  const ledger = ledgerPath(r.config.path);
  let id: string;
  try {
    // Recorded before the invite is handed out: an invite the ledger does not know is refused.
    id = inviteId(await new Ledger(ledger).issue({ secret, network: r.networkName, uses, expiresAt, routes }));
  } catch (error) {
    if (error instanceof LedgerError) throw new CommandError(error.message);
    throw error;
  }
  if (r.target !== '-') writeSecretFile(r.target, invite + '\n');
  const qr = r.values.qr === true ? await terminalQr(invite) : undefined;
  const expires = new Date(expiresAt * 1000).toISOString();
  if (r.values.json === true) {
    printJson(out, {
      invite,
      kind: 'short',
      network: r.networkName,
      prefix: formatPrefix(r.network.prefix),
      name,
      address: formatEndpoint(r.address),
      fingerprint: r.identity.fingerprint,
      uses,
      routes,
      expires_at: expires,
      id,
      ledger,
      out: r.target === '-' ? null : r.target,
    });
    // stdout stays one JSON object for scripts; the code is for the person at the terminal.
    if (qr !== undefined) out.stderr(qr);
    return;
  }
  const validity = `invite ${id}, valid ${r.ttlText} (until ${expires}), ${uses} use${uses === 1 ? '' : 's'}`;
  const join = r.target === '-' ? `--invite ${invite}` : `--invite-file ${r.target} (copied there)`;
  const hint = `on the new machine: sudo vpnctl join ${join} && sudo vpn`;
  if (r.target === '-') {
    out.stdout(invite);
    if (qr !== undefined) out.stdout(qr);
    out.stderr(`${validity}; ${hint}`);
  } else {
    out.stdout(`wrote invite for network ${r.networkName} to ${r.target} (${validity})`);
    if (qr !== undefined) out.stdout(qr);
    out.stdout(hint);
  }
}
