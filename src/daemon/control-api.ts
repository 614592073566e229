// The daemon's side of the control API: dispatches a request to its command and renders the
// daemon's state into the result shapes vpnctl prints (src/control/api.ts).

import { stat } from 'node:fs/promises';
import type { Clock } from '../clock/clock.js';
import { resolveNetworkAddress } from '../config/address.js';
import type { Config } from '../config/types.js';
import {
  CONTROL_COMMANDS,
  isControlCommand,
  type ControlResults,
  type PeerRow,
  type PeerTrust,
  type PingReply,
  type RevokeResult,
  type RosterStatus,
  type RouteRow,
  type StatusResult,
} from '../control/api.js';
import type { ControlRequest } from '../control/socket.js';
import type { TrustStore } from '../crypto/trust.js';
import { formatIp, formatPrefix } from '../netgraph/addr.js';
import { formatHostPort } from '../netgraph/hostport.js';
import type { Routes } from '../netgraph/routes.js';
import type { Link, Peer } from '../peer/peer.js';
import type { Connections } from '../peer/connections.js';
import type { PeerMap } from '../peer/peers.js';

/** What the control API reads; the daemon owns all of it. */
export interface ControlState {
  readonly name: string;
  readonly fingerprint: string;
  readonly startedAt: number;
  /** The bound UDP port. */
  readonly port: number;
  readonly clock: Clock;
  readonly config: Config;
  readonly trust: TrustStore;
  readonly peers: PeerMap;
  readonly routes: Routes<Peer>;
  readonly connections: Pick<Connections, 'connectionCount'>;
  interfaceName(network: string): string | undefined;
  /** The relay a relayed link goes through. */
  relayOf(link: Link): Peer | undefined;
}

export interface ControlActions {
  reload(): Promise<string>;
  /** The last reload that was refused (SIGHUP or vpnctl), if it is the latest attempt. */
  refusedReload?(): { at: number; error: string } | null;
  /** Started with --no-tun: sessions and routes, no interfaces. */
  readonly noTun?: boolean;
  /** Called after the answer went out. */
  shutdown(): void;
  /** The signed rosters (src/membership/): `vpnctl members` and `vpnctl revoke`. */
  readonly membership?: {
    members(network: string | undefined): RosterStatus[];
    revoke(name: string, network: string | undefined): Promise<RevokeResult>;
  };
}

export class ControlApi {
  constructor(
    private readonly state: ControlState,
    private readonly actions: ControlActions,
  ) {}

  async handle(request: ControlRequest): Promise<ControlResults[keyof ControlResults]> {
    if (!isControlCommand(request.cmd)) {
      throw new Error(`unknown command '${request.cmd}' (commands: ${CONTROL_COMMANDS.join(', ')})`);
    }
    switch (request.cmd) {
      case 'status':
        return { ...this.status(), health: await this.health() };
      case 'peers':
        return this.peers();
      case 'routes':
        return this.routes();
      case 'reload':
        return await this.actions.reload();
      case 'goodbye':
        // Answer first, then shut down: the client should hear that it worked.
        setImmediate(() => this.actions.shutdown());
        return 'shutting down';
      case 'ping':
        return await this.ping(request.peer, request.count);
      case 'members':
        return this.members(request.network);
      case 'revoke':
        return await this.revoke(request.name, request.network);
    }
  }

  status(): StatusResult {
    const { state } = this;
    const config = state.config;
    const listen = config.daemon.listen;
    return {
      name: state.name,
      uptime_s: Math.round((state.clock.now() - state.startedAt) / 1000),
      fingerprint: state.fingerprint,
      listen: formatHostPort(listen.host, listen.port),
      port: state.port,
      peers_connected: state.peers.connectedCount(),
      peers_configured: config.peers.length,
      connections: state.connections.connectionCount(),
      routes: state.routes.list().length,
      networks: [...config.networks.values()].map((net) => ({
        name: net.name,
        interface: state.interfaceName(net.name) ?? '',
        address: formatIp(resolveNetworkAddress(net, state.fingerprint)),
        prefix: formatPrefix(net.prefix),
        export: net.export,
      })),
    };
  }

