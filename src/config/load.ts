// Reads a config file (CONFIG.md) into the validated, defaulted `Config`. Every problem found
// is collected and reported at once, each naming the file, line and key, so a user fixing a
// config sees the whole list instead of one error per daemon start.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { isLogLevel, LOG_LEVELS } from '../log/logger.js';
import {
  bytesEqual,
  formatIp,
  formatPrefix,
  familyOf,
  maxPrefixLength,
  parseCidr,
  parseIp,
  prefixContains,
  prefixesOverlap,
  type Prefix,
} from '../netgraph/addr.js';
import { parseHostPort } from '../netgraph/hostport.js';
import { KeyLines, type KeyPath } from './lines.js';
import { DEFAULTS, type Config, type DaemonConfig, type IdentityConfig, type NetworkConfig, type PeerConfig } from './types.js';

/** Everything wrong with a config file; `message` is one human-readable line per problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly errors: string[]) {
    super(errors.join('\n'));
  }
}

export interface LoadOptions {
  /** Base for `~/` paths and the default known_peers file; default os.homedir(). */
  homeDir?: string;
}

const ROOT_KEYS = ['identity', 'daemon', 'peers', 'networks'] as const;
const IDENTITY_KEYS = ['cert', 'key', 'fingerprint', 'known_peers'] as const;
const DAEMON_KEYS = ['listen', 'control_socket', 'metrics_listen', 'log_level', 'accept_unknown_peers'] as const;
const PEER_KEYS = ['name', 'address', 'fingerprint', 'networks', 'allowed_routes'] as const;
const NETWORK_KEYS = ['prefix', 'address', 'export', 'interface', 'mtu', 'routes'] as const;

const NETWORK_NAME_RE = /^[A-Za-z0-9_.-]{1,255}$/;
/** Linux IFNAMSIZ is 16 including the terminating NUL. */
const INTERFACE_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const FINGERPRINT_HINT = 'expected 64 hex digits, the SHA-256 of the DER certificate';

export function loadConfig(path: string, options: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file (create one with `vpnctl init`, or pass -config PATH)'
        : code === 'EACCES'
          ? 'permission denied (run as root or fix the file mode)'
          : (err as Error).message;
    throw new ConfigError([`${path}: cannot read config file: ${why}`]);
  }
  return parseConfig(text, path, options);
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
  const networks = readNetworks(raw['networks'], ctx);
  const peers = readPeers(raw['peers'], networks, ctx);
  problems.throwIfAny();
  return { path: resolve(path), identity, daemon, peers, networks };
}

