// Route policy (PROTOCOL.md section 4): which announced prefixes we let into a route table.
// Pure, so the session code only has to log and count the refusals it returns.

import { type Prefix, formatPrefix, parseCidr, prefixCovers } from './addr.js';

export type PolicyRefusal = 'unknown-network' | 'peer-not-in-network' | 'bad-prefix' | 'outside-policy';

export type PolicyResult = { ok: true; prefix: Prefix } | { ok: false; reason: PolicyRefusal; message: string };

export interface AnnouncementCheck {
  networkExists: boolean;
  peerAllowedOnNetwork: boolean;
  /** The local network's prefix (meaningless when networkExists is false). */
  networkPrefix: Prefix;
  /** Extra prefixes the local config lets this peer route. */
  allowedRoutes: Prefix[];
  /** CIDR text as received on the wire. */
  announced: string;
}

/**
 * Decides one announced prefix. The error messages assume the caller prefixes them with the
 * peer and network names.
 *
 * Host bits: the wire should carry canonical prefixes, but the original Go node may build the
 * text from its interface address and mask (`10.42.0.7/24`). Refusing that would make every
 * original node unreachable, so such text is masked (`10.42.0.0/24`, what the original means:
 * it announces its whole network) and then goes through the same policy check as any other
 * prefix. A masked prefix outside policy is refused as 'outside-policy', with both forms named.
 * Callers can tell a masked result by formatPrefix(result.prefix) !== announced (modulo IPv6
 * spelling).
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
  if (prefixCovers(args.networkPrefix, prefix) || args.allowedRoutes.some((allowed) => prefixCovers(allowed, prefix))) {
    return { ok: true, prefix };
  }
  const canonical = formatPrefix(prefix);
  const shown = parseCidr(args.announced).ok ? canonical : `${args.announced} (masked to ${canonical})`;
  const allowed = [args.networkPrefix, ...args.allowedRoutes].map(formatPrefix).join(', ');
  return {
    ok: false,
    reason: 'outside-policy',
    message: `announced prefix ${shown} is outside ${allowed}; add it to that peer's allowed routes to accept it`,
  };
}

/** Wire text is untrusted: keep log lines single-line and bounded. */
function printable(text: string): string {
  const cleaned = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(cleaned.length > 64 ? `${cleaned.slice(0, 64)}...` : cleaned);
}
