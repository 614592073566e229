// The rules for single config values, shared by the loader (which reports a problem at the key),
// the builders in write.ts (which throw) and vpnctl (which names the flag). Keeping them here is
// what makes `vpnctl add-peer --address X` accept exactly what `address = "X"` accepts.

import { bytesEqual, familyOf, formatIp, formatPrefix, maxPrefixLength, parseIp, prefixContains, type Prefix } from '../netgraph/addr.js';
import { formatHostPort, parseHostPort, type HostPort, type HostPortOptions } from '../netgraph/hostport.js';

export type ValueResult<T> = { ok: true; value: T } | { ok: false; error: string };


/**
 * Why an inbound-only peer needs a pin. Trust on first use is only learned from a connection
 * this node dialed to the peer's configured address (or one arriving from that address's IP);
 * a peer that is never dialed offers neither, and a certificate's name proves nothing.
 */
export const INBOUND_ONLY_NEEDS_FINGERPRINT =
  'an inbound-only peer is never dialed, so its key cannot be learned on first use';
export const PIN_SOURCE = 'as printed by vpnctl status on that node';

/** Lowercase 64-hex form of a SHA-256 fingerprint, or null if `text` is not one. Accepts openssl's colon form. */
export function normalizeFingerprint(text: string): string | null {
  const hex = /^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/.test(text) ? text.replaceAll(':', '') : text;
  return /^[0-9a-fA-F]{64}$/.test(hex) ? hex.toLowerCase() : null;
}

/** A fingerprint as written in a config or on the command line, in its canonical lowercase form. */
export function parseFingerprint(text: string): ValueResult<string> {
  const fingerprint = normalizeFingerprint(text);
  if (!fingerprint) return { ok: false, error: `'${text}' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)` };
  return { ok: true, value: fingerprint };
}

function hostPort(text: string, options: HostPortOptions, hint = ''): ValueResult<HostPort> {
  const parsed = parseHostPort(text, options);
  if (!parsed.ok) return { ok: false, error: parsed.error + hint };
  return { ok: true, value: { host: parsed.host, port: parsed.port } };
}

/** daemon.listen: a local address; port 0 picks a free port (tests, ephemeral nodes). */
export function parseListen(text: string): ValueResult<HostPort> {
  return hostPort(text, { allowPortZero: true });
}

/** daemon.metrics_listen: "" disables the listener, ":9000" means every interface. */
export function parseMetricsListen(text: string): ValueResult<HostPort | null> {
  if (text === '') return { ok: true, value: null };
  return hostPort(text, { allowEmptyHost: true, allowPortZero: true }, '; use "" to disable metrics');
}

/** An address another node can be dialed at (peers.address, an invite's inviter address). */
export function parseDialAddress(text: string): ValueResult<HostPort> {
  return hostPort(text, {});
}

/** peers.address: "" means never dial, accept inbound only. */
export function parsePeerAddress(text: string): ValueResult<HostPort | null> {
  if (text === '') return { ok: true, value: null };
  const parsed = parseDialAddress(text);
  return parsed.ok ? parsed : { ok: false, error: `${parsed.error}; use "" to only accept inbound connections` };
}

/** networks.*.address before it is checked against the prefix: "auto" or an IP address. */
export function parseNetworkAddress(text: string): ValueResult<'auto' | Uint8Array> {
  if (text === 'auto') return { ok: true, value: 'auto' };
  const bytes = parseIp(text);
  if (!bytes) return { ok: false, error: `'${text}' is not an IP address (use an address inside the prefix, or "auto")` };
  return { ok: true, value: bytes };
}

/** Why a static address (written as `text`) cannot be this node's address in `prefix`, or null. */
export function staticAddressProblem(text: string, bytes: Uint8Array, prefix: Prefix): string | null {
  const prefixText = formatPrefix(prefix);
  const hostBits = maxPrefixLength(prefix.family) - prefix.length;
  const family = familyOf(bytes);
  if (family !== prefix.family) return `'${text}' is an IPv${family} address but prefix ${prefixText} is IPv${prefix.family}`;
  if (!prefixContains(prefix, bytes)) return `'${text}' is outside prefix ${prefixText}`;
  // Point-to-point /31, /127 and single-host prefixes have no network or broadcast address to avoid.
  if (hostBits >= 2 && bytesEqual(bytes, prefix.bytes)) {
    return `'${text}' is the network address of ${prefixText}; use a host address or "auto"`;
  }
  if (hostBits >= 2 && family === 4 && bytesEqual(bytes, lastAddress(prefix))) {
    return `'${text}' is the broadcast address of ${prefixText}; use a host address or "auto"`;
  }
  return null;
}

function lastAddress(prefix: Prefix): Uint8Array {
  const out = new Uint8Array(prefix.bytes);
  for (let i = 0; i < out.length; i++) {
    const bitsHere = prefix.length - i * 8;
    if (bitsHere < 8) out[i] = out[i]! | (0xff >> Math.max(bitsHere, 0));
  }
  return out;
}

/** The config text of an endpoint: "host:port", brackets around IPv6. */
export function formatEndpoint(endpoint: HostPort): string {
  return formatHostPort(endpoint.host, endpoint.port);
}

/** The config text of an optional endpoint: "" for none (metrics disabled, inbound-only peer). */
export function formatOptionalEndpoint(endpoint: HostPort | null): string {
  return endpoint === null ? '' : formatEndpoint(endpoint);
}

/** The config text of networks.*.address. */
export function formatNetworkAddress(address: 'auto' | Uint8Array): string {
  return address === 'auto' ? 'auto' : formatIp(address);
}
