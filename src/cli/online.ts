// vpnctl status | peers | routes | reload | goodbye | ping | members | revoke: requests to a
// running daemon over its control socket (PROTOCOL.md section 7), printed as tables or, with
// --json, as the daemon sent them. members and revoke (the signed roster) are in members.ts.

import { ControlRequestError, controlRequest } from '../control/client.js';
import { CommandError, UsageError } from './args.js';
import { MEMBERS_HELP, REVOKE_HELP, runMembers, runRevoke } from './members.js';
import { table, type Output } from './output.js';

export const ONLINE_COMMANDS = ['status', 'peers', 'routes', 'reload', 'goodbye', 'ping', 'members', 'revoke'] as const;
export type OnlineCommand = (typeof ONLINE_COMMANDS)[number];

const TARGET = '[--socket PATH | --config FILE]';

export const ONLINE_HELP: Record<OnlineCommand, string> = {
  status: `usage: vpnctl ${TARGET} [--json] status\n\nShows uptime, fingerprint, networks, peer and route counts, and what needs attention.`,
  peers: `usage: vpnctl ${TARGET} [--json] peers [NAME]\n\nLists configured and connected peers; with NAME, everything known about that one.`,
  routes: `usage: vpnctl ${TARGET} [--json] routes\n\nLists the route table of every network.`,
  reload: `usage: vpnctl ${TARGET} [--json] reload\n\nRe-reads the config file and applies the differences (same as SIGHUP).`,
  goodbye: `usage: vpnctl ${TARGET} [--json] goodbye\n\nSays Goodbye to every peer and shuts the daemon down.`,
  ping: `usage: vpnctl ${TARGET} [--json] ping NAME [-c COUNT]\n\nTimes round trips to a peer on its current connection (a QUIC PING and its answer),\nand says which path each took: direct with the peer's address, or via a relay. -c: how many (default 3).`,
  members: MEMBERS_HELP,
  revoke: REVOKE_HELP,
};

/** The daemon socket appears a moment after `vpn` starts: a query waits this long for it. */
export const DAEMON_START_WAIT_MS = 3000;

interface StatusOutput {
  name?: string;
  uptime_s: number;
  fingerprint: string;
  peers_connected: number;
  peers_configured: number;
  routes: number;
  networks: Array<{ name: string; interface: string; address: string; prefix: string }>;
  health?: string[];
}

/**
 * How the daemon trusts a peer: pinned in the config, a signed roster's member, learned on first
 * use, not learned yet, or admitted without any [[peers]] entry (accept_unknown_peers).
 */
export type PeerTrust = 'pinned' | 'roster' | 'learned' | 'unlearned' | 'unknown';

export interface PeerRow {
  name: string;
  fingerprint: string;
  /** Absent from daemons that predate it. */
  trust?: PeerTrust;
  address: string;
  connected: boolean;
  last_seen: string | null;
  direction?: string | null;
  remote?: string | null;
  last_error?: string | null;
  /** Absent from daemons that predate NAT traversal. */
  path?: 'direct' | 'relay' | null;
  via?: string | null;
  connected_since?: string | null;
  addresses?: string[];
  rx_bytes?: number | null;
  tx_bytes?: number | null;
  rtt_ms?: number | null;
}

interface RouteRow {
  network: string;
  prefix: string;
  peer: string;
  peer_name?: string;
  metric: number;
}

export interface OnlineOptions {
  json: boolean;
  /** ping: round trips (-c). */
  count?: number;
  /** Arguments after the command: `peers NAME`. */
  args: string[];
  /** members, revoke: --network. */
  network?: string;
  /** For relative times ("12s ago"). */
  now?: number;
  sleep?: (ms: number) => Promise<void>;
}

