// vpnctl init / invite / join: offline onboarding on config and identity files (add-peer is in
// add-peer.ts, rekey in rekey.ts). None of these talk to a daemon; they write files a daemon
// reads on (re)load.

import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULTS, type Config, type NetworkConfig, type PeerConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { networkNameProblem } from '../config/names.js';
import { peerNameProblem, undialableProblem } from '../config/peer-values.js';
import { checkConfig, newConfig, newPeer, writeConfigFile } from '../config/write.js';
import { describeNetworkAddress, resolveNetworkAddress } from '../config/address.js';
import {
  formatEndpoint,
  parseDialAddress,
  parseListen,
  parseMetricsListen,
  parseNetworkAddress,
  staticAddressProblem,
} from '../config/values.js';
import { generateIdentity, loadIdentity, writeIdentityFiles, type GeneratedIdentity } from '../crypto/identity.js';
import { writeFileAtomic } from '../crypto/atomic-file.js';
import { MAX_INVITE_TTL_SECONDS, createInvite, parseInvite } from '../crypto/invite.js';
import { formatIp, formatPrefix, parseCidr, type Prefix } from '../netgraph/addr.js';
import { addPeerCommand } from './add-peer.js';
import {
  CommandError,
  FORCE_FLAG,
  UsageError,
  flagValue,
  optionalString,
  parseBoolFlag,
  parseCommandFlags,
  parseDuration,
  requireString,
  stringFlags,
  type OptionSpec,
  type Parsed,
} from './args.js';
import { shellWord, type Output } from './output.js';

export const INIT_HELP = `usage: vpnctl init [--config P] [--cert P] [--key P] [--name N] [--network N] [--prefix CIDR]
                  [--address auto|IP] [--export=true|false] [--listen HOST:PORT] [--socket P]
                  [--metrics-listen ADDR] [--known-peers P] [--force] [--json]

Creates this node's identity (ECDSA P-256 certificate and key) and a config with one network.
  --config P          config file to write (default ${DEFAULTS.configPath})
  --cert P, --key P   identity files to write (default ${DEFAULTS.cert}, ${DEFAULTS.key})
  --name N            node name, the certificate's CN and the name peers list it by
                      (default: this host's name; A-Z a-z 0-9 _ . -)
  --network N         network name (default ${DEFAULTS.network})
  --prefix CIDR       network prefix, IPv4 or IPv6 (default ${DEFAULTS.prefix})
  --address A         overlay address: auto (derived from the fingerprint) or an IP in the prefix
  --export=BOOL       announce this node's routes (default true)
  --listen, --socket, --metrics-listen, --known-peers
                      daemon settings written into [daemon]/[identity] (defaults as in the docs)
  --force             overwrite existing files (the config too: for a new identity alone,
                      use vpnctl rekey)
  --json              print the result as one JSON object`;

export const INVITE_HELP = `usage: vpnctl invite [--config P] --network N --address HOST:PORT [--name N] [--ttl DURATION]
                    [--out FILE|-] [--force] [--json]

Prints a signed, expiring invite for another machine to join NETWORK through this node.
  --address HOST:PORT  where the joiner reaches this node's QUIC port (required; not 0.0.0.0)
  --name N             the name the joiner will know this node by (default: certificate CN)
  --ttl DURATION       validity, e.g. 30m, 24h, 7d; at most 365d (default 24h)
  --out FILE|-         write the invite to FILE (mode 0600) or - for stdout (default -)
  --json               print the invite and its details as one JSON object`;

export const JOIN_HELP = `usage: vpnctl join [--config P] [--cert P] [--key P] [--name N]
                  (--invite STRING | --invite-file FILE) [--address auto|IP] [--export=true|false]
                  [--listen HOST:PORT] [--socket P] [--metrics-listen ADDR] [--known-peers P] [--force]
                  [--json]

Creates this node's identity and a config that joins the invite's network with the inviter as a
pinned peer. Prints the command to run on the inviter so it accepts this node (--json: as one
JSON object, with that command as add_peer_command).`;

