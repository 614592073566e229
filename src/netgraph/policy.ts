// Route policy (PROTOCOL.md section 4): which announced prefixes we let into a route table.
// Pure, so the session code only has to log and count the refusals it returns.
//
// Inside a network prefix, a host route names one node, so it is accepted only from the node it
// names (vibepn fix: any member could otherwise take over another member's overlay address,
// which Nebula prevents with certificates and WireGuard with AllowedIPs). A node's own address
// is the `auto` address derived from its fingerprint, a host route the local config lists in its
// allowed_routes, or, for a static address, the first free one it announces in that network. A
// member of a signed roster (issue 12) has exactly one: the address its record gives it.

import { printable } from '../log/logger.js';
import { type Prefix, bytesEqual, formatIp, formatPrefix, maxPrefixLength, parseCidr, prefixCovers } from './addr.js';

export type PolicyRefusal = 'unknown-network' | 'peer-not-in-network' | 'bad-prefix' | 'outside-policy' | 'conflict';

export type PolicyResult =
  | {
      ok: true;
      prefix: Prefix;
      /** A static host address the peer now holds in this network; the caller records the claim. */
      claim: boolean;
    }
  | { ok: false; reason: PolicyRefusal; message: string };

/** Who holds which host address in one network, as the route owner knows it. */
export interface HostOwnership {
  /** This node's own address in the network. */
  local: Uint8Array;
  /** The announcing peer's auto address (derived from its fingerprint). */
  peerAuto: Uint8Array;
  /** The static address the announcing peer already holds in this network, if any. */
  peerClaim: Uint8Array | undefined;
  /**
   * The address a signed membership record gives the announcing peer here (issue 12): then it
   * is the peer's one host route in the network, and neither its auto address nor a claim counts.
   */
  peerSigned?: Uint8Array | undefined;
  /** The name of another node that holds `address` (its auto address or its claim). */
  holderOf(address: Uint8Array): string | undefined;
}

export interface AnnouncementCheck {
  /** The network's name, for messages that name its config keys. */
  network: string;
  networkExists: boolean;
  peerAllowedOnNetwork: boolean;
  /** The local network's prefix (meaningless when networkExists is false). */
  networkPrefix: Prefix;
  /** Extra prefixes the local config lets this peer route. */
  allowedRoutes: readonly Prefix[];
  /** CIDR text as received on the wire. */
  announced: string;
  ownership: HostOwnership;
}

const ALLOWED_HINT = "add it to that peer's allowed_routes to accept it";

/**
 * Decides one announced prefix. The error messages assume the caller prefixes them with the
 * peer and network names.
 *
 * Host bits: the wire should carry canonical prefixes, but the original Go node may build the
 * text from its interface address and mask (`10.42.0.7/24`). Such text is masked (`10.42.0.0/24`)
 * and then goes through the same checks as any other prefix, with both forms named in a refusal.
 */
export function checkAnnouncedPrefix(args: AnnouncementCheck): PolicyResult {
  if (!args.networkExists) {
    return { ok: false, reason: 'unknown-network', message: 'the network is not configured locally; route ignored' };
  }
  if (!args.peerAllowedOnNetwork) {
    return {
      ok: false,
      reason: 'peer-not-in-network',
      message: "the peer is not configured for this network; add the network to that peer's networks list to accept its routes",
    };
  }
  const parsed = parseCidr(args.announced, true);
  if (!parsed.ok) {
    // parseCidr's message quotes the text; use it only when that text is safe to log as is.
    const message = /^[\x20-\x7e]{0,64}$/.test(args.announced)
      ? `announced prefix ${parsed.error}`
      : `announced prefix ${printable(args.announced)} is not a valid CIDR`;
    return { ok: false, reason: 'bad-prefix', message };
  }
  const prefix = parsed.prefix;
  const shown = describe(args.announced, prefix);
  const isHost = prefix.length === maxPrefixLength(prefix.family);
  const { ownership } = args;

  if (isHost && bytesEqual(prefix.bytes, ownership.local)) {
    // Two nodes with one overlay address (most likely "auto" hashes that collided in a small
    // prefix): routing to it cannot work for both.
    return {
      ok: false,
      reason: 'conflict',
      message: `announced prefix ${shown}, which is this node's own address; set a static networks.${args.network}.address on one of the two nodes`,
    };
  }
  if (args.allowedRoutes.some((allowed) => prefixCovers(allowed, prefix))) return { ok: true, prefix, claim: false };
  if (!prefixCovers(args.networkPrefix, prefix)) {
    const allowed = [args.networkPrefix, ...args.allowedRoutes].map(formatPrefix).join(', ');
    return { ok: false, reason: 'outside-policy', message: `announced prefix ${shown} is outside ${allowed}; ${ALLOWED_HINT}` };
  }
  if (!isHost) {
    return {
      ok: false,
      reason: 'outside-policy',
      message: `announced prefix ${shown} covers more than the peer's own address in ${formatPrefix(args.networkPrefix)}; ${ALLOWED_HINT}`,
    };
  }
  if (ownership.peerSigned) {
    if (bytesEqual(prefix.bytes, ownership.peerSigned)) return { ok: true, prefix, claim: false };
    return {
      ok: false,
      reason: 'outside-policy',
      message: `announced prefix ${shown}, but the network's signed roster gives the peer ${formatIp(ownership.peerSigned)}; only that host route is accepted from it`,
    };
  }
  if (bytesEqual(prefix.bytes, ownership.peerAuto)) return { ok: true, prefix, claim: false };
  if (ownership.peerClaim && bytesEqual(prefix.bytes, ownership.peerClaim)) return { ok: true, prefix, claim: true };
  const holder = ownership.holderOf(prefix.bytes);
  if (holder !== undefined) {
    return { ok: false, reason: 'conflict', message: `announced prefix ${shown} is the address of ${holder}; ${ALLOWED_HINT}` };
  }
  if (ownership.peerClaim) {
    return {
      ok: false,
      reason: 'outside-policy',
      message: `announced prefix ${shown} would be a second address for the peer in this network (it already holds ${formatIp(ownership.peerClaim)}); ${ALLOWED_HINT}`,
    };
  }
  return { ok: true, prefix, claim: true };
}

function describe(announced: string, prefix: Prefix): string {
  const canonical = formatPrefix(prefix);
  return parseCidr(announced).ok ? canonical : `${announced} (masked to ${canonical})`;
}
