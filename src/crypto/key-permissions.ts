// The daemon refuses a private key file that anyone but its owner can get at, as ssh does
// ("UNPROTECTED PRIVATE KEY FILE"). Whoever reads node.key can pose as this node to every peer
// that pinned its fingerprint, and nothing revokes that: each peer has to unpin it by hand. A
// key that is open to others is also a sign it was copied carelessly, the moment to say so.
//
// Only the mode bits count, not the owner: the daemon runs as root, which can read anything, so
// "can this process read it" says nothing; "who else can" is the question. The certificate is
// public and not checked.

import { statSync } from 'node:fs';
import { IdentityError } from './identity.js';

/** Permission bits for the group and all other users: none may be set on a private key. */
const GROUP_BITS = 0o070;
const OTHER_BITS = 0o007;

/**
 * Why the private key at `keyPath` is open to others, with the chmod that fixes it; null when
 * only its owner has access. A file that cannot be examined is left to loadIdentity, which reads
 * it next and names the problem (a missing key suggests `vpnctl init`).
 */
export function privateKeyModeProblem(keyPath: string): string | null {
  let mode: number;
  try {
    // stat, not lstat: a symlinked key (a mounted secret, say) is as open as the file it names.
    mode = statSync(keyPath).mode & 0o777;
  } catch {
    return null;
  }
  if ((mode & (GROUP_BITS | OTHER_BITS)) === 0) return null;
  const who = [(mode & GROUP_BITS) !== 0 ? 'its group' : null, (mode & OTHER_BITS) !== 0 ? 'all users' : null].filter((w) => w !== null).join(' and ');
  return (
    `private key file ${keyPath} is mode ${mode.toString(8).padStart(4, '0')}, accessible to ${who}; ` +
    `a private key must be private to its owner: run \`chmod 600 ${shellQuote(keyPath)}\` and start vpn again`
  );
}

/** Throws an IdentityError when the private key is open to others (privateKeyModeProblem). */
export function refuseExposedPrivateKey(keyPath: string): void {
  const problem = privateKeyModeProblem(keyPath);
  if (problem !== null) throw new IdentityError(problem);
}

/** `path` as one shell word, so the printed command can be pasted as it is. */
function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
