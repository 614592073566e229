// vpnctl add-peer: adds or replaces a [[peers]] table in the config, validated with the config's
// own rules and refused when the daemon would refuse it (an inbound-only peer without a pin,
// this node's own certificate as a peer). The file is edited as text (config/edit.ts): a user's
// comments and layout survive, and only the peer's own lines change.

import { readFileSync } from 'node:fs';
import { locateKey, readConfigText, withPeerAdded, withPeerReplaced, writeConfigText } from '../config/edit.js';
import { findSelfPeers } from '../config/load.js';
import { peerNameProblem, undialableProblem } from '../config/peer-values.js';
import { DEFAULTS, type Config, type PeerConfig } from '../config/types.js';
import { INBOUND_ONLY_NEEDS_FINGERPRINT, PIN_SOURCE, formatOptionalEndpoint, parseFingerprint, parsePeerAddress } from '../config/values.js';
import { fingerprintOfPem } from '../crypto/identity.js';
import { formatPrefix, parseCidr, type Prefix } from '../netgraph/addr.js';
import { CommandError, FORCE_FLAG, UsageError, flagValue, optionalString, parseCommandFlags, requireString, splitList, stringFlags } from './args.js';
import { shellWord, type Output } from './output.js';
import { autoAddressClashes } from './auto-addresses.js';

export const ADD_PEER_HELP = `usage: vpnctl add-peer [--config P] --name N --address HOST:PORT [--fingerprint FP] --networks a,b
                      [--allowed-routes CIDR,...] [--original] [--force] [--json]

Adds a [[peers]] table to the config, after the last one; the rest of the file, comments
included, stays as written. --address "" means never dial (accept inbound only), and then
--fingerprint is required. Without --fingerprint the peer is trusted on first use: its key is
learned from the first connection to --address. --original marks a node that runs the original
VibePN (Go): it is always dialed, so it needs --address. --force replaces a peer of the same
name, rewriting only the lines of its table whose value changes. --json prints the result as
one JSON object.
Run 'vpnctl reload' afterwards if the daemon is running.`;

/** The `vpnctl add-peer` command line for a peer; address and fingerprint are shell text as given (they may be placeholders). */
export function addPeerCommand(peer: {
  config?: string;
  name: string;
  address: string;
  fingerprint: string;
  networks: readonly string[];
  allowedRoutes?: readonly Prefix[];
  original?: boolean;
  force?: boolean;
}): string {
  const words = ['vpnctl', 'add-peer'];
  if (peer.config !== undefined && peer.config !== DEFAULTS.configPath) words.push('--config', shellWord(peer.config));
  words.push('--name', shellWord(peer.name), '--address', peer.address, '--fingerprint', peer.fingerprint, '--networks', shellWord(peer.networks.join(',')));
  if (peer.allowedRoutes && peer.allowedRoutes.length > 0) words.push('--allowed-routes', shellWord(peer.allowedRoutes.map(formatPrefix).join(',')));
  if (peer.original) words.push('--original');
  if (peer.force) words.push('--force');
  return words.join(' ');
}

/** The add-peer that re-enters a configured peer as it is, with `fingerprint` (shell text, often a placeholder) pinned. */
export function repinCommand(peer: PeerConfig, configPath: string, fingerprint: string): string {
  return addPeerCommand({
    config: configPath,
    name: peer.name,
    address: shellWord(formatOptionalEndpoint(peer.address)),
    fingerprint,
    networks: peer.networks,
    allowedRoutes: peer.allowedRoutes,
    original: peer.original === true,
    force: true,
  });
}