export async function runOnline(command: OnlineCommand, socketPath: string, options: OnlineOptions, out: Output): Promise<void> {
  const { json, args } = options;
  if (command === 'ping') return runPing(socketPath, options, out);
  if (command === 'members' || command === 'revoke') {
    const request = (req: { cmd: 'members' | 'revoke' } & Record<string, unknown>) => requestWaiting(socketPath, req, options.sleep);
    return command === 'members' ? runMembers(request, options, out) : runRevoke(request, options, out);
  }
  if (args.length > (command === 'peers' ? 1 : 0)) {
    throw new UsageError(`unexpected argument${args.length > 1 ? 's' : ''} '${args.join(' ')}'`, ONLINE_HELP[command]);
  }
  const output = await requestWaiting(socketPath, { cmd: command }, options.sleep);
  const now = options.now ?? Date.now();
  if (command === 'peers' && args.length === 1) {
    const rows = output as PeerRow[];
    const row = rows.find((r) => r.name === args[0]);
    if (!row) throw new CommandError(`no peer named '${args[0]}' (peers: ${rows.map((r) => r.name).join(', ') || 'none'})`);
    out.stdout(json ? JSON.stringify(row, null, 2) : formatPeer(row, now));
    return;
  }
  if (json) {
    out.stdout(JSON.stringify(output, null, 2));
    return;
  }
  switch (command) {
    case 'status':
      printStatus(output as StatusOutput, out);
      break;
    case 'peers':
      out.stdout(formatPeers(output as PeerRow[], now));
      break;
    case 'routes':
      printRoutes(output as RouteRow[], out);
      break;
    case 'reload':
      out.stdout(typeof output === 'string' ? output : `reloaded: ${JSON.stringify(output)}`);
      break;
    case 'goodbye':
      out.stdout('daemon is shutting down');
      break;
  }
}

/**
 * One request; while there is no socket yet, or nobody listens on it, tried again for up to
 * DAEMON_START_WAIT_MS, so a query right after `vpn &` finds the daemon that is starting.
 */
async function requestWaiting(socketPath: string, request: { cmd: OnlineCommand } & Record<string, unknown>, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)), timeoutMs?: number): Promise<unknown> {
  const deadline = Date.now() + DAEMON_START_WAIT_MS;
  for (;;) {
    try {
      return await controlRequest(socketPath, request, timeoutMs);
    } catch (error) {
      const code = error instanceof ControlRequestError ? error.code : undefined;
      if ((code === 'ENOENT' || code === 'ECONNREFUSED') && Date.now() < deadline) {
        await sleep(100);
        continue;
      }
      throw new CommandError((error as Error).message);
    }
  }
}

interface PingReplyRow {
  seq: number;
  rtt_ms: number | null;
  path: 'direct' | 'relay' | null;
  endpoint: string | null;
}

/** `vpnctl ping NAME`: one line per round trip; exit 1 when none came back. */
async function runPing(socketPath: string, options: OnlineOptions, out: Output): Promise<void> {
  const [name, ...extra] = options.args;
  if (name === undefined || extra.length > 0) throw new UsageError(name === undefined ? 'ping needs a peer name' : `unexpected arguments '${extra.join(' ')}'`, ONLINE_HELP.ping);
  const count = options.count ?? 3;
  // Each round trip may take its 2 s timeout; the daemon answers when all are done.
  const replies = (await requestWaiting(socketPath, { cmd: 'ping', peer: name, count }, options.sleep, 5000 + count * 2500)) as PingReplyRow[];
  if (options.json) out.stdout(JSON.stringify(replies, null, 2));
  else {
    for (const r of replies) {
      const where = r.path === 'relay' ? `${r.endpoint ?? 'via a relay'} (relay)` : `at ${r.endpoint ?? '?'} (direct)`;
      out.stdout(r.rtt_ms === null ? `no answer from ${name} within 2 s` : `pong from ${name} ${where} in ${r.rtt_ms < 10 ? r.rtt_ms.toFixed(2) : Math.round(r.rtt_ms)} ms`);
    }
  }
  if (!replies.some((r) => r.rtt_ms !== null)) throw new CommandError(`${name} did not answer`);
}

function short(fingerprint: string): string {
  return fingerprint ? `${fingerprint.slice(0, 16)}…` : '-';
}

