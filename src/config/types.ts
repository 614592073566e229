// The validated, defaulted shape of a config file (CONFIG.md). Everything downstream of the
// loader works on these types and never on raw TOML or text: prefixes, addresses and endpoints
// are parsed once, by the loader, and formatted only for display (netgraph/addr.ts formatPrefix,
// formatIp; netgraph/hostport.ts formatHostPort).

import type { LogLevel } from '../log/logger.js';
import type { Prefix } from '../netgraph/addr.js';
import type { HostPort } from '../netgraph/hostport.js';

export interface IdentityConfig {
  cert: string;
  key: string;
  /** Optional pin of our own certificate: if set, must equal sha256(cert DER). */
  fingerprint?: string;
  /** TOFU store path; default ~/.vibepn/known_peers.json. */
  knownPeers: string;
}

export interface DaemonConfig {
  /** UDP address for QUIC, default 0.0.0.0:51820; the host is an IP literal. */
  listen: HostPort;
  controlSocket: string;
  /** null disables the metrics listener (`metrics_listen = ""`); host "" means every interface. Default ":9000". */
  metricsListen: HostPort | null;
  logLevel: LogLevel;
  acceptUnknownPeers: boolean;
  /**
   * TUN offloads (TSO, checksum, GRO-style writes) and TCP super-segments on the wire to peers
   * that accept them. false: plain TUNs and no C message, as a node that predates them. Default true.
   */
  offload: boolean;
  /**
   * Relay end-to-end QUIC packets between two of this node's peers that have no direct path
   * (PROTOCOL.md#v-relay). Default false.
   */
  relay: boolean;
  /**
   * A group whose members may use the control socket's read-only commands without root (the
   * socket is then 0660 in that group); "" keeps it root-only (0600). Default "".
   */
  socketGroup: string;
}

export interface PeerConfig {
  name: string;
  /** Where to dial it (IP literal or hostname); null (`address = ""`) means never dial, accept inbound only. */
  address: HostPort | null;
  /**
   * Lowercase 64 hex. Undefined = trust on first use, learned from a connection to `address`;
   * so required when address is null (the loader refuses an inbound-only peer without one).
   */
  fingerprint?: string;
  networks: string[];
  /**
   * Extra prefixes (outside the network prefix) this peer may announce, like WireGuard's
   * AllowedIPs. An addition to CONFIG.md: the route policy in PROTOCOL.md refers to "a prefix the
   * local config allows that peer to route" without naming the key.
   */
  allowedRoutes: Prefix[];
  /**
   * The peer runs the original VibePN (Go), whose quirks vibepn works around for it: it is
   * always dialed by us, data goes only on connections we dialed, and its network-wide
   * announcement stands for its own auto address (docs/CONFIG.md, `original`). Absent = false.
   */
  original?: true;
  /**
   * Not from the file: the overlay address each network's signed roster gives this peer (issue
   * 12). Where set, its host route in that network must be exactly this address (route policy).
   */
  signedAddresses?: ReadonlyMap<string, Uint8Array>;
  /** Not from the file: the peer exists only because a signed roster lists it (src/membership/). */
  fromRoster?: true;
}

export interface NetworkConfig {
  name: string;
  /** Host bits zero. */
  prefix: Prefix;
  /** "auto" (derived from the fingerprint) or a static address inside prefix (4 or 16 bytes). */
  address: 'auto' | Uint8Array;
  export: boolean;
  /** TUN name (<= 15 bytes); undefined = derived, unique per network. */
  interface?: string;
  /** Default 1280. */
  mtu: number;
  /** Extra prefixes this node exports (subnet router). */
  routes: Prefix[];
  /**
   * Fingerprints (lowercase hex) of the nodes that sign this network's membership records and
   * issue its short invites (issue 12, docs/CONFIG.md#v-admins). Absent: no roster for it.
   */
  admins?: string[];
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
  mtu: 8000,
  /** Relative to the home directory. */
  knownPeersInHome: '.vibepn/known_peers.json',
} as const;
