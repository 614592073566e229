// What vpnctl init and join share (and invite and rekey borrow): the flags of a new node, the
// checks that run before anything is written, and the one function that writes a new node's
// identity and config. Split out of onboard.ts so each command's file stays short.

import { existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULTS, type Config, type NetworkConfig, type PeerConfig } from '../config/types.js';
import { peerNameProblem } from '../config/peer-values.js';
import { checkConfig, newConfig, writeConfigFile } from '../config/write.js';
import { describeNetworkAddress, resolveNetworkAddress } from '../config/address.js';
import { parseListen, parseMetricsListen, parseNetworkAddress, staticAddressProblem } from '../config/values.js';
import { generateIdentity, writeIdentityFiles, type GeneratedIdentity } from '../crypto/identity.js';
import { writeFileAtomic } from '../crypto/atomic-file.js';
import { formatIp, formatPrefix, type Prefix } from '../netgraph/addr.js';
import {
  CommandError,
  FORCE_FLAG,
  UsageError,
  flagValue,
  optionalString,
  parseBoolFlag,
  stringFlags,
  type OptionSpec,
  type Parsed,
} from './args.js';
import type { Output } from './output.js';

export const JSON_FLAG: OptionSpec = { json: { type: 'boolean' } };
const DAEMON_FLAGS: OptionSpec = stringFlags('listen', 'socket', 'metrics-listen', 'known-peers');

/** Flags init and join share: where the new node's files go and how it takes part in its network. */
export const NEW_NODE_FLAGS: OptionSpec = {
  ...DAEMON_FLAGS,
  ...stringFlags('config', 'cert', 'key', 'name', 'address', 'export'),
  ...FORCE_FLAG,
  ...JSON_FLAG,
};

export function printJson(out: Output, value: unknown): void {
  out.stdout(JSON.stringify(value, null, 2));
}

export function refuseExisting(paths: string[], force: boolean): void {
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
export function addressFlag(values: Parsed['values'], prefix: Prefix, help: string): NetworkConfig['address'] {
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

export interface NewNode {
  config: Config;
  identity: GeneratedIdentity;
  name: string;
  configPath: string;
  certPath: string;
  keyPath: string;
}

export interface NewNetwork {
  name: string;
  prefix: Prefix;
  /**
   * networks.NAME.admins: given fingerprints (join: the inviting admin), or 'self' for this new
   * node's own (init: whoever creates a network administers it). Absent: no admins line.
   */
  admins?: string[] | 'self';
}

export interface NewNodeHooks {
  /** Refuses a --name (join: the inviter's own); throws UsageError. */
  checkName?: (name: string) => void;
  /**
   * Runs once every check passed, before the identity and config are written (join: the
   * pending invite). A failure here leaves no identity or config behind to half-work.
   */
  beforeWrite?: (configPath: string) => void;
}

/**
 * init and join: a new identity and a config with one network (and, for join, the inviter).
 * Everything is validated before anything is written, so a bad flag leaves no files behind. The
 * identity is made before the config is built because init's admins line holds its fingerprint.
 */
export async function createNewNode(
  values: Parsed['values'],
  network: NewNetwork,
  peers: PeerConfig[],
  help: string,
  hooks: NewNodeHooks = {},
): Promise<NewNode> {
  const configPath = pathFlag(values, 'config', DEFAULTS.configPath);
  const certPath = pathFlag(values, 'cert', DEFAULTS.cert);
  const keyPath = pathFlag(values, 'key', DEFAULTS.key);
  const name = nodeNameFlag(values, help, { name: hostname(), what: "this host's name" });
  hooks.checkName?.(name);
  const address = addressFlag(values, network.prefix, help);
  const exported = parseBoolFlag(values, 'export', true, help);
  const force = values.force === true;
  refuseExisting([configPath, certPath, keyPath], force);
  const identity = await generateIdentity(name);
  const net: NetworkConfig = { name: network.name, prefix: network.prefix, address, export: exported, mtu: DEFAULTS.mtu, routes: [] };
  if (network.admins !== undefined) net.admins = network.admins === 'self' ? [identity.fingerprint] : network.admins.map((fp) => fp.toLowerCase());
  const config = buildConfig({ path: configPath, cert: certPath, key: keyPath, values, network: net, peers, help });
  hooks.beforeWrite?.(configPath);
  writeIdentityFiles(certPath, keyPath, identity, { force });
  writeConfigFile(configPath, config, { force });
  return { config, identity, name, configPath, certPath, keyPath };
}

export function describeAddress(node: NewNode, network: string): string {
  return describeNetworkAddress(node.config.networks.get(network)!, node.identity.fingerprint);
}

/** A network as the JSON outputs show it: the address this node has there, and whether it is derived. */
export function networkJson(net: NetworkConfig, fingerprint: string): { name: string; prefix: string; address: string; auto: boolean } {
  return { name: net.name, prefix: formatPrefix(net.prefix), address: formatIp(resolveNetworkAddress(net, fingerprint)), auto: net.address === 'auto' };
}

/** Invites and keys are secrets: 0600 from the first byte, atomically replaced. */
export function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  // Exclusive, unpredictable temp name, fsync, rename: the same crash safety as keys.
  writeFileAtomic(path, content, 0o600);
}