function printStatus(s: StatusOutput, out: Output): void {
  out.stdout(`node         ${s.name ?? '-'}`);
  out.stdout(`fingerprint  ${s.fingerprint}`);
  out.stdout(`uptime       ${formatUptime(s.uptime_s)}`);
  out.stdout(`peers        ${s.peers_connected} connected / ${s.peers_configured} configured`);
  out.stdout(`routes       ${s.routes}`);
  if (s.health !== undefined) {
    if (s.health.length === 0) out.stdout('health       ok');
    else s.health.forEach((line, i) => out.stdout(`${i === 0 ? 'health      ' : '            '} ${line}`));
  }
  if (s.networks.length > 0) {
    out.stdout('');
    out.stdout(table(['NETWORK', 'INTERFACE', 'ADDRESS', 'PREFIX'], s.networks.map((n) => [n.name, n.interface, n.address, n.prefix])));
  }
}

/** The peers table (like `wg show` and `tailscale status`); LAST ERROR appears when some peer is down for a known reason. */
export function formatPeers(peers: PeerRow[], now = Date.now()): string {
  if (peers.length === 0) return 'no peers';
  const withErrors = peers.some((p) => !p.connected && p.last_error);
  const headers = ['NAME', 'ADDRESS', 'ENDPOINT', 'STATE', 'SINCE', 'LAST SEEN', 'RX', 'TX', 'RTT', 'TRUST', ...(withErrors ? ['LAST ERROR'] : [])];
  return table(
    headers,
    peers.map((p) => [
      p.name,
      p.addresses?.length ? p.addresses.join(',') : '-',
      (p.connected ? p.remote : p.address) || '-',
      state(p),
      p.connected && p.connected_since ? ago(p.connected_since, now) : '-',
      p.last_seen ? ago(p.last_seen, now) : 'never',
      bytes(p.rx_bytes),
      bytes(p.tx_bytes),
      p.rtt_ms == null ? '-' : `${p.rtt_ms < 10 ? p.rtt_ms.toFixed(1) : Math.round(p.rtt_ms)} ms`,
      p.trust ?? '-',
      ...(withErrors ? [p.connected ? '' : (p.last_error ?? '')] : []),
    ]),
  );
}

/** `vpnctl peers NAME`: every field, one per line. */
export function formatPeer(p: PeerRow, now = Date.now()): string {
  const at = (iso: string | null | undefined) => (iso ? `${iso} (${ago(iso, now)})` : '-');
  const lines: Array<[string, string]> = [
    ['name', p.name],
    ['fingerprint', p.fingerprint || '-'],
    ['trust', p.trust ?? '-'],
    ['addresses', p.addresses?.join(', ') || '-'],
    ['configured at', p.address || '- (found through common peers)'],
    ['state', state(p)],
    ['endpoint', p.remote ?? '-'],
    ['connected since', at(p.connected_since)],
    ['last seen', at(p.last_seen)],
    ['rx / tx', `${bytes(p.rx_bytes)} / ${bytes(p.tx_bytes)}`],
    ['rtt', p.rtt_ms == null ? '-' : `${p.rtt_ms.toFixed(2)} ms`],
  ];
  if (!p.connected && p.last_error) lines.push(['last error', p.last_error]);
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

function state(p: PeerRow): string {
  if (!p.connected) return 'down';
  const how = [p.direction, p.path === 'relay' ? `via ${p.via ?? 'a relay'}` : null].filter(Boolean);
  return how.length ? `connected (${how.join(', ')})` : 'connected';
}

/** "12s ago", "3m ago", "2h ago", "4d ago"; a clock a little ahead reads "now". */
export function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '-';
  if (s < 1) return 'now';
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** 1023 B, 1.5 KiB, 12 MiB, 3.2 GiB; "-" when unknown. */
export function bytes(n: number | null | undefined): string {
  if (n == null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function printRoutes(routes: RouteRow[], out: Output): void {
  if (routes.length === 0) {
    out.stdout('no routes');
    return;
  }
  out.stdout(
    table(
      ['NETWORK', 'PREFIX', 'PEER', 'METRIC'],
      routes.map((r) => [r.network, r.prefix, r.peer_name ? `${r.peer_name} (${short(r.peer)})` : short(r.peer), String(r.metric)]),
    ),
  );
}

function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', `${s % 60}s`].filter(Boolean).join(' ');
}
