// vpnctl join: a new identity and a config that joins an invite's network. Three kinds of invite:
//   vibepn2: (short, issue 12)  the admin pinned as a peer and listed in admins, and the invite's
//                               secret left for the daemon, which redeems it on its first
//                               connection to the admin: nothing to run on the admin
//   vibepn1: (signed)           the inviter pinned; prints the add-peer to run on the inviter
//   the original's plain JSON   the same, with a warning that nothing could be verified

import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { peerNameProblem, undialableProblem } from '../config/peer-values.js';
import { pendingInvitesPath } from '../config/state-files.js';
import { newPeer } from '../config/write.js';
import { parseInvite } from '../crypto/invite.js';
import { PENDING_MODE, addPendingInvite } from '../invite/pending.js';
import { SHORT_INVITE_PREFIX, decodeShortInvite, shortInviteAddress, type ShortInviteFields } from '../invite/short-invite.js';
import { formatPrefix, parseCidr } from '../netgraph/addr.js';
import { addPeerCommand } from './add-peer.js';
import { CommandError, UsageError, optionalString, parseCommandFlags, stringFlags, type Parsed } from './args.js';
import { joinShortIntoExisting } from './join-add.js';
import { NEW_NODE_FLAGS, createNewNode, describeAddress, networkJson, printJson, type NewNode } from './new-node.js';
import type { Output } from './output.js';

export const JOIN_HELP = `usage: vpnctl join [--config P] [--cert P] [--key P] [--name N] [--add]
                  (--invite STRING | --invite-file FILE) [--address auto|IP] [--export=true|false]
                  [--listen HOST:PORT] [--socket P] [--metrics-listen ADDR] [--known-peers P] [--force]
                  [--json]

Creates this node's identity and a config that joins the invite's network with the inviter as a
pinned peer.
  short invite (vibepn2:)  the inviter is also listed as the network's admin, and the invite is
                           kept (mode 0600, beside the config) for the daemon to redeem on its
                           first connection to the admin: nothing to run on the admin
  long invite (vibepn1:)   prints the command to run on the inviter so it accepts this node
                           (--json: as one JSON object, with that command as add_peer_command)
  --add                    this node already runs: join one more network with a short invite,
                           keeping its identity and config (then vpnctl reload); only --config,
                           --address and --export apply`;

/** The invite file's text, or a CommandError that says in words why it cannot be read. */
function readInviteFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file (check the path, or pass the invite itself with --invite STRING)'
        : code === 'EACCES'
          ? 'permission denied (it is written mode 0600: run as its owner, or copy it readable)'
          : code === 'EISDIR'
            ? 'it is a directory (give the file the invite was written to)'
            : (error as Error).message;
    throw new CommandError(`cannot read the invite file ${path}: ${why}`);
  }
}

/** --name must differ from the inviter's: both would be listed under one name. */
function notInviterName(inviter: string): (name: string) => void {
  return (name) => {
    if (name === inviter) throw new UsageError(`--name ${name} is the inviter's own name; choose a different name for this node`, JOIN_HELP);
  };
}

export async function runJoin(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, { ...NEW_NODE_FLAGS, ...stringFlags('invite', 'invite-file'), add: { type: 'boolean' } }, JOIN_HELP, out);
  if (values === undefined) return;
  const inviteText = optionalString(values, 'invite');
  const inviteFile = optionalString(values, 'invite-file');
  if (!inviteText === !inviteFile) throw new UsageError('give exactly one of --invite STRING or --invite-file FILE', JOIN_HELP);
  const raw = (inviteFile ? readInviteFile(inviteFile) : inviteText!).trim();
  if (raw.startsWith(SHORT_INVITE_PREFIX)) return joinShort(values, raw, out);
  if (values.add === true) throw new UsageError('--add takes a short invite (vibepn2:); with a long one, add the network and the inviter to the config by hand', JOIN_HELP);
  return joinLong(values, raw, out);
}

/** The common part of join's JSON: this node and the network it joined. */
function nodeJson(node: NewNode, network: string): Record<string, unknown> {
  return {
    name: node.name,
    fingerprint: node.identity.fingerprint,
    cert: node.certPath,
    key: node.keyPath,
    config: node.configPath,
    network: networkJson(node.config.networks.get(network)!, node.identity.fingerprint),
  };
}