export async function runAddPeer(argv: string[], out: Output): Promise<void> {
  const flags = {
    ...stringFlags('config', 'name', 'address', 'fingerprint', 'networks', 'allowed-routes'),
    ...FORCE_FLAG,
    original: { type: 'boolean' as const },
    json: { type: 'boolean' as const },
  };
  const values = parseCommandFlags(argv, flags, ADD_PEER_HELP, out);
  if (values === undefined) return;
  const name = requireString(values, 'name', ADD_PEER_HELP);
  const nameProblem = peerNameProblem(name);
  if (nameProblem) throw new UsageError(`--name ${nameProblem}`, ADD_PEER_HELP);
  const addressText = optionalString(values, 'address');
  if (addressText === undefined) throw new UsageError('missing required flag --address (use --address "" to accept inbound only)', ADD_PEER_HELP);
  const address = flagValue('address', parsePeerAddress(addressText), ADD_PEER_HELP);
  const undialable = address === null ? null : undialableProblem(address);
  if (undialable) throw new UsageError(`--address ${undialable}`, ADD_PEER_HELP);
  const networks = splitList(requireString(values, 'networks', ADD_PEER_HELP));
  if (networks.length === 0) throw new UsageError('--networks needs at least one network name', ADD_PEER_HELP);
  const twice = networks.find((net, i) => networks.indexOf(net) !== i);
  if (twice !== undefined) throw new UsageError(`--networks lists '${twice}' twice`, ADD_PEER_HELP);
  const fingerprintText = optionalString(values, 'fingerprint');
  const fingerprint = fingerprintText === undefined ? undefined : flagValue('fingerprint', parseFingerprint(fingerprintText), ADD_PEER_HELP);
  if (address === null && fingerprint === undefined) {
    throw new UsageError(
      `--address "" needs --fingerprint (${INBOUND_ONLY_NEEDS_FINGERPRINT}; add --fingerprint <64 hex> ${PIN_SOURCE})`,
      ADD_PEER_HELP,
    );
  }
  if (values.original === true && address === null) {
    throw new UsageError('--original needs --address: an original VibePN node must be dialed by this node (data sent on a connection it dialed is lost)', ADD_PEER_HELP);
  }
  const allowedRoutes = splitList(optionalString(values, 'allowed-routes') ?? '').map((text) => {
    const cidr = parseCidr(text);
    if (!cidr.ok) throw new UsageError(`--allowed-routes ${cidr.error}`, ADD_PEER_HELP);
    return cidr.prefix;
  });

  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const file = readConfigText(configPath);
  const { config } = file;
  // Checked here rather than left to the loader, which would cite a line of the edited text: a
  // file the user never sees.
  const unknown = networks.filter((net) => !config.networks.has(net));
  if (unknown.length > 0) {
    const known = [...config.networks.keys()].join(', ') || 'none';
    throw new CommandError(
      `--networks: ${unknown.map((net) => `'${net}'`).join(', ')} ${unknown.length === 1 ? 'is not a network' : 'are not networks'} of ${configPath} ` +
        `(networks: ${known}); add a [networks.${unknown[0]}] section first, or list only networks it has`,
    );
  }
  const existing = config.peers.findIndex((p) => p.name === name);
  if (existing >= 0 && values.force !== true) {
    throw new CommandError(`peer '${name}' is already in ${locateKey(file, ['peers', existing])}; use --force to replace it`);
  }
  const owner = fingerprint === undefined ? -1 : config.peers.findIndex((p, i) => i !== existing && p.fingerprint === fingerprint);
  if (owner >= 0) {
    throw new CommandError(
      `--fingerprint ${fingerprint} is already pinned for peer '${config.peers[owner]!.name}' (${locateKey(file, ['peers', owner, 'fingerprint'])}); ` +
        `one certificate cannot be two peers: check which node it belongs to`,
    );
  }
  const peer: PeerConfig = { name, address, networks, allowedRoutes };
  if (fingerprint !== undefined) peer.fingerprint = fingerprint;
  if (values.original === true) peer.original = true;
  const peers = existing >= 0 ? config.peers.map((p, i) => (i === existing ? peer : p)) : [...config.peers, peer];
  const updated = { ...config, peers };
  const warnings: string[] = [];
  const own = ownFingerprint(config, warnings);
  refuseSelfPeer(updated, own, existing >= 0 ? existing : peers.length - 1, warnings);
  // Loaded back with the real loader before anything is written (writeConfigText).
  writeConfigText(file, existing >= 0 ? withPeerReplaced(file, existing, peer) : withPeerAdded(file, peer), updated);
  for (const clash of autoAddressClashes(updated, own)) {
    if (clash.first === `peer ${name}` || clash.second === `peer ${name}`) warnings.push(`${clash.problem}: ${clash.fix}`);
  }
  for (const warning of warnings) out.stderr(`warning: ${warning}`);
  const action = existing >= 0 ? 'replaced' : 'added';
  if (values.json === true) {
    out.stdout(
      JSON.stringify(
        {
          action,
          config: configPath,
          peer: {
            name,
            address: formatOptionalEndpoint(address),
            fingerprint: fingerprint ?? null,
            trust: fingerprint ? 'pinned' : 'first-use',
            networks,
            allowed_routes: allowedRoutes.map(formatPrefix),
            original: peer.original === true,
          },
          warnings,
          next: 'vpnctl reload',
        },
        null,
        2,
      ),
    );
    return;
  }
  const trust = fingerprint ? `pinned ${fingerprint.slice(0, 16)}…` : 'trust on first use';
  out.stdout(`${action} peer ${name} (${formatOptionalEndpoint(address) || 'inbound only'}, ${trust}) for ${networks.join(', ')} in ${configPath}`);
  out.stdout(`if the daemon is running: vpnctl reload`);
}

/**
 * Refuses to pin this node's own certificate as the peer being added; the daemon would refuse
 * the config. Other entries that already do so are only reported: this command did not add them.
 */
function refuseSelfPeer(config: Config, own: string | undefined, added: number, warnings: string[]): void {
  if (own === undefined) return;
  for (const self of findSelfPeers(config, own)) {
    if (self.index === added) {
      throw new CommandError(
        `--fingerprint ${own} is this node's own (${config.identity.cert}); a node cannot be its own peer: ` +
          `give the fingerprint of ${self.peer.name}'s certificate (${PIN_SOURCE})`,
      );
    }
    warnings.push(self.message);
  }
}

/** This node's fingerprint from its certificate, else from identity.fingerprint; undefined (with a warning) if neither. */
function ownFingerprint(config: Config, warnings: string[]): string | undefined {
  try {
    return fingerprintOfPem(readFileSync(config.identity.cert, 'utf8'));
  } catch (error) {
    if (config.identity.fingerprint) return config.identity.fingerprint;
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    warnings.push(`cannot read ${config.identity.cert} (${why}), so the peer's fingerprint was not checked against this node's own`);
    return undefined;
  }
}
