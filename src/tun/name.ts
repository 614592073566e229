// Default TUN names, one per network. The original named every network's device after the node,
// so a node on two networks collided with itself; here the name comes from the network.

import { createHash } from 'node:crypto';

/** Linux IFNAMSIZ minus the terminating NUL. */
export const MAX_INTERFACE_NAME_BYTES = 15;

const PREFIX = 'vpn-';
const HASH_CHARS = 4;

/**
 * `vpn-<network>` when that fits in 15 bytes, uses only [A-Za-z0-9_.-] and is not in `taken`;
 * otherwise a truncated form with a short hash of the network name, so the result stays unique
 * and is the same on every run for the same inputs.
 */
export function deriveInterfaceName(network: string, taken: Set<string>): string {
  const safe = network.replace(/[^A-Za-z0-9_.-]/g, '-');
  const plain = PREFIX + safe;
  // A rewritten name needs the hash too: "a b" and "a/b" both become "a-b".
  if (safe === network && safe.length > 0 && plain.length <= MAX_INTERFACE_NAME_BYTES && !taken.has(plain)) {
    return plain;
  }
  const stem = PREFIX + safe.slice(0, MAX_INTERFACE_NAME_BYTES - PREFIX.length - 1 - HASH_CHARS);
  for (let attempt = 0; ; attempt++) {
    const salt = attempt === 0 ? network : `${network}#${attempt}`;
    const hash = createHash('sha256').update(salt).digest('hex').slice(0, HASH_CHARS);
    const name = `${stem}-${hash}`;
    if (!taken.has(name)) return name;
  }
}

/** Why `name` cannot be a Linux interface name, or null if it can. */
export function interfaceNameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > MAX_INTERFACE_NAME_BYTES) return `is longer than ${MAX_INTERFACE_NAME_BYTES} bytes`;
  if (name === '.' || name === '..') return 'is not allowed';
  if (!/^[A-Za-z0-9_.%-]+$/.test(name)) return 'may only contain letters, digits, "_", "." and "-"';
  return null;
}
