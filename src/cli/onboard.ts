// vpnctl init / invite / join / add-peer: offline onboarding on config and identity files.
// None of these talk to a daemon; they write files a daemon reads on (re)load.

import { existsSync, readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULTS, type Config, type NetworkConfig, type PeerConfig } from '../config/types.js';
import { loadConfig, parseConfig } from '../config/load.js';
import { renderConfig, writeConfigFile } from '../config/write.js';
import { resolveNetworkAddress } from '../config/address.js';
import { generateIdentity, loadIdentity, writeIdentityFiles, isFingerprint, type GeneratedIdentity } from '../crypto/identity.js';
import { createInvite, parseInvite } from '../crypto/invite.js';
import { formatIp, parseCidr, parseIp } from '../netgraph/addr.js';
import {
  CommandError,
  UsageError,
  optionalString,
  parseBoolFlag,
  parseDuration,
  parseOptions,
  requireString,
  type OptionSpec,
  type Parsed,
} from './args.js';
import type { Output } from './output.js';

export const INIT_HELP = `usage: vpnctl init [--config P] [--cert P] [--key P] [--name N] [--network N] [--prefix CIDR]
                  [--address auto|IP] [--export=true|false] [--listen HOST:PORT] [--socket P]
                  [--metrics-listen ADDR] [--known-peers P] [--force]

Creates this node's identity (ECDSA P-256 certificate and key) and a config with one network.
  --config P          config file to write (default ${DEFAULTS.configPath})
  --cert P, --key P   identity files to write (default ${DEFAULTS.cert}, ${DEFAULTS.key})
  --name N            node name, the certificate's CN (default: this host's name)
  --network N         network name (default ${DEFAULTS.network})
  --prefix CIDR       network prefix, IPv4 or IPv6 (default ${DEFAULTS.prefix})
  --address A         overlay address: auto (derived from the fingerprint) or an IP in the prefix
  --export=BOOL       announce this node's routes (default true)
  --listen, --socket, --metrics-listen, --known-peers
                      daemon settings written into [daemon]/[identity] (defaults as in the docs)
  --force             overwrite existing files`;

export const INVITE_HELP = `usage: vpnctl invite [--config P] --network N --address HOST:PORT [--name N] [--ttl DURATION]
                    [--out FILE|-] [--force]

Prints a signed, expiring invite for another machine to join NETWORK through this node.
  --address HOST:PORT  where the joiner reaches this node's QUIC port (required)
  --name N             the name the joiner will know this node by (default: certificate CN)
  --ttl DURATION       validity, e.g. 30m, 24h, 7d (default 24h)
  --out FILE|-         write the invite to FILE (mode 0600) or - for stdout (default -)`;

export const JOIN_HELP = `usage: vpnctl join [--config P] [--cert P] [--key P] [--name N]
                  (--invite STRING | --invite-file FILE) [--address auto|IP] [--export=true|false]
                  [--listen HOST:PORT] [--socket P] [--metrics-listen ADDR] [--known-peers P] [--force]

Creates this node's identity and a config that joins the invite's network with the inviter as a
pinned peer. Prints the command to run on the inviter so it accepts this node.`;

export const ADD_PEER_HELP = `usage: vpnctl add-peer [--config P] --name N --address HOST:PORT [--fingerprint FP] --networks a,b
                      [--allowed-routes CIDR,...] [--force]

Adds a [[peers]] entry to the config. --address "" means never dial (accept inbound only).
Without --fingerprint the peer is trusted on first use. --force replaces a peer of the same name.
Run 'vpnctl reload' afterwards if the daemon is running.`;

const DAEMON_FLAGS: OptionSpec = {
  listen: { type: 'string' },
  socket: { type: 'string' },
  'metrics-listen': { type: 'string' },
  'known-peers': { type: 'string' },
};

const HELP_FLAG: OptionSpec = { help: { type: 'boolean', short: 'h' } };

