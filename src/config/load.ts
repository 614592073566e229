// Reads a config file (CONFIG.md) into the validated, defaulted, typed `Config`: every prefix,
// address and endpoint is parsed here, once. Every problem found is collected and reported at
// once, each naming the file, line and key, so a user fixing a config sees the whole list
// instead of one error per daemon start.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { isLogLevel, LOG_LEVELS } from '../log/logger.js';
import { formatPrefix, parseCidr, prefixesOverlap, type Prefix } from '../netgraph/addr.js';
import { interfaceNameProblem } from '../tun/name.js';
import { ConfigError } from './errors.js';
import { KeyLines } from './lines.js';
import { networkNameProblem } from './names.js';
import { isTable, Problems, Section, tomlType, type Table } from './toml.js';
import { peerNameProblem, undialableProblem } from './peer-values.js';
import { DEFAULTS, type Config, type DaemonConfig, type IdentityConfig, type NetworkConfig, type PeerConfig } from './types.js';
import {
  INBOUND_ONLY_NEEDS_FINGERPRINT,
  PIN_SOURCE,
  parseFingerprint,
  parseListen,
  parseMetricsListen,
  parseNetworkAddress,
  parsePeerAddress,
  staticAddressProblem,
  type ValueResult,
} from './values.js';

export { ConfigError } from './errors.js';
export { checkPeersAgainstIdentity, findSelfPeers, type SelfPeer } from './self-peer.js';

export interface LoadOptions {
  /** Base for `~/` paths and the default known_peers file; default os.homedir(). */
  homeDir?: string;
}

const ROOT_KEYS = ['identity', 'daemon', 'peers', 'networks'] as const;
const IDENTITY_KEYS = ['cert', 'key', 'fingerprint', 'known_peers'] as const;
const DAEMON_KEYS = ['listen', 'control_socket', 'metrics_listen', 'log_level', 'accept_unknown_peers', 'offload', 'relay', 'socket_group'] as const;
const PEER_KEYS = ['name', 'address', 'fingerprint', 'networks', 'allowed_routes', 'original'] as const;
const NETWORK_KEYS = ['prefix', 'address', 'export', 'interface', 'mtu', 'routes', 'admins'] as const;

export function loadConfig(path: string, options: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw readError(path, err);
  }
  return parseConfig(text, path, options);
}

/** loadConfig for a running daemon: the read does not hold up the event loop (reload, SIGHUP). */
export async function loadConfigAsync(path: string, options: LoadOptions = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw readError(path, err);
  }
  return parseConfig(text, path, options);
}

function readError(path: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file (create one with `vpnctl init`, or pass -config PATH)'
      : code === 'EACCES'
        ? 'permission denied (run as root or fix the file mode)'
        : (err as Error).message;
  return new ConfigError([`${path}: cannot read config file: ${why}`]);
}

/** `path` names the file in messages and is the base for relative paths inside it. */
export function parseConfig(text: string, path: string, options: LoadOptions = {}): Config {
  let raw: Table;
  try {
    // Integers as BigInt so `mtu = 1280.0` (a float) can be told apart from `mtu = 1280`.
    raw = parse(text, { integersAsBigInt: true }) as Table;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new ConfigError([`${path}:${err.line}:${err.column}: invalid TOML: ${what}`]);
  }

  const problems = new Problems(path, KeyLines.scan(text));
  const ctx: Context = { problems, configDir: dirname(resolve(path)), homeDir: options.homeDir ?? homedir() };
  const root = new Section(raw, [], problems, ROOT_KEYS);
  const identity = readIdentity(root.subsection('identity', IDENTITY_KEYS), ctx);
  const daemon = readDaemon(root.subsection('daemon', DAEMON_KEYS), ctx);
  const { networks, names } = readNetworks(raw['networks'], ctx);
  const peers = readPeers(raw['peers'], names, ctx);
  problems.throwIfAny();
  return { path: resolve(path), identity, daemon: present(daemon), peers: peers.map(present), networks };
}

interface Context {
  problems: Problems;
  configDir: string;
  homeDir: string;
}

