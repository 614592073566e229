// Rules for what a [[peers]] entry, an invite and vpnctl's flags may name, shared so that
// `vpnctl add-peer`, `init`/`join --name`, `invite --address` and the loader refuse the same
// things with the same words. A peer's name is the key of the known-peers file and the name the
// node goes by on every other machine (its certificate CN, the `add-peer --name` printed by join),
// so it follows the network-name rule: it is typed into shells, TOML keys and log lines.

import { parseIp } from '../netgraph/addr.js';
import type { HostPort } from '../netgraph/hostport.js';
import { formatHostPort } from '../netgraph/hostport.js';
import { networkNameProblem } from './names.js';

/** Why `name` cannot name a peer (or a node others will list as a peer), or null if it can. */
export function peerNameProblem(name: string): string | null {
  // The very rule of network names (names.ts), so the two can never drift apart.
  return networkNameProblem(name) === null ? null : `'${name}' is not a valid peer name (1..255 characters from A-Z a-z 0-9 _ . -)`;
}

/**
 * Why nobody can dial `endpoint`, or null. 0.0.0.0 and :: mean "every local interface" to a
 * listening socket; as a destination they reach nothing on another machine, so an invite or a
 * peer address holding one is a listen address copied by mistake.
 */
export function undialableProblem(endpoint: HostPort): string | null {
  const bytes = parseIp(endpoint.host);
  if (bytes === null || bytes.some((b) => b !== 0)) return null;
  const shown = formatHostPort(endpoint.host, endpoint.port);
  return (
    `${shown} is the unspecified address: to a listener it means "every interface", but dialed it reaches nothing; ` +
    `give the address other machines reach that node at (its public IP or hostname), e.g. 203.0.113.7:${endpoint.port}`
  );
}
