// Writes a Config as TOML for `vpnctl init` and `join`, which create the file. Hand-rendered
// rather than smol-toml's stringify so the file reads like the documented example: sections in
// CONFIG.md order, defaults left out where they would only be noise, and a header comment.
// Commands that change an existing file (add-peer, remove-peer, rekey) edit its text instead
// (edit.ts), with the [[peers]] rendering below, so the user's comments stay.
// Invariant (tested): parseConfig(renderConfig(c), c.path) deep-equals c for a valid c.

import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { LogLevel } from '../log/logger.js';
import { formatPrefix, parseCidr, type Prefix } from '../netgraph/addr.js';
import { ConfigError, parseConfig } from './load.js';
import { DEFAULTS, type Config, type DaemonConfig, type NetworkConfig, type PeerConfig } from './types.js';
import {
  formatEndpoint,
  formatNetworkAddress,
  formatOptionalEndpoint,
  parseFingerprint,
  parseListen,
  parseMetricsListen,
  parseNetworkAddress,
  parsePeerAddress,
  type ValueResult,
} from './values.js';

export function renderConfig(config: Config): string {
  const out: string[] = ['# vibepn configuration: every key is described in docs/CONFIG.md of the vibepn package (installed with npm: $(npm root -g)/vibepn/docs/CONFIG.md).', '# Written by vpnctl; add-peer and remove-peer edit it in place and keep comments.', ''];

  const { identity } = config;
  out.push('[identity]');
  out.push(`cert = ${tomlString(identity.cert)}`);
  out.push(`key = ${tomlString(identity.key)}`);
  if (identity.fingerprint) out.push(`fingerprint = ${tomlString(identity.fingerprint)}`);
  out.push(`known_peers = ${tomlString(identity.knownPeers)}`);

  const daemonLines = renderDaemon(config.daemon);
  if (daemonLines.length > 0) out.push('', '[daemon]', ...daemonLines);

  for (const peer of config.peers) out.push('', ...renderPeer(peer));

  for (const net of config.networks.values()) out.push('', ...renderNetwork(net));
  return out.join('\n') + '\n';
}

/** A [networks.NAME] section as its lines (defaults left out). */
export function renderNetwork(net: NetworkConfig): string[] {
  const out = [`[networks.${tomlKey(net.name)}]`];
  out.push(`prefix = ${tomlString(formatPrefix(net.prefix))}`);
  out.push(`address = ${tomlString(formatNetworkAddress(net.address))}`);
  out.push(`export = ${net.export}`);
  if (net.interface !== undefined) out.push(`interface = ${tomlString(net.interface)}`);
  if (net.mtu !== DEFAULTS.mtu) out.push(`mtu = ${net.mtu}`);
  if (net.routes.length > 0) out.push(`routes = ${tomlStringArray(net.routes.map(formatPrefix))}`);
  if (net.admins !== undefined) out.push(`admins = ${tomlStringArray(net.admins)}`);
  return out;
}

/** The keys of a [[peers]] table in the order they are written. */
export const PEER_KEY_ORDER = ['name', 'address', 'fingerprint', 'networks', 'allowed_routes', 'original'] as const;
export type PeerKey = (typeof PEER_KEY_ORDER)[number];

/**
 * Each key's value as TOML text, for the keys a [[peers]] table writes: name, address and
 * networks always, the rest only when they differ from the default. Two peers with equal values
 * here load as equal PeerConfigs, which is what lets edit.ts keep a line whose value is unchanged.
 */
export function peerValues(peer: PeerConfig): Map<PeerKey, string> {
  const values = new Map<PeerKey, string>([
    ['name', tomlString(peer.name)],
    ['address', tomlString(formatOptionalEndpoint(peer.address))],
  ]);
  if (peer.fingerprint) values.set('fingerprint', tomlString(peer.fingerprint));
  values.set('networks', tomlStringArray(peer.networks));
  if (peer.allowedRoutes.length > 0) values.set('allowed_routes', tomlStringArray(peer.allowedRoutes.map(formatPrefix)));
  if (peer.original) values.set('original', 'true');
  return values;
}