export const JSON_FLAG: OptionSpec = { json: { type: 'boolean' } };
const DAEMON_FLAGS: OptionSpec = stringFlags('listen', 'socket', 'metrics-listen', 'known-peers');

/** Flags init and join share: where the new node's files go and how it takes part in its network. */
const NEW_NODE_FLAGS: OptionSpec = {
  ...DAEMON_FLAGS,
  ...stringFlags('config', 'cert', 'key', 'name', 'address', 'export'),
  ...FORCE_FLAG,
  ...JSON_FLAG,
};

export function printJson(out: Output, value: unknown): void {
  out.stdout(JSON.stringify(value, null, 2));
}

function refuseExisting(paths: string[], force: boolean): void {
  if (force) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) {
    throw new CommandError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; use --force to overwrite`);
  }
}

/**
 * This node's name: --name, else `fallback` (this host's name, or the old certificate's). It is
 * the certificate's CN and the name every peer lists this node by (join prints `add-peer --name`),
 * so it follows the peer-name rule; a bad default says which flag overrides it.
 */
export function nodeNameFlag(values: Parsed['values'], help: string, fallback: { name: string; what: string }): string {
  const given = optionalString(values, 'name');
  const name = given ?? fallback.name;
  const problem = peerNameProblem(name) ?? (name.length > 64 ? `'${name}' is longer than 64 characters, the most a certificate name may have` : null);
  if (problem === null) return name;
  if (given !== undefined) throw new UsageError(`--name ${problem}`, help);
  throw new UsageError(`${fallback.what}: ${problem}; pass --name NAME, the name peers list this node by`, help);
}

/**
 * --address checked against the prefix here, not only by checkConfig: a mistake is then a usage
 * error naming the flag rather than a config error at a line of a file not yet written.
 */
function addressFlag(values: Parsed['values'], prefix: Prefix, help: string): NetworkConfig['address'] {
  const text = optionalString(values, 'address') ?? 'auto';
  const address = flagValue('address', parseNetworkAddress(text), help);
  const problem = address === 'auto' ? null : staticAddressProblem(text, address, prefix);
  if (problem) throw new UsageError(`--address ${problem}`, help);
  return address;
}

/**
 * A path flag as the user meant it: relative to where they ran vpnctl. The config stores it
 * absolute, because the loader reads relative paths against the config file's directory.
 */
function pathFlag(values: Record<string, string | boolean | undefined>, name: string, fallback: string): string {
  const value = optionalString(values, name);
  return resolve(value === undefined || value === '' ? fallback : value);
}

function buildConfig(args: {
  path: string;
  cert: string;
  key: string;
  values: Parsed['values'];
  network: NetworkConfig;
  peers: PeerConfig[];
  help: string;
}): Config {
  const { values, help } = args;
  const config = newConfig(args.path, {
    cert: args.cert,
    key: args.key,
    knownPeers: pathFlag(values, 'known-peers', join(dirname(args.path), 'known_peers.json')),
    daemon: { controlSocket: pathFlag(values, 'socket', DEFAULTS.controlSocket) },
    peers: args.peers,
    networks: [args.network],
  });
  config.daemon.listen = flagValue('listen', parseListen(optionalString(values, 'listen') ?? DEFAULTS.listen), help);
  config.daemon.metricsListen = flagValue(
    'metrics-listen',
    parseMetricsListen(optionalString(values, 'metrics-listen') ?? DEFAULTS.metricsListen),
    help,
  );
  // Validate through the real loader, so init/join can never write a config the daemon refuses.
  // Each flag was checked on its own above, so whatever this still finds names keys, not lines.
  return checkConfig(config);
}

interface NewNode {
  config: Config;
  identity: GeneratedIdentity;
  name: string;
  configPath: string;
  certPath: string;
  keyPath: string;
}

/**
 * init and join: a new identity and a config with one network (and, for join, the inviter).
 * Everything is validated before anything is written, so a bad flag leaves no files behind.
 */
async function createNewNode(
  values: Parsed['values'],
  network: { name: string; prefix: Prefix },
  peers: PeerConfig[],
  help: string,
  checkName: (name: string) => void = () => {},
): Promise<NewNode> {
  const configPath = pathFlag(values, 'config', DEFAULTS.configPath);
  const certPath = pathFlag(values, 'cert', DEFAULTS.cert);
  const keyPath = pathFlag(values, 'key', DEFAULTS.key);
  const name = nodeNameFlag(values, help, { name: hostname(), what: "this host's name" });
  checkName(name);
  const address = addressFlag(values, network.prefix, help);
  const exported = parseBoolFlag(values, 'export', true, help);
  const force = values.force === true;
  refuseExisting([configPath, certPath, keyPath], force);
  const net: NetworkConfig = { ...network, address, export: exported, mtu: DEFAULTS.mtu, routes: [] };
  const config = buildConfig({ path: configPath, cert: certPath, key: keyPath, values, network: net, peers, help });
  const identity = await generateIdentity(name);
  writeIdentityFiles(certPath, keyPath, identity, { force });
  writeConfigFile(configPath, config, { force });
  return { config, identity, name, configPath, certPath, keyPath };
}

function describeAddress(node: NewNode, network: string): string {
  return describeNetworkAddress(node.config.networks.get(network)!, node.identity.fingerprint);
}

/** A network as the JSON outputs show it: the address this node has there, and whether it is derived. */
function networkJson(net: NetworkConfig, fingerprint: string): { name: string; prefix: string; address: string; auto: boolean } {
  return { name: net.name, prefix: formatPrefix(net.prefix), address: formatIp(resolveNetworkAddress(net, fingerprint)), auto: net.address === 'auto' };
}

export async function runInit(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, { ...NEW_NODE_FLAGS, ...stringFlags('network', 'prefix') }, INIT_HELP, out);
  if (values === undefined) return;
  const networkName = optionalString(values, 'network') ?? DEFAULTS.network;
  const networkProblem = networkNameProblem(networkName);
  if (networkProblem) throw new UsageError(`--network ${networkProblem}`, INIT_HELP);
  const prefix = parseCidr(optionalString(values, 'prefix') ?? DEFAULTS.prefix);
  if (!prefix.ok) throw new UsageError(`--prefix ${prefix.error}`, INIT_HELP);
  const node = await createNewNode(values, { name: networkName, prefix: prefix.prefix }, [], INIT_HELP);
  const next = `vpnctl invite --config ${shellWord(node.configPath)} --network ${shellWord(networkName)} --address <this-host>:${node.config.daemon.listen.port}`;

  if (values.json === true) {
    printJson(out, {
      name: node.name,
      fingerprint: node.identity.fingerprint,
      cert: node.certPath,
      key: node.keyPath,
      config: node.configPath,
      network: networkJson(node.config.networks.get(networkName)!, node.identity.fingerprint),
      listen: formatEndpoint(node.config.daemon.listen),
      next,
    });
    return;
  }
  out.stdout(`created identity ${node.name}`);
  out.stdout(`  fingerprint ${node.identity.fingerprint}`);
  out.stdout(`  cert        ${node.certPath}`);
  out.stdout(`  key         ${node.keyPath} (mode 0600)`);
  out.stdout(`wrote ${node.configPath}`);
  out.stdout(`  network ${networkName} ${formatPrefix(prefix.prefix)}, address ${describeAddress(node, networkName)}`);
  out.stdout(`next: ${next}`);
}

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

export async function runInvite(argv: string[], out: Output): Promise<void> {
  const flags = { ...stringFlags('config', 'network', 'address', 'name', 'ttl', 'out'), ...FORCE_FLAG, ...JSON_FLAG };
  const values = parseCommandFlags(argv, flags, INVITE_HELP, out);
  if (values === undefined) return;
  const networkName = requireString(values, 'network', INVITE_HELP);
  const address = flagValue('address', parseDialAddress(requireString(values, 'address', INVITE_HELP)), INVITE_HELP);
  const undialable = undialableProblem(address);
  if (undialable) throw new UsageError(`--address ${undialable}`, INVITE_HELP);
  const ttlText = optionalString(values, 'ttl') ?? '24h';
  const ttlSeconds = ttlFlag(ttlText);
  const config = loadConfig(optionalString(values, 'config') ?? DEFAULTS.configPath);
  const network = config.networks.get(networkName);
  if (!network) {
    const known = [...config.networks.keys()].join(', ') || 'none';
    throw new CommandError(`network '${networkName}' is not in ${config.path} (networks: ${known})`);
  }
  const identity = loadIdentity(config.identity.cert, config.identity.key, config.identity.fingerprint);
  // The joiner lists this node under this name, so it must be one its loader accepts.
  const name = nodeNameFlag(values, INVITE_HELP, { name: identity.name, what: `the certificate's name (CN of ${config.identity.cert})` });
  const invite = createInvite(
    identity,
    { network: networkName, prefix: formatPrefix(network.prefix), address: formatEndpoint(address), name },
    { ttlSeconds },
  );
  const target = optionalString(values, 'out') ?? '-';
  if (target !== '-') {
    refuseExisting([target], values.force === true);
    writeSecretFile(target, invite + '\n');
  }
  if (values.json === true) {
    const { invite: fields } = parseInvite(invite);
    printJson(out, {
      invite,
      network: networkName,
      prefix: fields.prefix,
      name: fields.inviter.name,
      address: fields.inviter.address,
      fingerprint: fields.inviter.fingerprint,
      issued_at: fields.issued_at,
      expires_at: fields.expires_at,
      out: target === '-' ? null : target,
    });
    return;
  }
  if (target === '-') out.stdout(invite);
  else out.stdout(`wrote invite for network ${networkName} to ${target} (valid ${ttlText})`);
}