async function joinShort(values: Parsed['values'], raw: string, out: Output): Promise<void> {
  const decoded = decodeShortInvite(raw, new Date());
  // The code first: scripts and the admin's own refusals (redeem) use the same words.
  if (!decoded.ok) throw new CommandError(`${decoded.code}: ${decoded.message}`);
  const invite: ShortInviteFields = decoded.invite;
  if (values.add === true) return joinShortIntoExisting(values, invite, JOIN_HELP, out);
  const address = shortInviteAddress(invite);
  // The encoder takes any valid host; a listen address copied by mistake would dial nothing.
  const undialable = undialableProblem(invite.endpoint);
  if (undialable) throw new CommandError(`invite.invalid: the invite's admin address ${undialable}; ask the admin for a new invite`);
  // decodeShortInvite checked every field with the config's rules, so newPeer cannot fail.
  const admin = newPeer(invite.name, [invite.network], { address, fingerprint: invite.fingerprint });
  let pending = '';
  const node = await createNewNode(
    values,
    { name: invite.network, prefix: invite.prefix, admins: [invite.fingerprint] },
    [admin],
    JOIN_HELP,
    {
      checkName: notInviterName(invite.name),
      // Written first: without it the daemon could never become a member, and the config alone
      // would look like a finished join.
      beforeWrite: (configPath) => {
        pending = pendingInvitesPath(configPath);
        // The config's directory, as writeConfigFile would make it a moment later.
        mkdirSync(dirname(pending), { recursive: true });
        addPendingInvite(pending, { network: invite.network, admin: invite.fingerprint, secret: invite.secret });
      },
    },
  );
  const expires = new Date(invite.expiresAt * 1000).toISOString();
  if (values.json === true) {
    printJson(out, {
      ...nodeJson(node, invite.network),
      inviter: { name: invite.name, address, fingerprint: invite.fingerprint },
      kind: 'short',
      signed: false,
      warnings: [],
      redeem: true,
      pending,
      expires_at: expires,
      add_peer_command: null,
    });
    return;
  }
  out.stdout(`joined network ${invite.network} (${formatPrefix(invite.prefix)}) via ${invite.name} at ${address}`);
  out.stdout(`  this node   ${node.name}, fingerprint ${node.identity.fingerprint}`);
  out.stdout(`  address     ${describeAddress(node, invite.network)}`);
  out.stdout(`  admin       ${invite.name}, fingerprint ${invite.fingerprint}`);
  out.stdout(`wrote ${node.configPath}, ${node.certPath}, ${node.keyPath}`);
  out.stdout(`  invite to redeem: ${pending} (mode ${PENDING_MODE.toString(8).padStart(4, '0')})`);
  out.stdout(
    `next: start the daemon (sudo vpn -config ${node.configPath}); on its first connection to ${invite.name} it redeems the invite ` +
      `(before ${expires}) and becomes a member: nothing to run on ${invite.name}`,
  );
}

/** vibepn1: and the original's plain JSON invites, exactly as before issue 12. */
async function joinLong(values: Parsed['values'], raw: string, out: Output): Promise<void> {
  const { invite, signed } = parseInvite(raw);
  // The invite module accepts any node name an original VibePN node may have; this node's config
  // will list the inviter under it, so it must also be a peer name the loader accepts.
  const inviterProblem = peerNameProblem(invite.inviter.name);
  if (inviterProblem) {
    throw new CommandError(
      `the invite's inviter name ${inviterProblem}, and this node would list the inviter under it: ` +
        `ask for a new invite made with vpnctl invite --long --name NAME`,
    );
  }
  // parseInvite checked these fields with the config's rules, so neither parse can fail.
  const inviter = newPeer(invite.inviter.name, [invite.network], { address: invite.inviter.address, fingerprint: invite.inviter.fingerprint });
  const prefix = parseCidr(invite.prefix);
  if (!prefix.ok) throw new CommandError(`invite network prefix ${prefix.error}`);
  const node = await createNewNode(values, { name: invite.network, prefix: prefix.prefix }, [inviter], JOIN_HELP, {
    checkName: notInviterName(invite.inviter.name),
  });

  const warnings = signed
    ? []
    : [
        `this is an unsigned invite (original VibePN format); the inviter's fingerprint ${invite.inviter.fingerprint} could not be verified — compare it with the inviter out of band`,
      ];
  for (const warning of warnings) out.stderr(`warning: ${warning}`);
  const addPeer = addPeerCommand({
    name: node.name,
    address: `<this-host>:${node.config.daemon.listen.port}`,
    fingerprint: node.identity.fingerprint,
    networks: [invite.network],
  });
  if (values.json === true) {
    printJson(out, {
      ...nodeJson(node, invite.network),
      inviter: { name: invite.inviter.name, address: invite.inviter.address, fingerprint: invite.inviter.fingerprint },
      kind: signed ? 'long' : 'original',
      signed,
      warnings,
      redeem: false,
      pending: null,
      add_peer_command: addPeer,
    });
    return;
  }
  out.stdout(`joined network ${invite.network} (${invite.prefix}) via ${invite.inviter.name} at ${invite.inviter.address}`);
  out.stdout(`  this node   ${node.name}, fingerprint ${node.identity.fingerprint}`);
  out.stdout(`  address     ${describeAddress(node, invite.network)}`);
  out.stdout(`wrote ${node.configPath}, ${node.certPath}, ${node.keyPath}`);
  out.stdout(`on ${invite.inviter.name}, run:`);
  out.stdout(`  ${addPeer}`);
}