/** A [[peers]] table: its header and one line per key. */
export function renderPeer(peer: PeerConfig): string[] {
  return ['[[peers]]', ...[...peerValues(peer)].map(([key, value]) => `${key} = ${value}`)];
}

/** Only keys that differ from the defaults, so a later change of a default reaches old configs. */
function renderDaemon(daemon: DaemonConfig): string[] {
  const lines: string[] = [];
  const listen = formatEndpoint(daemon.listen);
  const metricsListen = formatOptionalEndpoint(daemon.metricsListen);
  if (listen !== DEFAULTS.listen) lines.push(`listen = ${tomlString(listen)}`);
  if (daemon.controlSocket !== DEFAULTS.controlSocket) lines.push(`control_socket = ${tomlString(daemon.controlSocket)}`);
  if (metricsListen !== DEFAULTS.metricsListen) lines.push(`metrics_listen = ${tomlString(metricsListen)}`);
  if (daemon.logLevel !== DEFAULTS.logLevel) lines.push(`log_level = ${tomlString(daemon.logLevel)}`);
  if (daemon.acceptUnknownPeers) lines.push('accept_unknown_peers = true');
  if (!daemon.offload) lines.push('offload = false');
  if (daemon.relay) lines.push('relay = true');
  if (daemon.socketGroup) lines.push(`socket_group = ${tomlString(daemon.socketGroup)}`);
  return lines;
}

/** A TOML basic string. JSON.stringify is not quite right: it leaves DEL raw, which TOML forbids. */
export function tomlString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function tomlStringArray(values: readonly string[]): string {
  return `[${values.map(tomlString).join(', ')}]`;
}

function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : tomlString(key);
}

/**
 * Validates and canonicalizes a programmatically built config (exactly what the daemon will load).
 * Problems name the key but no line: the lines would be those of text that is not on disk (yet),
 * which the user cannot open. Callers that build configs from flags check each flag first, so
 * that a mistake names the flag; what reaches this is a combination of values.
 */
export function checkConfig(config: Config): Config {
  try {
    return parseConfig(renderConfig(config), config.path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.errors.map((line) => `cannot write ${config.path}: ${withoutLocation(line, config.path)}`));
  }
}

/** A loader problem line without its "file:line:" (or "file:line:column:", or "file:") prefix. */
export function withoutLocation(problem: string, file: string): string {
  if (!problem.startsWith(file)) return problem;
  return problem.slice(file.length).replace(/^(?::\d+){0,2}: /, '');
}

/**
 * Writes `config` to `path` after validating it, atomically (a reader never sees half a file).
 * Without `force`, an existing file is left alone; the check-and-create is a single link(2),
 * so two concurrent `vpnctl init` runs cannot both win.
 */
export function writeConfigFile(path: string, config: Config, opts: { force?: boolean } = {}): void {
  const text = renderConfig(checkConfig({ ...config, path: resolve(path) }));
  mkdirSync(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(temp, text, { mode: 0o644 });
  try {
    chmodSync(temp, 0o644); // the umask may have narrowed the mode; the config holds no secrets
    if (opts.force) {
      renameSync(temp, path);
      return;
    }
    try {
      linkSync(temp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ConfigError([`${path}: already exists; pass --force to overwrite it`]);
      }
      throw err;
    }
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // already renamed into place
    }
  }
}

// ---- building configs in code (vpnctl, tests) ----
// The builders take text, as a config file would, and parse it with the loader's rules; a value
// that does not parse throws at once, naming it. Rules that relate values to each other (an
// address inside its prefix, peers naming known networks) are checkConfig's.

export interface NewConfigOptions {
  cert?: string;
  key?: string;
  fingerprint?: string;
  knownPeers?: string;
  daemon?: {
    listen?: string;
    controlSocket?: string;
    /** "" disables metrics. */
    metricsListen?: string;
    logLevel?: LogLevel;
    acceptUnknownPeers?: boolean;
    offload?: boolean;
    relay?: boolean;
    socketGroup?: string;
  };
  peers?: PeerConfig[];
  networks?: NetworkConfig[];
  /** Base for the default known_peers path; default os.homedir(). */
  homeDir?: string;
}

