// The validated, defaulted shape of a config file (CONFIG.md). Everything downstream of the
// loader works on these types and never on raw TOML.

import type { LogLevel } from '../log/logger.js';

export interface IdentityConfig {
  cert: string;
  key: string;
  /** Optional pin of our own certificate: if set, must equal sha256(cert DER). */
  fingerprint?: string;
  /** TOFU store path; default ~/.vibepn/known_peers.json. */
  knownPeers: string;
}

export interface DaemonConfig {
  /** UDP host:port for QUIC, default "0.0.0.0:51820". */
  listen: string;
  controlSocket: string;
  /** "" disables the metrics listener. Default ":9000". */
  metricsListen: string;
  logLevel: LogLevel;
  acceptUnknownPeers: boolean;
}

export interface PeerConfig {
  name: string;
  /** host:port; "" means never dial, accept inbound only. */
  address: string;
  /** Lowercase 64 hex, or undefined for TOFU by name. */
  fingerprint?: string;
  networks: string[];
  /**
   * Extra prefixes (outside the network prefix) this peer may announce, like WireGuard's
   * AllowedIPs. An addition to CONFIG.md: the route policy in PROTOCOL.md refers to "a prefix the
   * local config allows that peer to route" without naming the key.
   */
  allowedRoutes: string[];
}

export interface NetworkConfig {
  name: string;
  /** Canonical CIDR text, host bits zero. */
  prefix: string;
  /** "auto" or a static address inside prefix (canonical text). */
  address: string;
  export: boolean;
  /** TUN name (<= 15 bytes); undefined = derived, unique per network. */
  interface?: string;
  /** Default 1280. */
  mtu: number;
  /** Extra prefixes this node exports (subnet router). */
  routes: string[];
}

export interface Config {
  /** The file this was loaded from (used in error messages and by reload). */
  path: string;
  identity: IdentityConfig;
  daemon: DaemonConfig;
  peers: PeerConfig[];
  /** Keyed by network name, in file order. */
  networks: Map<string, NetworkConfig>;
}

export const DEFAULTS = {
  configPath: '/etc/vibepn/config.toml',
  cert: '/etc/vibepn/certs/node.crt',
  key: '/etc/vibepn/certs/node.key',
  listen: '0.0.0.0:51820',
  controlSocket: '/var/run/vibepn.sock',
  metricsListen: ':9000',
  logLevel: 'info' as LogLevel,
  network: 'corp',
  prefix: '10.42.0.0/24',
  mtu: 1280,
  /** Relative to the home directory. */
  knownPeersInHome: '.vibepn/known_peers.json',
} as const;