/** Invites and keys are secrets: 0600 from the first byte, atomically replaced. */
function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  // Exclusive, unpredictable temp name, fsync, rename: the same crash safety as keys.
  writeFileAtomic(path, content, 0o600);
}

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

export async function runJoin(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, { ...NEW_NODE_FLAGS, ...stringFlags('invite', 'invite-file') }, JOIN_HELP, out);
  if (values === undefined) return;
  const inviteText = optionalString(values, 'invite');
  const inviteFile = optionalString(values, 'invite-file');
  if (!inviteText === !inviteFile) throw new UsageError('give exactly one of --invite STRING or --invite-file FILE', JOIN_HELP);
  const raw = inviteFile ? readInviteFile(inviteFile) : inviteText!;
  const { invite, signed } = parseInvite(raw.trim());
  // The invite module accepts any node name an original VibePN node may have; this node's config
  // will list the inviter under it, so it must also be a peer name the loader accepts.
  const inviterProblem = peerNameProblem(invite.inviter.name);
  if (inviterProblem) {
    throw new CommandError(
      `the invite's inviter name ${inviterProblem}, and this node would list the inviter under it: ` +
        `ask for a new invite made with vpnctl invite --name NAME`,
    );
  }
  // parseInvite checked these fields with the config's rules, so neither parse can fail.
  const inviter = newPeer(invite.inviter.name, [invite.network], { address: invite.inviter.address, fingerprint: invite.inviter.fingerprint });
  const prefix = parseCidr(invite.prefix);
  if (!prefix.ok) throw new CommandError(`invite network prefix ${prefix.error}`);
  const node = await createNewNode(values, { name: invite.network, prefix: prefix.prefix }, [inviter], JOIN_HELP, (name) => {
    if (name === invite.inviter.name) {
      throw new UsageError(`--name ${name} is the inviter's own name; choose a different name for this node`, JOIN_HELP);
    }
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
      name: node.name,
      fingerprint: node.identity.fingerprint,
      cert: node.certPath,
      key: node.keyPath,
      config: node.configPath,
      network: networkJson(node.config.networks.get(invite.network)!, node.identity.fingerprint),
      inviter: { name: invite.inviter.name, address: invite.inviter.address, fingerprint: invite.inviter.fingerprint },
      signed,
      warnings,
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
