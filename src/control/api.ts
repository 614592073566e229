// The local control API's commands and results (PROTOCOL.md section 7), shared by the daemon,
// which answers them, and vpnctl, which prints them. One list of commands, one shape per result.

export const CONTROL_COMMANDS = ['status', 'peers', 'routes', 'reload', 'goodbye', 'ping', 'members', 'revoke'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export function isControlCommand(value: string): value is ControlCommand {
  return (CONTROL_COMMANDS as readonly string[]).includes(value);
}

export interface NetworkStatus {
  name: string;
  interface: string;
  address: string;
  prefix: string;
  export: boolean;
}

export interface StatusResult {
  name: string;
  uptime_s: number;
  fingerprint: string;
  listen: string;
  port: number;
  peers_connected: number;
  peers_configured: number;
  /** Live connections carrying a session; one per connected peer once duplicates are settled. */
  connections: number;
  routes: number;
  networks: NetworkStatus[];
  /** What needs attention, one line each (no TUN devices, peers down, a refused reload, …); empty when all is well. */
  health?: string[];
}

/**
 * How this node came to trust a peer's key: pinned in the config, a member of a signed roster
 * (not in the config file), learned on first use, not yet, or admitted as unknown.
 */
export type PeerTrust = 'pinned' | 'roster' | 'learned' | 'unlearned' | 'unknown';

export interface PeerRow {
  name: string;
  fingerprint: string;
  address: string;
  connected: boolean;
  last_seen: string | null;
  direction?: 'inbound' | 'outbound' | null;
  remote?: string | null;
  connected_since?: string | null;
  last_error?: string | null;
  trust?: PeerTrust;
  /** How traffic reaches it: straight over UDP, or through a relay (PROTOCOL.md#v-relay); null while down. */
  path?: 'direct' | 'relay' | null;
  /** The relay's peer name when path is "relay", else null. */
  via?: string | null;
  /** Its overlay addresses: its host routes, and the auto address derived for each shared network. */
  addresses?: string[];
  /** Bytes received from and sent to it on the active connection (QUIC payload and overhead), null while down. */
  rx_bytes?: number | null;
  tx_bytes?: number | null;
  /** Smoothed round-trip time of the active connection in ms, null while down or before a sample. */
  rtt_ms?: number | null;
}

export interface RouteRow {
  network: string;
  prefix: string;
  peer: string;
  peer_name: string | null;
  metric: number;
}

/** One round trip of `ping`: a QUIC PING on the peer's active connection and its acknowledgment. */
export interface PingReply {
  seq: number;
  /** null: no answer within the timeout (or the peer went down meanwhile). */
  rtt_ms: number | null;
  path: 'direct' | 'relay' | null;
  /** The peer's UDP address, or `via <relay>`. */
  endpoint: string | null;
}

/** One member of a network's signed roster (issue 12), as `vpnctl members` shows it. */
export interface MemberRow {
  network: string;
  name: string;
  /** Its signed overlay address: the one host route it may announce in the network. */
  address: string;
  fingerprint: string;
  /** Subnet routes the record lets it announce, CIDR. */
  routes: string[];
  /** Where it may be dialed, "host:port", as the admin saw it. */
  endpoints: string[];
  /** The admin that signed the record: its name when this node knows it, else its fingerprint. */
  signed_by: string;
  signed_by_fingerprint: string;
  version: string;
  /** ISO times. */
  issued_at: string;
  expires_at: string | null;
  /** This node itself. */
  self: boolean;
  /** This node has an open session with it (always true for self). */
  reachable: boolean;
  /** Why it is not a peer here although listed (a name or fingerprint the local config holds otherwise), else null. */
  refused: string | null;
}

/** A network's roster as this node holds it. */
export interface RosterStatus {
  network: string;
  admins: string[];
  /** This node is one of the admins: it may issue invites and revoke. */
  admin: boolean;
  members: MemberRow[];
  /** Revoked members still remembered (so older records of theirs stay refused), by name. */
  revoked: string[];
}

export interface RevokeResult {
  network: string;
  name: string;
  fingerprint: string;
  /** The revocation record's version (u64 as decimal text). */
  version: string;
  /** Sessions the revocation was sent on at once. */
  told: number;
}

export interface ControlResults {
  status: StatusResult;
  peers: PeerRow[];
  routes: RouteRow[];
  /** What the reload changed, in words. */
  reload: string;
  goodbye: string;
  ping: PingReply[];
  /** Request: { cmd: 'members', network?: string }. */
  members: RosterStatus[];
  /** Request: { cmd: 'revoke', name: string, network?: string } (needed when the name is in several rosters). */
  revoke: RevokeResult;
}
