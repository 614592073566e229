// vpnctl add-peer: adds or replaces a [[peers]] entry in the config, validated with the config's
// own rules and refused when the daemon would refuse it (an inbound-only peer without a pin,
// this node's own certificate as a peer).

import { readFileSync } from 'node:fs';
import { findSelfPeers, loadConfig } from '../config/load.js';
import { DEFAULTS, type Config, type PeerConfig } from '../config/types.js';
import { INBOUND_ONLY_NEEDS_FINGERPRINT, PIN_SOURCE, formatOptionalEndpoint, parseFingerprint, parsePeerAddress } from '../config/values.js';
import { writeConfigFile } from '../config/write.js';
import { fingerprintOfPem } from '../crypto/identity.js';
import { parseCidr } from '../netgraph/addr.js';
import { CommandError, FORCE_FLAG, UsageError, flagValue, optionalString, parseCommandFlags, requireString, splitList, stringFlags } from './args.js';
import type { Output } from './output.js';
import { autoAddressClashes } from './auto-addresses.js';

export const ADD_PEER_HELP = `usage: vpnctl add-peer [--config P] --name N --address HOST:PORT [--fingerprint FP] --networks a,b
                      [--allowed-routes CIDR,...] [--original] [--force]

Adds a [[peers]] entry to the config. --address "" means never dial (accept inbound only), and
then --fingerprint is required. Without --fingerprint the peer is trusted on first use: its key
is learned from the first connection to --address. --original marks a node that runs the
original VibePN (Go): it is always dialed, so it needs --address. --force replaces a peer of the
same name.
Run 'vpnctl reload' afterwards if the daemon is running.`;

export async function runAddPeer(argv: string[], out: Output): Promise<void> {
  const flags = { ...stringFlags('config', 'name', 'address', 'fingerprint', 'networks', 'allowed-routes'), ...FORCE_FLAG, original: { type: 'boolean' as const } };
  const values = parseCommandFlags(argv, flags, ADD_PEER_HELP, out);
  if (values === undefined) return;
  const name = requireString(values, 'name', ADD_PEER_HELP);
  const addressText = optionalString(values, 'address');
  if (addressText === undefined) throw new UsageError('missing required flag --address (use --address "" to accept inbound only)', ADD_PEER_HELP);
  const address = flagValue('address', parsePeerAddress(addressText), ADD_PEER_HELP);
  const networks = splitList(requireString(values, 'networks', ADD_PEER_HELP));
  if (networks.length === 0) throw new UsageError('--networks needs at least one network name', ADD_PEER_HELP);
  const fingerprintText = optionalString(values, 'fingerprint');
  const fingerprint = fingerprintText === undefined ? undefined : flagValue('fingerprint', parseFingerprint(fingerprintText), ADD_PEER_HELP);
  if (address === null && fingerprint === undefined) {
    throw new UsageError(
      `--address "" needs --fingerprint (${INBOUND_ONLY_NEEDS_FINGERPRINT}; add --fingerprint <64 hex> ${PIN_SOURCE})`,
      ADD_PEER_HELP,
    );
  }
  const allowedRoutes = splitList(optionalString(values, 'allowed-routes') ?? '').map((text) => {
    const cidr = parseCidr(text);
    if (!cidr.ok) throw new UsageError(`--allowed-routes ${cidr.error}`, ADD_PEER_HELP);
    return cidr.prefix;
  });
  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const config = loadConfig(configPath);
  const existing = config.peers.findIndex((p) => p.name === name);
  if (existing >= 0 && values.force !== true) {
    throw new CommandError(`peer '${name}' is already in ${configPath}; use --force to replace it`);
  }
  if (values.original === true && address === null) {
    throw new UsageError('--original needs --address: an original VibePN node must be dialed by this node (data sent on a connection it dialed is lost)', ADD_PEER_HELP);
  }
  const peer: PeerConfig = { name, address, networks, allowedRoutes };
  if (fingerprint !== undefined) peer.fingerprint = fingerprint;
  if (values.original === true) peer.original = true;
  const peers = existing >= 0 ? config.peers.map((p, i) => (i === existing ? peer : p)) : [...config.peers, peer];
  const updated = { ...config, peers };
  const own = ownFingerprint(config, out);
  refuseSelfPeer(updated, own, existing >= 0 ? existing : peers.length - 1, out);
  // writeConfigFile re-validates the whole file: unknown networks and duplicate fingerprints are
  // refused with the loader's own messages.
  writeConfigFile(configPath, updated, { force: true });
  for (const clash of autoAddressClashes(updated, own)) {
    if (clash.first === `peer ${name}` || clash.second === `peer ${name}`) out.stderr(`warning: ${clash.problem}: ${clash.fix}`);
  }
  const trust = fingerprint ? `pinned ${fingerprint.slice(0, 16)}…` : 'trust on first use';
  out.stdout(
    `${existing >= 0 ? 'replaced' : 'added'} peer ${name} (${formatOptionalEndpoint(address) || 'inbound only'}, ${trust}) for ${networks.join(', ')} in ${configPath}`,
  );
  out.stdout(`if the daemon is running: vpnctl reload`);
}

/**
 * Refuses to pin this node's own certificate as the peer being added; the daemon would refuse
 * the config. Other entries that already do so are only reported: this command did not add them.
 */
function refuseSelfPeer(config: Config, own: string | undefined, added: number, out: Output): void {
  if (own === undefined) return;
  for (const self of findSelfPeers(config, own)) {
    if (self.index === added) {
      throw new CommandError(
        `--fingerprint ${own} is this node's own (${config.identity.cert}); a node cannot be its own peer: ` +
          `give the fingerprint of ${self.peer.name}'s certificate (${PIN_SOURCE})`,
      );
    }
    out.stderr(`warning: ${self.message}`);
  }
}

/** This node's fingerprint from its certificate, else from identity.fingerprint; undefined (with a warning) if neither. */
function ownFingerprint(config: Config, out: Output): string | undefined {
  try {
    return fingerprintOfPem(readFileSync(config.identity.cert, 'utf8'));
  } catch (error) {
    if (config.identity.fingerprint) return config.identity.fingerprint;
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    out.stderr(`warning: cannot read ${config.identity.cert} (${why}), so the peer's fingerprint was not checked against this node's own`);
    return undefined;
  }
}
