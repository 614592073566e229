// vpnctl remove-peer NAME: takes a [[peers]] table out of the config, as text (config/edit.ts), so
// the comments and layout of the rest of the file stay. Offline: a running daemon notices on
// reload, when it says Goodbye to the peer and drops its routes.

import { readConfigText, withPeerRemoved, writeConfigText, type ConfigText } from '../config/edit.js';
import { DEFAULTS } from '../config/types.js';
import { formatOptionalEndpoint } from '../config/values.js';
import { TrustStore } from '../crypto/trust.js';
import { CommandError, UsageError, optionalString, parseOptions, stringFlags } from './args.js';
import { shellWord, type Output } from './output.js';

export const REMOVE_PEER_HELP = `usage: vpnctl remove-peer [--config P] [--json] NAME

Removes peer NAME's [[peers]] table from the config, with the comment lines that introduce it;
the rest of the file stays as written. A key learned for it on first use stays in the
known-peers file (vpnctl forget NAME drops it). --json prints the result as one JSON object.
Run 'vpnctl reload' afterwards if the daemon is running.`;

/** The one NAME a command on a peer takes; a usage error naming the command's form otherwise. */
function peerNameArgument(positionals: string[], help: string): string {
  if (positionals.length === 1 && positionals[0] !== '') return positionals[0]!;
  throw new UsageError(positionals.length === 0 ? 'missing the peer NAME' : `expected one peer NAME, got ${positionals.map((p) => shellWord(p)).join(' ')}`, help);
}

/** A command on one peer of a config file (`remove-peer NAME`, `forget NAME`): its flags, or undefined after -h. */
export function parsePeerCommand(argv: string[], help: string, out: Output): { name: string; json: boolean; configPath: string; file: ConfigText } | undefined {
  const flags = { help: { type: 'boolean' as const, short: 'h' }, json: { type: 'boolean' as const }, ...stringFlags('config') };
  const { values, positionals } = parseOptions(argv, flags, help);
  if (values.help) {
    out.stdout(help);
    return undefined;
  }
  const name = peerNameArgument(positionals, help);
  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  return { name, json: values.json === true, configPath, file: readConfigText(configPath) };
}

export async function runRemovePeer(argv: string[], out: Output): Promise<void> {
  const parsed = parsePeerCommand(argv, REMOVE_PEER_HELP, out);
  if (!parsed) return;
  const { name, configPath, file } = parsed;
  const { config } = file;
  const index = config.peers.findIndex((p) => p.name === name);
  if (index < 0) {
    const names = config.peers.map((p) => shellWord(p.name)).join(', ');
    throw new CommandError(`no peer named '${name}' in ${configPath} (${names === '' ? 'it has no peers' : `peers: ${names}`})`);
  }
  const peer = config.peers[index]!;
  writeConfigText(file, withPeerRemoved(file, index), { ...config, peers: config.peers.filter((_, i) => i !== index) });
  // Only to say so: a stale learned key is harmless until a peer of that name is added again.
  let learned: string | undefined;
  try {
    learned = new TrustStore(config.identity.knownPeers).get(name);
  } catch {
    learned = undefined;
  }
  const forget = `vpnctl forget${configPath === DEFAULTS.configPath ? '' : ` --config ${shellWord(configPath)}`} ${shellWord(name)}`;

  if (parsed.json) {
    out.stdout(
      JSON.stringify(
        {
          removed: { name, address: formatOptionalEndpoint(peer.address), fingerprint: peer.fingerprint ?? null, networks: peer.networks },
          config: configPath,
          learned_fingerprint: learned ?? null,
          forget_command: learned === undefined ? null : forget,
          next: 'vpnctl reload',
        },
        null,
        2,
      ),
    );
    return;
  }
  out.stdout(`removed peer ${name} (${formatOptionalEndpoint(peer.address) || 'inbound only'}) from ${configPath}`);
  if (learned !== undefined) {
    out.stdout(`its key learned on first use (${learned.slice(0, 16)}…) stays in ${config.identity.knownPeers}; to drop it: ${forget}`);
  }
  out.stdout(`if the daemon is running: vpnctl reload (it says Goodbye to ${name} and drops its routes)`);
}