/** The parsed value, or an Error naming what was being built and the bad value. */
function parsed<T>(what: string, result: ValueResult<T>): T {
  if (!result.ok) throw new Error(`${what} ${result.error}`);
  return result.value;
}

function prefixesOf(what: string, texts: readonly string[]): Prefix[] {
  return texts.map((text, index) => {
    const cidr = parseCidr(text);
    if (!cidr.ok) throw new Error(`${what}[${index}] ${cidr.error}`);
    return cidr.prefix;
  });
}

/**
 * A Config with every default filled in. Relative paths are resolved against the config file's
 * directory, as the loader does, so the result round-trips through writeConfigFile/loadConfig.
 * Not cross-checked: pass it through checkConfig (writeConfigFile does) to catch mistakes.
 */
export function newConfig(path: string, options: NewConfigOptions = {}): Config {
  const configPath = resolve(path);
  const base = dirname(configPath);
  const identity: Config['identity'] = {
    cert: resolve(base, options.cert ?? DEFAULTS.cert),
    key: resolve(base, options.key ?? DEFAULTS.key),
    knownPeers: resolve(base, options.knownPeers ?? join(options.homeDir ?? homedir(), DEFAULTS.knownPeersInHome)),
  };
  if (options.fingerprint) identity.fingerprint = parsed('identity.fingerprint', parseFingerprint(options.fingerprint));
  const daemon = options.daemon ?? {};
  return {
    path: configPath,
    identity,
    daemon: {
      listen: parsed('daemon.listen', parseListen(daemon.listen ?? DEFAULTS.listen)),
      controlSocket: resolve(base, daemon.controlSocket ?? DEFAULTS.controlSocket),
      metricsListen: parsed('daemon.metrics_listen', parseMetricsListen(daemon.metricsListen ?? DEFAULTS.metricsListen)),
      logLevel: daemon.logLevel ?? DEFAULTS.logLevel,
      acceptUnknownPeers: daemon.acceptUnknownPeers ?? false,
      offload: daemon.offload ?? true,
      relay: daemon.relay ?? false,
      socketGroup: daemon.socketGroup ?? '',
    },
    peers: [...(options.peers ?? [])],
    networks: new Map((options.networks ?? []).map((net) => [net.name, net])),
  };
}

/** A network section with defaults: address "auto", export true, MTU 1280, no extra routes. */
export function newNetwork(
  name: string,
  prefix: string,
  options: { address?: string; export?: boolean; interface?: string; mtu?: number; routes?: string[]; admins?: string[] } = {},
): NetworkConfig {
  const what = `network '${name}'`;
  const cidr = parseCidr(prefix);
  if (!cidr.ok) throw new Error(`${what}: prefix ${cidr.error}`);
  const network: NetworkConfig = {
    name,
    prefix: cidr.prefix,
    address: parsed(`${what}: address`, parseNetworkAddress(options.address ?? 'auto')),
    export: options.export ?? true,
    mtu: options.mtu ?? DEFAULTS.mtu,
    routes: prefixesOf(`${what}: routes`, options.routes ?? []),
  };
  if (options.interface !== undefined && options.interface !== '') network.interface = options.interface;
  if (options.admins !== undefined) network.admins = options.admins.map((fp) => parsed(`${what}: admins`, parseFingerprint(fp)));
  return network;
}

/**
 * A peer entry with defaults: no address (inbound only), no pin, no extra routes. An inbound-only
 * peer needs a fingerprint to pass checkConfig; tests of admission alone may leave it out.
 */
export function newPeer(
  name: string,
  networks: string[],
  options: { address?: string; fingerprint?: string; allowedRoutes?: string[]; original?: boolean } = {},
): PeerConfig {
  const what = `peer '${name}'`;
  const peer: PeerConfig = {
    name,
    address: parsed(`${what}: address`, parsePeerAddress(options.address ?? '')),
    networks: [...networks],
    allowedRoutes: prefixesOf(`${what}: allowed_routes`, options.allowedRoutes ?? []),
  };
  if (options.fingerprint) peer.fingerprint = parsed(`${what}: fingerprint`, parseFingerprint(options.fingerprint));
  if (options.original) peer.original = true;
  return peer;
}
