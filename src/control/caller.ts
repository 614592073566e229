// Who is on the other end of a control-socket connection, and what they may ask. With
// daemon.socket_group set, the socket is 0660 in that group (Tailscale's operator idea): its
// members may read (status, peers, routes); changing the daemon (reload, goodbye) stays with root
// and the daemon's own user. The kernel says who connected (SO_PEERCRED, through the TUN addon);
// without the addon nobody is taken for root.

import type net from 'node:net';
import { loadAddon } from '../native/load.js';

/** Commands that change the daemon; everything else only reads. */
export const MUTATING_COMMANDS: ReadonlySet<string> = new Set(['reload', 'goodbye', 'revoke']);

/** The uid of the process that connected, or null when it cannot be known. */
export type CallerUid = (socket: net.Socket) => number | null;

/** Whether `uid` may run `cmd`; with no group configured the 0600 socket already decided. */
export function mayRun(cmd: string, uid: number | null, daemonUid: number, groupAccess: boolean): boolean {
  if (!groupAccess || !MUTATING_COMMANDS.has(cmd)) return true;
  return uid === 0 || uid === daemonUid;
}

interface PeerCredentialsAddon {
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
}

/** SO_PEERCRED through the TUN addon; null for every caller when the addon is missing. */
export function kernelCallerUid(load: (file: string) => unknown = (file) => loadAddon(file, import.meta.url)): CallerUid {
  let addon: PeerCredentialsAddon | null = null;
  try {
    const loaded = load('vibepn_tun.node') as Partial<PeerCredentialsAddon>;
    if (typeof loaded.peerCredentials === 'function') addon = loaded as PeerCredentialsAddon;
  } catch {
    addon = null;
  }
  return (socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (addon === null || typeof fd !== 'number' || fd < 0) return null;
    try {
      return addon.peerCredentials(fd).uid;
    } catch {
      return null;
    }
  };
}

/** The gid of `group` (a name, or a number as text) in /etc/group's text, or null if absent. */
export function groupId(group: string, etcGroup: string): number | null {
  if (/^[0-9]+$/.test(group)) return Number(group);
  for (const line of etcGroup.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^[0-9]+$/.test(gid)) return Number(gid);
  }
  return null;
}
