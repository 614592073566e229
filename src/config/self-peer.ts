// A [[peers]] entry pinned to this node's own certificate. The loader cannot see it (it does not
// read certificates), so the daemon asks at start and reload, and vpnctl doctor and add-peer ask
// too. Such an entry would have the node dial itself, and admit anyone holding its own key.

import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { KeyLines } from './lines.js';
import { displayPath, isTable, locate } from './toml.js';
import type { Config, PeerConfig } from './types.js';
import { normalizeFingerprint } from './values.js';

export interface SelfPeer {
  /** Index in config.peers, which is also the [[peers]] index in the file. */
  index: number;
  peer: PeerConfig;
  /** "file:line: peers[i].fingerprint: …", with the fix. */
  message: string;
}

export function findSelfPeers(config: Config, ownFingerprint: string): SelfPeer[] {
  const own = ownFingerprint.toLowerCase();
  const found = config.peers.flatMap((peer, index) => (peer.fingerprint === own ? [{ index, peer }] : []));
  if (found.length === 0) return [];
  // Only on this (rare) error path: the Config carries no line numbers, so re-read the file to
  // point at the entry. If it changed since it was loaded, the message just has no line.
  const lineOf = fingerprintLines(config.path);
  return found.map(({ index, peer }) => {
    const path = ['peers', index, 'fingerprint'];
    return {
      index,
      peer,
      message:
        `${locate(config.path, lineOf(index, own))}: ${displayPath(path)}: peer '${peer.name}' is pinned to this node's own ` +
        `fingerprint ${own}; a node cannot be its own peer (remove that [[peers]] entry)`,
    };
  });
}

/** One message per [[peers]] entry pinned to `ownFingerprint`; [] when there is none. */
export function checkPeersAgainstIdentity(config: Config, ownFingerprint: string): string[] {
  return findSelfPeers(config, ownFingerprint).map((found) => found.message);
}

/** The line of peers[index].fingerprint, if the file on disk still pins `fingerprint` there. */
function fingerprintLines(path: string): (index: number, fingerprint: string) => number | undefined {
  let text: string;
  let raw: unknown;
  try {
    text = readFileSync(path, 'utf8');
    raw = parse(text);
  } catch {
    return () => undefined;
  }
  const lines = KeyLines.scan(text);
  const peers = isTable(raw) && Array.isArray(raw['peers']) ? (raw['peers'] as unknown[]) : [];
  return (index, fingerprint) => {
    const entry = peers[index];
    const written = isTable(entry) && typeof entry['fingerprint'] === 'string' ? normalizeFingerprint(entry['fingerprint']) : null;
    return written === fingerprint ? lines.lineOf(['peers', index, 'fingerprint']) : undefined;
  };
}