  private members(network: unknown): RosterStatus[] {
    if (network !== undefined && typeof network !== 'string') throw new Error('members: "network" must be a network name');
    const membership = this.actions.membership;
    if (network !== undefined && !this.state.config.networks.has(network)) {
      throw new Error(`no network '${network}' here (networks: ${[...this.state.config.networks.keys()].join(', ') || 'none'})`);
    }
    return membership ? membership.members(network) : [];
  }

  private async revoke(name: unknown, network: unknown): Promise<RevokeResult> {
    if (typeof name !== 'string' || name === '') throw new Error('revoke needs a member name: {"cmd":"revoke","name":"NAME"}');
    if (network !== undefined && typeof network !== 'string') throw new Error('revoke: "network" must be a network name');
    const membership = this.actions.membership;
    if (!membership) throw new Error('this daemon keeps no roster');
    return await membership.revoke(name, network);
  }

  /**
   * `vpnctl ping PEER`: QUIC PINGs on the peer's active connection, one after another, each timed
   * until something comes back on that connection (under load, other traffic may answer first).
   * Like `tailscale ping`, each reply says which path it took.
   */
  async ping(name: unknown, count: unknown): Promise<PingReply[]> {
    if (typeof name !== 'string' || name === '') throw new Error("ping needs a peer: {\"cmd\":\"ping\",\"peer\":\"NAME\"}");
    const rounds = count === undefined ? 3 : Number(count);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > PING_MAX_COUNT) throw new Error(`ping count must be 1..${PING_MAX_COUNT}`);
    const peer = this.state.peers.byConfigName(name) ?? this.state.peers.unknowns().find((p) => p.name === name);
    if (!peer) throw new Error(`no peer named '${name}' (peers: ${this.peers().map((r) => r.name).join(', ') || 'none'})`);
    if (!peer.active) throw new Error(`${name} is not connected${peer.lastError ? `: ${peer.lastError}` : ''}`);
    const replies: PingReply[] = [];
    for (let seq = 1; seq <= rounds; seq++) {
      const link = peer.active;
      if (!link) {
        replies.push({ seq, rtt_ms: null, path: null, endpoint: null });
        continue;
      }
      const relay = this.state.relayOf(link);
      const rtt = await roundTrip(link.conn);
      replies.push({ seq, rtt_ms: rtt, path: link.relayed ? 'relay' : 'direct', endpoint: relay ? `via ${relay.name}` : remoteText(link.conn.remoteEndpoint()) });
      if (seq < rounds) await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
    }
    return replies;
  }

  /** What needs attention, one line each, worst first; empty when all is well. */
  async health(): Promise<string[]> {
    const { state, actions } = this;
    const lines: string[] = [];
    const refused = actions.refusedReload?.();
    if (refused) lines.push(`last reload refused ${new Date(refused.at).toISOString()}, the previous config keeps running: ${refused.error.split('\n')[0]}`);
    try {
      const { mode } = await stat(state.config.path);
      if (mode & 0o022) lines.push(`${state.config.path} is writable by ${mode & 0o002 ? 'anyone' : 'its group'}: whoever can write it chooses this node's peers (chmod go-w ${state.config.path})`);
    } catch {
      // Gone or unreadable since start: the next reload says so.
    }
    if (actions.noTun) lines.push('no TUN devices (vpn --no-tun): sessions and routes only, no traffic is forwarded');
    for (const row of this.peers()) {
      if (!row.connected && row.trust !== 'unknown') lines.push(`peer ${row.name} is down${row.last_error ? `: ${row.last_error}` : ''}`);
    }
    return lines;
  }

  /** Configured peers in config order, then connected peers admitted by accept_unknown_peers. */
  peers(): PeerRow[] {
    const { peers } = this.state;
    const rows: PeerRow[] = [];
    for (const config of this.state.config.peers) {
      const peer = peers.byConfigName(config.name);
      if (peer) rows.push(this.peerRow(peer));
    }
    for (const peer of peers.unknowns()) if (peer.connected) rows.push(this.peerRow(peer));
    return rows;
  }

  routes(): RouteRow[] {
    return this.state.routes.list().map((r) => ({
      network: r.network,
      prefix: formatPrefix(r.prefix),
      peer: r.peer.id,
      peer_name: r.peer.name,
      metric: r.metric,
    }));
  }

  private peerRow(peer: Peer): PeerRow {
    const session = peer.session;
    const seenAt = session ? session.lastReceivedAt : peer.lastSeen;
    const address = peer.config?.address;
    const relay = peer.active ? this.state.relayOf(peer.active) : undefined;
    const stats = peer.active?.conn.stats();
    return {
      name: peer.name,
      fingerprint: session?.peerFingerprint ?? peer.fingerprint ?? '',
      address: address ? formatHostPort(address.host, address.port) : '',
      connected: session !== null,
      last_seen: seenAt ? new Date(seenAt).toISOString() : null,
      direction: session?.direction ?? null,
      // Where it is now: the connection may have migrated since the session started. A relayed
      // one has no UDP endpoint of its own: it is shown by its relay.
      remote: peer.active ? (relay ? `via ${relay.name}` : remoteText(peer.active.conn.remoteEndpoint())) : null,
      path: peer.active ? (peer.active.relayed ? 'relay' : 'direct') : null,
      via: relay?.name ?? null,
      addresses: this.addressesOf(peer),
      rx_bytes: stats ? stats.bytesReceived : null,
      tx_bytes: stats ? stats.bytesSent : null,
      rtt_ms: stats?.rttMs ?? null,
      connected_since: session ? new Date(session.connectedAt).toISOString() : null,
      last_error: session ? null : peer.lastError,
      trust: this.trustOf(peer),
    };
  }

  /** Its host routes inside a network prefix, and the auto address of each network it is in. */
  private addressesOf(peer: Peer): string[] {
    const out = new Set<string>();
    for (const route of this.state.routes.list()) {
      const host = route.prefix.length === route.prefix.bytes.length * 8;
      if (route.peer === peer && host) out.add(formatIp(route.prefix.bytes));
    }
    if (peer.fingerprint) {
      for (const net of this.state.config.networks.values()) if (peer.inNetwork(net.name)) out.add(formatIp(peer.autoAddressIn(net.name, net.prefix)));
    }
    return [...out];
  }

  private trustOf(peer: Peer): PeerTrust {
    if (!peer.config) return 'unknown';
    if (peer.config.fromRoster) return 'roster';
    if (peer.config.fingerprint) return 'pinned';
    try {
      return this.state.trust.get(peer.name) !== undefined ? 'learned' : 'unlearned';
    } catch {
      return 'unlearned';
    }
  }
}

function remoteText(endpoint: { host: string; port: number }): string {
  return formatHostPort(endpoint.host, endpoint.port);
}

const PING_MAX_COUNT = 100;
const PING_INTERVAL_MS = 200;
const PING_TIMEOUT_MS = 2000;

/** ms until a packet arrives on `conn` after a PING, or null after PING_TIMEOUT_MS. I/O time, not protocol time: real timers. */
function roundTrip(conn: Link['conn']): Promise<number | null> {
  const before = conn.packetsReceived();
  const started = performance.now();
  conn.ping();
  let spins = 0;
  return new Promise((resolve) => {
    const check = (): void => {
      if (conn.packetsReceived() > before) return resolve(Math.round((performance.now() - started) * 1000) / 1000);
      if (conn.isClosed || performance.now() - started > PING_TIMEOUT_MS) return resolve(null);
      // The first millisecond or so turn by turn (each turn polls for I/O), so a sub-millisecond
      // answer is not rounded up to a timer tick; then once a millisecond, not to spin the loop.
      if (spins++ < 200 && performance.now() - started < 2) setImmediate(check);
      else setTimeout(check, 1);
    };
    setImmediate(check);
  });
}

