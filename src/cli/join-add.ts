// vpnctl join --add --invite vibepn2:…: a node that already runs joins one more network, keeping
// its identity and config. The network's section (with the admin as its admins) and the admin's
// pin are added as text (config/edit.ts: comments and layout stay), the invite is left for the
// daemon, and a reload makes the daemon redeem it on its next connection to the admin.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { resolveNetworkAddress } from '../config/address.js';
import { checkConfigText, readConfigText, withNetworkAdded, withPeerAdded, withPeerReplaced, writeConfigText, type ConfigText } from '../config/edit.js';
import { parseConfig } from '../config/load.js';
import { pendingInvitesPath } from '../config/state-files.js';
import { DEFAULTS, type Config, type NetworkConfig, type PeerConfig } from '../config/types.js';
import { newPeer } from '../config/write.js';
import { addPendingInvite } from '../invite/pending.js';
import { shortInviteAddress, type ShortInviteFields } from '../invite/short-invite.js';
import { formatIp, formatPrefix } from '../netgraph/addr.js';
import { CommandError, UsageError, optionalString, parseBoolFlag, type Parsed } from './args.js';
import { addressFlag, printJson } from './new-node.js';
import type { Output } from './output.js';
import { nodeCertificate } from './whoami.js';

/** Flags that describe a new node's files: with --add, the existing config already says them. */
const NEW_NODE_ONLY = ['cert', 'key', 'name', 'listen', 'socket', 'metrics-listen', 'known-peers', 'force'] as const;

/** The admin as a peer of the edited text: its pin gains the network, or a new pinned entry. */
function withAdmin(file: ConfigText, invite: ShortInviteFields): { text: string; peers: PeerConfig[] } {
  const peers = file.config.peers;
  const byKey = peers.findIndex((p) => p.fingerprint === invite.fingerprint);
  if (byKey >= 0) {
    const peer = { ...peers[byKey]!, networks: [...peers[byKey]!.networks, invite.network] };
    return { text: withPeerReplaced(file, byKey, peer), peers: peers.map((p, i) => (i === byKey ? peer : p)) };
  }
  const byName = peers.find((p) => p.name === invite.name);
  if (byName) {
    throw new CommandError(
      `the config already has a peer named ${invite.name} with ${byName.fingerprint ? `fingerprint ${byName.fingerprint.slice(0, 16)}…` : 'no pinned fingerprint'}, ` +
        `but the invite's admin ${invite.name} has ${invite.fingerprint.slice(0, 16)}…; rename or pin that entry (vpnctl add-peer --force), or ask for an invite from another admin`,
    );
  }
  const peer = newPeer(invite.name, [invite.network], { address: shortInviteAddress(invite), fingerprint: invite.fingerprint });
  return { text: withPeerAdded(file, peer), peers: [...peers, peer] };
}

export function joinShortIntoExisting(values: Parsed['values'], invite: ShortInviteFields, help: string, out: Output): void {
  for (const flag of NEW_NODE_ONLY) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} does not go with --add: this node's config already says it (only --address and --export apply to the new network)`, help);
  }
  const file = readConfigText(optionalString(values, 'config') ?? DEFAULTS.configPath);
  const { config } = file;
  if (config.networks.has(invite.network)) throw new CommandError(`this node is already in network ${invite.network} (${file.path}); nothing to add`);
  const self = nodeCertificate(config, file.path);
  if (self.commonName === invite.name) throw new CommandError(`this node's name ${self.commonName} is the admin's own; the admin would be listed under this node's name`);
  const net: NetworkConfig = {
    name: invite.network,
    prefix: invite.prefix,
    address: addressFlag(values, invite.prefix, help),
    export: parseBoolFlag(values, 'export', true, help),
    mtu: DEFAULTS.mtu,
    routes: [],
    admins: [invite.fingerprint],
  };
  const withNetwork = withNetworkAdded(file, net);
  const networks = new Map([...config.networks, [net.name, net]]);
  // The network first: the admin's entry names it, and each step is loaded back before the next.
  const step: ConfigText = { path: file.path, text: withNetwork, config: checkConfigText(file, withNetwork, { ...config, networks }) };
  const admin = withAdmin(step, invite);
  const expected: Config = { ...config, networks, peers: admin.peers };
  checkConfigText(file, admin.text, expected);
  const pending = pendingInvitesPath(file.path);
  mkdirSync(dirname(pending), { recursive: true });
  // The invite before the config: a config naming the network without it could never become a member.
  addPendingInvite(pending, { network: invite.network, admin: invite.fingerprint, secret: invite.secret });
  writeConfigText(file, admin.text, expected);
  const address = formatIp(resolveNetworkAddress(parseConfig(admin.text, file.path).networks.get(net.name)!, self.fingerprint));
  const expires = new Date(invite.expiresAt * 1000).toISOString();
  if (values.json === true) {
    printJson(out, {
      name: self.commonName,
      fingerprint: self.fingerprint,
      config: file.path,
      network: { name: net.name, prefix: formatPrefix(net.prefix), address, auto: net.address === 'auto' },
      inviter: { name: invite.name, address: shortInviteAddress(invite), fingerprint: invite.fingerprint },
      kind: 'short',
      added: true,
      redeem: true,
      pending,
      expires_at: expires,
      next: 'vpnctl reload',
    });
    return;
  }
  out.stdout(`added network ${net.name} (${formatPrefix(net.prefix)}) to ${file.path}, address ${address}${net.address === 'auto' ? ' (auto)' : ''}; admin ${invite.name} at ${shortInviteAddress(invite)}`);
  out.stdout(`  invite to redeem: ${pending}`);
  out.stdout(`next: sudo vpnctl reload (or restart vpn); the daemon then redeems the invite with ${invite.name} (before ${expires})`);
}