/**
 * The readers return undefined for a value they could not parse, always after recording a
 * problem, and parseConfig throws before it would use one; this turns a broken promise into a
 * loud failure rather than a half-built Config.
 */
function present<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('config loader bug: a value failed to parse but no problem was recorded');
  return value;
}

/** The parsed value, or undefined after reporting the error at `key`. */
function valueAt<T>(s: Section, key: string, result: ValueResult<T>): T | undefined {
  if (result.ok) return result.value;
  s.problem(key, result.error);
  return undefined;
}

function readIdentity(s: Section, ctx: Context): IdentityConfig {
  const cert = s.requiredString('cert', `e.g. cert = "${DEFAULTS.cert}"`);
  const key = s.requiredString('key', `e.g. key = "${DEFAULTS.key}"`);
  const knownPeers = s.nonEmptyString('known_peers');
  const identity: IdentityConfig = {
    cert: resolvePath(cert ?? '', ctx),
    key: resolvePath(key ?? '', ctx),
    knownPeers: knownPeers !== undefined ? resolvePath(knownPeers, ctx) : join(ctx.homeDir, DEFAULTS.knownPeersInHome),
  };
  const fingerprint = readFingerprint(s);
  if (fingerprint) identity.fingerprint = fingerprint;
  return identity;
}

function readDaemon(s: Section, ctx: Context): DaemonConfig | undefined {
  const listen = valueAt(s, 'listen', parseListen(s.string('listen') ?? DEFAULTS.listen));
  const metricsListen = valueAt(s, 'metrics_listen', parseMetricsListen(s.string('metrics_listen') ?? DEFAULTS.metricsListen));
  const controlSocket = s.nonEmptyString('control_socket') ?? DEFAULTS.controlSocket;

  let logLevel = DEFAULTS.logLevel;
  const logLevelText = s.string('log_level');
  if (logLevelText !== undefined) {
    if (isLogLevel(logLevelText)) logLevel = logLevelText;
    else s.problem('log_level', `'${logLevelText}' is not a log level (use one of ${LOG_LEVELS.join(', ')})`);
  }
  const acceptUnknownPeers = s.boolean('accept_unknown_peers') ?? false;
  const offload = s.boolean('offload') ?? true;
  const relay = s.boolean('relay') ?? false;
  const socketGroup = s.string('socket_group') ?? '';
  if (socketGroup !== '' && !/^([a-z_][a-z0-9_-]{0,31}\$?|[0-9]{1,10})$/.test(socketGroup)) {
    s.problem('socket_group', `'${socketGroup}' is not a group name or number (like "vibepn", or "" for root only)`);
  }

  if (listen === undefined || metricsListen === undefined) return undefined;
  return { listen, controlSocket: resolvePath(controlSocket, ctx), metricsListen, logLevel, acceptUnknownPeers, offload, relay, socketGroup };
}

/**
 * `names` lists every [networks.NAME] section, valid or not, so a peer naming a broken network
 * is not also told the network is unknown; `networks` holds the ones that parsed.
 */
function readNetworks(value: unknown, ctx: Context): { networks: Map<string, NetworkConfig>; names: string[] } {
  const { problems } = ctx;
  const networks = new Map<string, NetworkConfig>();
  const names: string[] = [];
  if (value === undefined) return { networks, names };
  if (!isTable(value)) {
    problems.add(['networks'], `expected a table of networks ([networks.NAME] sections), got ${tomlType(value)}`);
    return { networks, names };
  }
  const interfaceOwner = new Map<string, string>();
  const prefixes: { name: string; prefix: Prefix }[] = [];
  for (const [name, netValue] of Object.entries(value)) {
    const path = ['networks', name];
    if (!isTable(netValue)) {
      problems.add(path, `expected a table ([networks.${name}] section), got ${tomlType(netValue)}`);
      continue;
    }
    names.push(name);
    const nameProblem = networkNameProblem(name);
    if (nameProblem) problems.add(path, nameProblem);
    const s = new Section(netValue, path, problems, NETWORK_KEYS);
    const { network, prefix, interfaceName } = readNetwork(name, s);
    if (prefix) {
      for (const other of prefixes) {
        if (prefixesOverlap(prefix, other.prefix)) {
          s.problem(
            'prefix',
            `${formatPrefix(prefix)} overlaps ${formatPrefix(other.prefix)} of network '${other.name}' (network prefixes must not overlap)`,
          );
        }
      }
      prefixes.push({ name, prefix });
    }
    if (interfaceName !== undefined) {
      const owner = interfaceOwner.get(interfaceName);
      if (owner !== undefined) s.problem('interface', `'${interfaceName}' is already used by network '${owner}'`);
      else interfaceOwner.set(interfaceName, name);
    }
    if (network) networks.set(name, network);
  }
  return { networks, names };
}