/** Flags init and join share: where the new node's files go and how it takes part in its network. */
const NEW_NODE_FLAGS: OptionSpec = {
  ...HELP_FLAG,
  ...DAEMON_FLAGS,
  config: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  name: { type: 'string' },
  address: { type: 'string' },
  export: { type: 'string' },
  force: { type: 'boolean' },
};

function wantsHelp(values: Record<string, unknown>, help: string, out: Output): boolean {
  if (values.help) out.stdout(help);
  return Boolean(values.help);
}

function refuseExisting(paths: string[], force: boolean): void {
  if (force) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) {
    throw new CommandError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; use --force to overwrite`);
  }
}

function checkAddressFlag(address: string, help: string): string {
  if (address === 'auto') return address;
  const ip = parseIp(address);
  if (!ip) throw new UsageError(`--address must be 'auto' or an IP address, got '${address}'`, help);
  return formatIp(ip);
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
  values: Record<string, string | boolean | undefined>;
  network: NetworkConfig;
  peers: PeerConfig[];
}): Config {
  const { values } = args;
  const text = renderConfig({
    path: args.path,
    identity: {
      cert: args.cert,
      key: args.key,
      knownPeers: pathFlag(values, 'known-peers', join(dirname(args.path), 'known_peers.json')),
    },
    daemon: {
      listen: optionalString(values, 'listen') ?? DEFAULTS.listen,
      controlSocket: pathFlag(values, 'socket', DEFAULTS.controlSocket),
      metricsListen: optionalString(values, 'metrics-listen') ?? DEFAULTS.metricsListen,
      logLevel: DEFAULTS.logLevel,
      acceptUnknownPeers: false,
    },
    peers: args.peers,
    networks: new Map([[args.network.name, args.network]]),
  });
  // Validate through the real loader, so init/join can never write a config the daemon refuses.
  return parseConfig(text, args.path);
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
  network: { name: string; prefix: string },
  peers: PeerConfig[],
  help: string,
  checkName: (name: string) => void = () => {},
): Promise<NewNode> {
  const configPath = pathFlag(values, 'config', DEFAULTS.configPath);
  const certPath = pathFlag(values, 'cert', DEFAULTS.cert);
  const keyPath = pathFlag(values, 'key', DEFAULTS.key);
  const name = optionalString(values, 'name') ?? hostname();
  checkName(name);
  const address = checkAddressFlag(optionalString(values, 'address') ?? 'auto', help);
  const exported = parseBoolFlag(values, 'export', true, help);
  const force = values.force === true;
  refuseExisting([configPath, certPath, keyPath], force);
  const net: NetworkConfig = { ...network, address, export: exported, mtu: DEFAULTS.mtu, routes: [] };
  const config = buildConfig({ path: configPath, cert: certPath, key: keyPath, values, network: net, peers });
  const identity = await generateIdentity(name);
  writeIdentityFiles(certPath, keyPath, identity, { force });
  writeConfigFile(configPath, config, { force });
  return { config, identity, name, configPath, certPath, keyPath };
}

function describeAddress(node: NewNode, network: string): string {
  const net = node.config.networks.get(network)!;
  return `${resolveNetworkAddress(net, node.identity.fingerprint)}${net.address === 'auto' ? ' (auto)' : ''}`;
}

export async function runInit(argv: string[], out: Output): Promise<void> {
  const { values } = parseOptions(argv, { ...NEW_NODE_FLAGS, network: { type: 'string' }, prefix: { type: 'string' } }, INIT_HELP);
  if (wantsHelp(values, INIT_HELP, out)) return;
  const networkName = optionalString(values, 'network') ?? DEFAULTS.network;
  const prefixText = optionalString(values, 'prefix') ?? DEFAULTS.prefix;
  const prefix = parseCidr(prefixText);
  if (!prefix.ok) throw new UsageError(`--prefix ${prefix.error}`, INIT_HELP);
  const node = await createNewNode(values, { name: networkName, prefix: prefixText }, [], INIT_HELP);

  out.stdout(`created identity ${node.name}`);
  out.stdout(`  fingerprint ${node.identity.fingerprint}`);
  out.stdout(`  cert        ${node.certPath}`);
  out.stdout(`  key         ${node.keyPath} (mode 0600)`);
  out.stdout(`wrote ${node.configPath}`);
  out.stdout(`  network ${networkName} ${node.config.networks.get(networkName)!.prefix}, address ${describeAddress(node, networkName)}`);
  out.stdout(`next: vpnctl invite --config ${node.configPath} --network ${networkName} --address <this-host>:${portOf(node.config.daemon.listen)}`);
}

function portOf(hostPort: string): string {
  return hostPort.slice(hostPort.lastIndexOf(':') + 1);
}

export async function runInvite(argv: string[], out: Output): Promise<void> {
  const { values } = parseOptions(
    argv,
    {
      ...HELP_FLAG,
      config: { type: 'string' },
      network: { type: 'string' },
      address: { type: 'string' },
      name: { type: 'string' },
      ttl: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
    },
    INVITE_HELP,
  );
  if (wantsHelp(values, INVITE_HELP, out)) return;
  const networkName = requireString(values, 'network', INVITE_HELP);
  const address = requireString(values, 'address', INVITE_HELP);
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(address)) {
    throw new UsageError(`--address must be HOST:PORT (e.g. 203.0.113.7:51820), got '${address}'`, INVITE_HELP);
  }
  const ttlText = optionalString(values, 'ttl') ?? '24h';
  const ttlSeconds = parseDuration(ttlText);
  if (ttlSeconds === null || ttlSeconds <= 0) throw new UsageError(`--ttl must be a duration like 30m, 24h or 7d, got '${ttlText}'`, INVITE_HELP);
  const config = loadConfig(optionalString(values, 'config') ?? DEFAULTS.configPath);
  const network = config.networks.get(networkName);
  if (!network) {
    const known = [...config.networks.keys()].join(', ') || 'none';
    throw new CommandError(`network '${networkName}' is not in ${config.path} (networks: ${known})`);
  }
  const identity = loadIdentity(config.identity.cert, config.identity.key, config.identity.fingerprint);
  const invite = createInvite(
    identity,
    { network: networkName, prefix: network.prefix, address, name: optionalString(values, 'name') },
    { ttlSeconds },
  );
  const target = optionalString(values, 'out') ?? '-';
  if (target === '-') {
    out.stdout(invite);
    return;
  }
  refuseExisting([target], values.force === true);
  writeSecretFile(target, invite + '\n');
  out.stdout(`wrote invite for network ${networkName} to ${target} (valid ${ttlText})`);
}

/** Invites and keys are secrets: 0600 from the first byte, atomically replaced. */
function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, content, { mode: 0o600 });
  renameSync(temp, path);
}

export async function runJoin(argv: string[], out: Output): Promise<void> {
  const { values } = parseOptions(argv, { ...NEW_NODE_FLAGS, invite: { type: 'string' }, 'invite-file': { type: 'string' } }, JOIN_HELP);
  if (wantsHelp(values, JOIN_HELP, out)) return;
  const inviteText = optionalString(values, 'invite');
  const inviteFile = optionalString(values, 'invite-file');
  if (!inviteText === !inviteFile) throw new UsageError('give exactly one of --invite STRING or --invite-file FILE', JOIN_HELP);
  let raw: string;
  if (inviteFile) {
    try {
      raw = readFileSync(inviteFile, 'utf8');
    } catch (error) {
      throw new CommandError(`cannot read invite file ${inviteFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  } else {
    raw = inviteText!;
  }
  const { invite, signed } = parseInvite(raw.trim());
  const inviter: PeerConfig = {
    name: invite.inviter.name,
    address: invite.inviter.address,
    fingerprint: invite.inviter.fingerprint,
    networks: [invite.network],
    allowedRoutes: [],
  };
  const node = await createNewNode(values, { name: invite.network, prefix: invite.prefix }, [inviter], JOIN_HELP, (name) => {
    if (name === invite.inviter.name) {
      throw new UsageError(`--name ${name} is the inviter's own name; choose a different name for this node`, JOIN_HELP);
    }
  });

  if (!signed) {
    out.stderr(
      `warning: this is an unsigned invite (original VibePN format); the inviter's fingerprint ${invite.inviter.fingerprint} could not be verified — compare it with the inviter out of band`,
    );
  }
  out.stdout(`joined network ${invite.network} (${invite.prefix}) via ${invite.inviter.name} at ${invite.inviter.address}`);
  out.stdout(`  this node   ${node.name}, fingerprint ${node.identity.fingerprint}`);
  out.stdout(`  address     ${describeAddress(node, invite.network)}`);
  out.stdout(`wrote ${node.configPath}, ${node.certPath}, ${node.keyPath}`);
  out.stdout(`on ${invite.inviter.name}, run:`);
  out.stdout(
    `  vpnctl add-peer --name ${node.name} --address <this-host>:${portOf(node.config.daemon.listen)} --fingerprint ${node.identity.fingerprint} --networks ${invite.network}`,
  );
}