interface Context {
  problems: Problems;
  configDir: string;
  homeDir: string;
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

function readDaemon(s: Section, ctx: Context): DaemonConfig {
  const listen = s.string('listen') ?? DEFAULTS.listen;
  const listenCheck = parseHostPort(listen, { allowPortZero: true });
  if (!listenCheck.ok) s.problem('listen', listenCheck.error);

  const metricsListen = s.string('metrics_listen') ?? DEFAULTS.metricsListen;
  if (metricsListen !== '') {
    const check = parseHostPort(metricsListen, { allowEmptyHost: true, allowPortZero: true });
    if (!check.ok) s.problem('metrics_listen', `${check.error}; use "" to disable metrics`);
  }

  const controlSocket = s.nonEmptyString('control_socket') ?? DEFAULTS.controlSocket;

  let logLevel = DEFAULTS.logLevel;
  const logLevelText = s.string('log_level');
  if (logLevelText !== undefined) {
    if (isLogLevel(logLevelText)) logLevel = logLevelText;
    else s.problem('log_level', `'${logLevelText}' is not a log level (use one of ${LOG_LEVELS.join(', ')})`);
  }

  return {
    listen,
    controlSocket: resolvePath(controlSocket, ctx),
    metricsListen,
    logLevel,
    acceptUnknownPeers: s.boolean('accept_unknown_peers') ?? false,
  };
}

function readNetworks(value: unknown, ctx: Context): Map<string, NetworkConfig> {
  const { problems } = ctx;
  const networks = new Map<string, NetworkConfig>();
  if (value === undefined) return networks;
  if (!isTable(value)) {
    problems.add(['networks'], `expected a table of networks ([networks.NAME] sections), got ${tomlType(value)}`);
    return networks;
  }
  const interfaceOwner = new Map<string, string>();
  const prefixes: { name: string; prefix: Prefix }[] = [];
  for (const [name, netValue] of Object.entries(value)) {
    const path = ['networks', name];
    if (!isTable(netValue)) {
      problems.add(path, `expected a table ([networks.${name}] section), got ${tomlType(netValue)}`);
      continue;
    }
    if (!NETWORK_NAME_RE.test(name)) {
      problems.add(path, `'${name}' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`);
    }
    const s = new Section(netValue, path, problems, NETWORK_KEYS);
    const { network, prefix } = readNetwork(name, s);
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
    if (network.interface !== undefined) {
      const owner = interfaceOwner.get(network.interface);
      if (owner !== undefined) s.problem('interface', `'${network.interface}' is already used by network '${owner}'`);
      else interfaceOwner.set(network.interface, name);
    }
    // Kept even when invalid, so peers naming it don't get a misleading "unknown network" too.
    networks.set(name, network);
  }
  return networks;
}

function readNetwork(name: string, s: Section): { network: NetworkConfig; prefix?: Prefix } {
  let prefix: Prefix | undefined;
  const prefixText = s.requiredString('prefix', `e.g. prefix = "${DEFAULTS.prefix}"`);
  if (prefixText !== undefined) {
    const parsed = parseCidr(prefixText);
    if (parsed.ok) prefix = parsed.prefix;
    else s.problem('prefix', parsed.error);
  }

  const addressText = s.string('address') ?? 'auto';
  const address = addressText === 'auto' ? 'auto' : checkStaticAddress(addressText, prefix, s);

  let interfaceName = s.string('interface');
  if (interfaceName === '') interfaceName = undefined;
  if (interfaceName !== undefined && (!INTERFACE_NAME_RE.test(interfaceName) || interfaceName === '.' || interfaceName === '..')) {
    s.problem('interface', `'${interfaceName}' is not a valid interface name (1..15 characters from A-Z a-z 0-9 _ . -)`);
  }

  const mtu = s.integer('mtu') ?? DEFAULTS.mtu;
  // IPv6 requires links to carry 1280-byte packets (RFC 8200); 576 is the IPv4 minimum (RFC 791).
  const minMtu = prefix?.family === 6 ? 1280 : 576;
  if (mtu < minMtu || mtu > 65535) {
    s.problem('mtu', `${mtu} is out of range (${minMtu}..65535 for ${prefix?.family === 6 ? 'IPv6' : 'IPv4'} networks)`);
  }

  const network: NetworkConfig = {
    name,
    prefix: prefix ? formatPrefix(prefix) : (prefixText ?? ''),
    address,
    export: s.boolean('export') ?? true,
    mtu,
    routes: s.cidrList('routes'),
  };
  if (interfaceName !== undefined) network.interface = interfaceName;
  return prefix ? { network, prefix } : { network };
}

/** Validates a static address against its prefix and returns its canonical text. */
function checkStaticAddress(text: string, prefix: Prefix | undefined, s: Section): string {
  const bytes = parseIp(text);
  if (!bytes) {
    s.problem('address', `'${text}' is not an IP address (use an address inside the prefix, or "auto")`);
    return text;
  }
  if (!prefix) return formatIp(bytes);
  const prefixText = formatPrefix(prefix);
  const hostBits = maxPrefixLength(prefix.family) - prefix.length;
  const family = familyOf(bytes);
  if (family !== prefix.family) {
    s.problem('address', `'${text}' is an IPv${family} address but prefix ${prefixText} is IPv${prefix.family}`);
  } else if (!prefixContains(prefix, bytes)) {
    s.problem('address', `'${text}' is outside prefix ${prefixText}`);
  } else if (hostBits >= 2 && bytesEqual(bytes, prefix.bytes)) {
    // Point-to-point /31, /127 and single-host prefixes have no network address to avoid.
    s.problem('address', `'${text}' is the network address of ${prefixText}; use a host address or "auto"`);
  } else if (hostBits >= 2 && family === 4 && bytesEqual(bytes, lastAddress(prefix))) {
    s.problem('address', `'${text}' is the broadcast address of ${prefixText}; use a host address or "auto"`);
  }
  return formatIp(bytes);
}

function lastAddress(prefix: Prefix): Uint8Array {
  const out = new Uint8Array(prefix.bytes);
  for (let i = 0; i < out.length; i++) {
    const bitsHere = prefix.length - i * 8;
    if (bitsHere < 8) out[i] = out[i]! | (0xff >> Math.max(bitsHere, 0));
  }
  return out;
}

function readPeers(value: unknown, networks: Map<string, NetworkConfig>, ctx: Context): PeerConfig[] {
  const { problems } = ctx;
  const peers: PeerConfig[] = [];
  if (value === undefined) return peers;
  if (!Array.isArray(value)) {
    problems.add(['peers'], `expected an array of tables ([[peers]] sections), got ${tomlType(value)}`);
    return peers;
  }
  const indexByName = new Map<string, number>();
  const nameByFingerprint = new Map<string, string>();
  value.forEach((peerValue: unknown, index) => {
    const path = ['peers', index];
    if (!isTable(peerValue)) {
      problems.add(path, `expected a table ([[peers]] section), got ${tomlType(peerValue)}`);
      return;
    }
    const s = new Section(peerValue, path, problems, PEER_KEYS);
    const name = s.requiredString('name', 'e.g. name = "node2"') ?? '';
    if (name !== '') {
      const first = indexByName.get(name);
      if (first !== undefined) s.problem('name', `duplicate peer name '${name}' (also used by peers[${first}])`);
      else indexByName.set(name, index);
    }

    const address = s.string('address') ?? '';
    if (address !== '') {
      const check = parseHostPort(address);
      if (!check.ok) s.problem('address', `${check.error}; use "" to only accept inbound connections`);
    }

    const fingerprint = readFingerprint(s);
    if (fingerprint) {
      const owner = nameByFingerprint.get(fingerprint);
      if (owner !== undefined) s.problem('fingerprint', `${fingerprint} is already the fingerprint of peer '${owner}'`);
      else nameByFingerprint.set(fingerprint, name);
    }

    const peerNetworks = s.stringList('networks');
    if (peerNetworks === undefined && !s.has('networks')) {
      s.problem('networks', 'required key is missing (the networks this peer may announce routes for, e.g. networks = ["corp"])');
    } else if (peerNetworks?.length === 0) {
      s.problem('networks', 'must list at least one network');
    }
    const known = [...networks.keys()];
    const seen = new Set<string>();
    for (const net of peerNetworks ?? []) {
      if (seen.has(net)) s.problem('networks', `lists '${net}' twice`);
      seen.add(net);
      if (!networks.has(net)) {
        const hint = known.length > 0 ? `configured networks: ${known.join(', ')}` : 'no [networks.NAME] sections are configured';
        s.problem('networks', `unknown network '${net}' (${hint})`);
      }
    }

    const peer: PeerConfig = {
      name,
      address,
      networks: peerNetworks ?? [],
      allowedRoutes: s.cidrList('allowed_routes'),
    };
    if (fingerprint) peer.fingerprint = fingerprint;
    peers.push(peer);
  });
  return peers;
}

/** Reads an optional `fingerprint`; "" means unset. Accepts colon-separated hex as printed by openssl. */
function readFingerprint(s: Section): string | undefined {
  const text = s.string('fingerprint');
  if (text === undefined || text === '') return undefined;
  const fingerprint = normalizeFingerprint(text);
  if (!fingerprint) s.problem('fingerprint', `'${text}' is not a valid fingerprint (${FINGERPRINT_HINT})`);
  return fingerprint ?? undefined;
}

/** Lowercase 64-hex form of a SHA-256 fingerprint, or null if `text` is not one. */
export function normalizeFingerprint(text: string): string | null {
  const hex = /^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/.test(text) ? text.replaceAll(':', '') : text;
  return /^[0-9a-fA-F]{64}$/.test(hex) ? hex.toLowerCase() : null;
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

// ---- typed access to raw TOML tables, recording problems instead of throwing ----

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function tomlType(value: unknown): string {
  if (typeof value === 'bigint') return 'integer';
  if (typeof value === 'number') return 'float';
  if (typeof value === 'string' || typeof value === 'boolean') return typeof value;
  if (value instanceof Date) return 'datetime';
  if (Array.isArray(value)) return 'array';
  return 'table';
}

class Section {
  constructor(
    private readonly table: Table,
    private readonly path: KeyPath,
    private readonly problems: Problems,
    known: readonly string[],
  ) {
    for (const key of Object.keys(table)) {
      if (!known.includes(key)) problems.unknownKey([...path, key], known);
    }
  }

  problem(key: string | number, text: string): void {
    this.problems.add([...this.path, key], text);
  }

  has(key: string): boolean {
    return this.table[key] !== undefined;
  }

  /** A nested table; an empty one when absent, so its defaults apply. */
  subsection(key: string, known: readonly string[]): Section {
    const value = this.table[key];
    if (value !== undefined && !isTable(value)) this.problem(key, `expected a table ([${key}] section), got ${tomlType(value)}`);
    return new Section(isTable(value) ? value : {}, [...this.path, key], this.problems, known);
  }

  string(key: string): string | undefined {
    return this.typed(key, 'a string', (v): v is string => typeof v === 'string');
  }

  nonEmptyString(key: string): string | undefined {
    const value = this.string(key);
    if (value === '') this.problem(key, 'must not be empty (remove the line to use the default)');
    return value || undefined;
  }

  requiredString(key: string, example: string): string | undefined {
    if (!this.has(key)) {
      this.problem(key, `required key is missing (${example})`);
      return undefined;
    }
    const value = this.string(key);
    if (value === '') this.problem(key, `must not be empty (${example})`);
    return value;
  }

  boolean(key: string): boolean | undefined {
    return this.typed(key, 'a boolean', (v): v is boolean => typeof v === 'boolean');
  }

  integer(key: string): number | undefined {
    const value = this.typed(key, 'an integer', (v): v is bigint => typeof v === 'bigint');
    return value === undefined ? undefined : Number(value);
  }

  stringList(key: string): string[] | undefined {
    const value = this.typed(key, 'an array of strings', (v): v is unknown[] => Array.isArray(v));
    if (value === undefined) return undefined;
    const bad = value.findIndex((item) => typeof item !== 'string');
    if (bad >= 0) {
      this.problems.add([...this.path, key, bad], `expected a string, got ${tomlType(value[bad])}`);
      return undefined;
    }
    return value as string[];
  }

  /** An optional list of CIDRs, canonicalized; [] when absent. */
  cidrList(key: string): string[] {
    const out: string[] = [];
    (this.stringList(key) ?? []).forEach((text, index) => {
      const parsed = parseCidr(text);
      if (parsed.ok) out.push(formatPrefix(parsed.prefix));
      else this.problems.add([...this.path, key, index], parsed.error);
    });
    return out;
  }

  private typed<T>(key: string, expected: string, test: (value: unknown) => value is T): T | undefined {
    const value = this.table[key];
    if (value === undefined) return undefined;
    if (test(value)) return value;
    this.problem(key, `expected ${expected}, got ${tomlType(value)}`);
    return undefined;
  }
}

class Problems {
  private readonly found: { line: number; text: string }[] = [];

  constructor(
    private readonly file: string,
    private readonly lines: KeyLines,
  ) {}

  add(path: KeyPath, problem: string): void {
    this.push(path, (where) => `${where}: ${displayPath(path)}: ${problem}`);
  }

  unknownKey(path: KeyPath, known: readonly string[]): void {
    const key = String(path[path.length - 1]);
    const suggestion = closestKey(key, known);
    const hint = suggestion ? `did you mean '${suggestion}'?` : `known keys: ${known.join(', ')}`;
    this.push(path, (where) => `${where}: unknown key '${displayPath(path)}' (${hint})`);
  }

  throwIfAny(): void {
    if (this.found.length === 0) return;
    // In file order, as an editor would walk them; Array.prototype.sort is stable.
    this.found.sort((a, b) => a.line - b.line);
    throw new ConfigError(this.found.map((p) => p.text));
  }

  private push(path: KeyPath, render: (where: string) => string): void {
    const line = this.lines.lineOf(path);
    const where = line === undefined ? this.file : `${this.file}:${line}`;
    this.found.push({ line: line ?? Number.MAX_SAFE_INTEGER, text: render(where) });
  }
}

/** "networks.corp.prefix", "peers[1].name", 'networks."a b".mtu' */
export function displayPath(path: KeyPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = /^[A-Za-z0-9_-]+$/.test(segment) ? segment : JSON.stringify(segment);
      out += out === '' ? key : `.${key}`;
    }
  }
  return out;
}

function closestKey(key: string, known: readonly string[]): string | undefined {
  const normalized = key.toLowerCase().replaceAll('-', '_');
  const limit = key.length <= 3 ? 1 : key.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const distance = editDistance(normalized, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