/** The network when every key parsed; its prefix and interface name also alone, for the cross-network checks. */
function readNetwork(name: string, s: Section): { network?: NetworkConfig; prefix?: Prefix; interfaceName?: string } {
  const prefixText = s.requiredString('prefix', `e.g. prefix = "${DEFAULTS.prefix}"`);
  let prefix: Prefix | undefined;
  if (prefixText !== undefined) {
    const parsed = parseCidr(prefixText);
    if (parsed.ok) prefix = parsed.prefix;
    else s.problem('prefix', parsed.error);
  }

  const addressText = s.string('address') ?? 'auto';
  const address = valueAt(s, 'address', parseNetworkAddress(addressText));
  if (address !== undefined && address !== 'auto' && prefix) {
    const problem = staticAddressProblem(addressText, address, prefix);
    if (problem) s.problem('address', problem);
  }

  let interfaceName = s.string('interface');
  if (interfaceName === '') interfaceName = undefined;
  const interfaceProblem = interfaceName === undefined ? null : interfaceNameProblem(interfaceName);
  if (interfaceProblem) {
    s.problem('interface', `'${interfaceName}' is not a valid interface name: it ${interfaceProblem} (or remove the line to derive one from the network name)`);
  }

  const mtu = s.integer('mtu') ?? DEFAULTS.mtu;
  // IPv6 requires links to carry 1280-byte packets (RFC 8200); 576 is the IPv4 minimum (RFC 791).
  const minMtu = prefix?.family === 6 ? 1280 : 576;
  if (mtu < minMtu || mtu > 65535) {
    s.problem('mtu', `${mtu} is out of range (${minMtu}..65535 for ${prefix?.family === 6 ? 'IPv6' : 'IPv4'} networks)`);
  }
  const exported = s.boolean('export') ?? true;
  const routes = s.cidrList('routes');
  const admins = readAdmins(s);

  if (prefix === undefined || address === undefined) return { prefix, interfaceName };
  const network: NetworkConfig = { name, prefix, address, export: exported, mtu, routes };
  if (interfaceName !== undefined) network.interface = interfaceName;
  if (admins !== undefined) network.admins = admins;
  return { network, prefix, interfaceName };
}

