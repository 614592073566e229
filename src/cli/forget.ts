// vpnctl forget NAME: drops the fingerprint learned on first use for a peer from the known-peers
// file, for a peer that really changed its key (the daemon refuses it as tofu_mismatch until then).
// Offline, on the file the daemon reads at start and on reload. A pinned peer has nothing learned
// that counts: its pin is changed in the config instead, and the command says so.

import { locateKey } from '../config/edit.js';
import { formatOptionalEndpoint } from '../config/values.js';
import { TrustStore } from '../crypto/trust.js';
import { repinCommand } from './add-peer.js';
import { CommandError } from './args.js';
import { shellWord, type Output } from './output.js';
import { parsePeerCommand } from './remove-peer.js';

export const FORGET_HELP = `usage: vpnctl forget [--config P] [--json] NAME

Drops the fingerprint learned on first use for peer NAME from the known-peers file
(identity.known_peers), so the next key it presents is learned again on first use: for a peer
whose key changed. A peer pinned in the config has its fingerprint there instead, and nothing
learned to forget. --json prints the result as one JSON object.
Run 'vpnctl reload' right after if the daemon is running: until it reloads it trusts the old
key, and may write it back when it learns another peer.`;

export async function runForget(argv: string[], out: Output): Promise<void> {
  const parsed = parsePeerCommand(argv, FORGET_HELP, out);
  if (!parsed) return;
  const { name, configPath, file } = parsed;
  const { config } = file;
  const knownPeers = config.identity.knownPeers;
  const store = new TrustStore(knownPeers);
  const learned = store.get(name);
  const index = config.peers.findIndex((p) => p.name === name);
  const peer = config.peers[index];

  if (peer === undefined && learned === undefined) {
    const configured = config.peers.map((p) => shellWord(p.name)).join(', ') || 'none';
    const known = Object.keys(store.entries()).map((n) => shellWord(n)).join(', ') || 'none';
    throw new CommandError(`no peer named '${name}' in ${configPath} or ${knownPeers} (peers: ${configured}; learned: ${known})`);
  }
  if (peer?.fingerprint !== undefined && learned === undefined) {
    const fix = repinCommand(peer, configPath, '<new fp>');
    throw new CommandError(
      `peer '${name}' is pinned in the config (${locateKey(file, ['peers', index, 'fingerprint'])}, fingerprint ${peer.fingerprint.slice(0, 16)}…): ` +
        `nothing learned to forget; if its key changed, pin the new one: ${fix}`,
    );
  }
  if (learned !== undefined) await store.remove(name);

  const address = peer === undefined ? '' : formatOptionalEndpoint(peer.address);
  const note =
    peer === undefined
      ? `${name} is not a peer in ${configPath}; the entry was left from an earlier one`
      : peer.fingerprint !== undefined
        ? `${name} is pinned in the config (${locateKey(file, ['peers', index, 'fingerprint'])}), which decides its key; the learned entry did not count`
        : learned === undefined
          ? `its key is learned from the first connection to ${address}`
          : `the next key it presents on a connection to ${address} is trusted on first use again`;
  if (parsed.json) {
    out.stdout(
      JSON.stringify(
        { name, known_peers: knownPeers, forgotten: learned ?? null, pinned: peer?.fingerprint ?? null, configured: peer !== undefined, note, next: learned === undefined ? null : 'vpnctl reload' },
        null,
        2,
      ),
    );
    return;
  }
  if (learned === undefined) {
    out.stdout(`nothing learned for peer ${name} in ${knownPeers} yet: ${note}`);
    return;
  }
  out.stdout(`forgot the key learned for peer ${name} (${learned}) in ${knownPeers}`);
  out.stdout(`  ${note}`);
  out.stdout('if the daemon is running: vpnctl reload now (until then it trusts the old key, and may write it back)');
}