export async function runAddPeer(argv: string[], out: Output): Promise<void> {
  const { values } = parseOptions(
    argv,
    {
      ...HELP_FLAG,
      config: { type: 'string' },
      name: { type: 'string' },
      address: { type: 'string' },
      fingerprint: { type: 'string' },
      networks: { type: 'string' },
      'allowed-routes': { type: 'string' },
      force: { type: 'boolean' },
    },
    ADD_PEER_HELP,
  );
  if (wantsHelp(values, ADD_PEER_HELP, out)) return;
  const name = requireString(values, 'name', ADD_PEER_HELP);
  const address = optionalString(values, 'address');
  if (address === undefined) throw new UsageError('missing required flag --address (use --address "" to accept inbound only)', ADD_PEER_HELP);
  const networks = splitList(requireString(values, 'networks', ADD_PEER_HELP));
  if (networks.length === 0) throw new UsageError('--networks needs at least one network name', ADD_PEER_HELP);
  const fingerprint = optionalString(values, 'fingerprint')?.toLowerCase();
  if (fingerprint !== undefined && !isFingerprint(fingerprint)) {
    throw new UsageError(`--fingerprint must be 64 hex characters (sha256 of the peer's certificate), got '${fingerprint}'`, ADD_PEER_HELP);
  }
  const allowedRoutes = splitList(optionalString(values, 'allowed-routes') ?? '');
  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const config = loadConfig(configPath);
  const existing = config.peers.findIndex((p) => p.name === name);
  if (existing >= 0 && values.force !== true) {
    throw new CommandError(`peer '${name}' is already in ${configPath}; use --force to replace it`);
  }
  const peer: PeerConfig = { name, address, fingerprint, networks, allowedRoutes };
  const peers = existing >= 0 ? config.peers.map((p, i) => (i === existing ? peer : p)) : [...config.peers, peer];
  // Re-validate the whole file: catches unknown networks and duplicate fingerprints with the
  // loader's own messages.
  const updated = parseConfig(renderConfig({ ...config, peers }), configPath);
  writeConfigFile(configPath, updated, { force: true });
  out.stdout(`${existing >= 0 ? 'replaced' : 'added'} peer ${name} (${address || 'inbound only'}${fingerprint ? `, pinned ${fingerprint.slice(0, 16)}…` : ', trust on first use'}) for ${networks.join(', ')} in ${configPath}`);
  out.stdout(`if the daemon is running: vpnctl reload`);
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