function readPeers(value: unknown, networkNames: string[], ctx: Context): (PeerConfig | undefined)[] {
  const { problems } = ctx;
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.add(['peers'], `expected an array of tables ([[peers]] sections), got ${tomlType(value)}`);
    return [];
  }
  const indexByName = new Map<string, number>();
  const nameByFingerprint = new Map<string, string>();
  return value.map((peerValue: unknown, index) => {
    const path = ['peers', index];
    if (!isTable(peerValue)) {
      problems.add(path, `expected a table ([[peers]] section), got ${tomlType(peerValue)}`);
      return undefined;
    }
    const s = new Section(peerValue, path, problems, PEER_KEYS);
    const name = s.requiredString('name', 'e.g. name = "node2"') ?? '';
    if (name !== '') {
      const nameProblem = peerNameProblem(name);
      if (nameProblem) s.problem('name', nameProblem);
      const first = indexByName.get(name);
      if (first !== undefined) s.problem('name', `duplicate peer name '${name}' (also used by peers[${first}])`);
      else indexByName.set(name, index);
    }

    const addressText = s.string('address');
    // A wrongly typed address is already reported; it must not also count as "" (inbound only).
    const address = addressText === undefined && s.has('address') ? undefined : valueAt(s, 'address', parsePeerAddress(addressText ?? ''));
    const undialable = address ? undialableProblem(address) : null;
    if (undialable) s.problem('address', undialable);
    const fingerprint = readFingerprint(s);
    if (fingerprint) {
      const owner = nameByFingerprint.get(fingerprint);
      if (owner !== undefined) s.problem('fingerprint', `${fingerprint} is already the fingerprint of peer '${owner}'`);
      else nameByFingerprint.set(fingerprint, name);
    }
    if (address === null && fingerprint === undefined) {
      s.problem('fingerprint', `required when address is "" (${INBOUND_ONLY_NEEDS_FINGERPRINT}; add fingerprint = "<64 hex>" ${PIN_SOURCE})`);
    }

    const peerNetworks = readPeerNetworks(s, networkNames);
    const allowedRoutes = s.cidrList('allowed_routes');
    const original = s.boolean('original') ?? false;
    if (original && address === null) {
      s.problem('original', 'an original VibePN node must be dialed by this node (data sent on a connection it dialed is lost): give its address');
    }
    if (address === undefined || fingerprint === null) return undefined;
    const peer: PeerConfig = { name, address, networks: peerNetworks, allowedRoutes };
    if (fingerprint) peer.fingerprint = fingerprint;
    if (original) peer.original = true;
    return peer;
  });
}

function readPeerNetworks(s: Section, networkNames: string[]): string[] {
  const peerNetworks = s.stringList('networks');
  if (peerNetworks === undefined && !s.has('networks')) {
    s.problem('networks', 'required key is missing (the networks this peer may announce routes for, e.g. networks = ["corp"])');
  } else if (peerNetworks?.length === 0) {
    s.problem('networks', 'must list at least one network');
  }
  const seen = new Set<string>();
  for (const net of peerNetworks ?? []) {
    if (seen.has(net)) s.problem('networks', `lists '${net}' twice`);
    seen.add(net);
    if (!networkNames.includes(net)) {
      const hint = networkNames.length > 0 ? `configured networks: ${networkNames.join(', ')}` : 'no [networks.NAME] sections are configured';
      s.problem('networks', `unknown network '${net}' (${hint})`);
    }
  }
  return peerNetworks ?? [];
}

/**
 * Reads an optional `fingerprint`: undefined when absent or "" (unset), null when it is not one
 * (already reported). Accepts colon-separated hex as printed by openssl.
 */
/**
 * networks.NAME.admins: the fingerprints whose signed membership records this node believes
 * (docs/CONFIG.md#v-admins). Absent: the network has no roster, as before issue 12.
 */
function readAdmins(s: Section): string[] | undefined {
  const list = s.stringList('admins');
  if (list === undefined) return undefined;
  const admins: string[] = [];
  list.forEach((text, index) => {
    const parsed = parseFingerprint(text);
    if (!parsed.ok) s.problem('admins', `entry ${index + 1}: ${parsed.error}`);
    else if (admins.includes(parsed.value)) s.problem('admins', `entry ${index + 1}: ${parsed.value} is listed twice`);
    else admins.push(parsed.value);
  });
  if (list.length === 0) s.problem('admins', 'is empty; list at least one admin fingerprint, or remove the line for a network without a roster');
  return admins;
}

function readFingerprint(s: Section): string | null | undefined {
  const text = s.string('fingerprint');
  if (text === undefined || text === '') return s.has('fingerprint') && text === undefined ? null : undefined;
  return valueAt(s, 'fingerprint', parseFingerprint(text)) ?? null;
}

/**
 * Relative paths are resolved against the config file's directory, not the daemon's working
 * directory: a directory holding config.toml, node.crt and node.key stays self-contained and
 * means the same wherever it lives and whoever starts the daemon.
 */
function resolvePath(value: string, ctx: Context): string {
  if (value === '~' || value.startsWith('~/')) return join(ctx.homeDir, value.slice(1));
  return resolve(ctx.configDir, value);
}
