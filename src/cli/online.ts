// vpnctl status | peers | routes | reload | goodbye: requests to a running daemon over its
// control socket (PROTOCOL.md section 7), printed as tables or, with --json, as the daemon sent them.

import { controlRequest } from '../control/client.js';
import { CommandError } from './args.js';
import { table, type Output } from './output.js';

export const ONLINE_COMMANDS = ['status', 'peers', 'routes', 'reload', 'goodbye'] as const;
export type OnlineCommand = (typeof ONLINE_COMMANDS)[number];

export const ONLINE_HELP: Record<OnlineCommand, string> = {
  status: 'usage: vpnctl [--socket PATH] [--json] status\n\nShows uptime, fingerprint, networks, peer and route counts.',
  peers: 'usage: vpnctl [--socket PATH] [--json] peers\n\nLists configured and connected peers.',
  routes: 'usage: vpnctl [--socket PATH] [--json] routes\n\nLists the route table of every network.',
  reload: 'usage: vpnctl [--socket PATH] [--json] reload\n\nRe-reads the config file and applies the differences (same as SIGHUP).',
  goodbye: 'usage: vpnctl [--socket PATH] [--json] goodbye\n\nSays Goodbye to every peer and shuts the daemon down.',
};

interface StatusOutput {
  name?: string;
  uptime_s: number;
  fingerprint: string;
  peers_connected: number;
  peers_configured: number;
  routes: number;
  networks: Array<{ name: string; interface: string; address: string; prefix: string }>;
}

/**
 * How the daemon trusts a peer: pinned in the config, learned on first use, not learned yet, or
 * admitted without any [[peers]] entry (accept_unknown_peers).
 */
export type PeerTrust = 'pinned' | 'learned' | 'unlearned' | 'unknown';

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
}

interface RouteRow {
  network: string;
  prefix: string;
  peer: string;
  peer_name?: string;
  metric: number;
}

export async function runOnline(command: OnlineCommand, socketPath: string, json: boolean, out: Output): Promise<void> {
  let output: unknown;
  try {
    output = await controlRequest(socketPath, { cmd: command });
  } catch (error) {
    throw new CommandError((error as Error).message);
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
      printPeers(output as PeerRow[], out);
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

function short(fingerprint: string): string {
  return fingerprint ? `${fingerprint.slice(0, 16)}…` : '-';
}

function printStatus(s: StatusOutput, out: Output): void {
  out.stdout(`node         ${s.name ?? '-'}`);
  out.stdout(`fingerprint  ${s.fingerprint}`);
  out.stdout(`uptime       ${formatUptime(s.uptime_s)}`);
  out.stdout(`peers        ${s.peers_connected} connected / ${s.peers_configured} configured`);
  out.stdout(`routes       ${s.routes}`);
  if (s.networks.length > 0) {
    out.stdout('');
    out.stdout(table(['NETWORK', 'INTERFACE', 'ADDRESS', 'PREFIX'], s.networks.map((n) => [n.name, n.interface, n.address, n.prefix])));
  }
}

function printPeers(peers: PeerRow[], out: Output): void {
  out.stdout(formatPeers(peers));
}

/** The peers table; a LAST ERROR column appears when some peer is down for a known reason. */
export function formatPeers(peers: PeerRow[]): string {
  if (peers.length === 0) return 'no peers';
  const withErrors = peers.some((p) => !p.connected && p.last_error);
  const headers = ['NAME', 'FINGERPRINT', 'TRUST', 'ADDRESS', 'STATE', 'LAST SEEN', ...(withErrors ? ['LAST ERROR'] : [])];
  return table(
    headers,
    peers.map((p) => [
      p.name,
      short(p.fingerprint),
      p.trust ?? '-',
      p.address || '-',
      p.connected ? `connected${p.direction ? ` (${p.direction}${p.path === 'relay' ? `, via ${p.via ?? 'relay'}` : p.path === 'direct' && p.remote ? `, ${p.remote}` : ''})` : ''}` : 'down',
      p.last_seen ?? 'never',
      ...(withErrors ? [p.connected ? '' : (p.last_error ?? '')] : []),
    ]),
  );
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
