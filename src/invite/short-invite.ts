// Short, redeemable invites (issue 12): `vibepn2:` + base64url of a fixed binary layout, at most
// 200 characters, so one fits in a chat line, a QR code or a terminal without wrapping. The long
// `vibepn1:` invite (src/crypto/invite.ts) stays: it is signed and needs no admin online; this one
// is redeemed against the admin's ledger (ledger.ts) with its one-time secret.
//
// The joiner cannot verify a signature (it knows no admin key yet): the invite itself is the trust
// root, like a Tailscale auth key. The checksum is therefore not security, only a guard against
// copy-and-paste damage, so a cut-short or mistyped invite is refused with "copy it again" instead
// of dialing a wrong address or pinning a wrong fingerprint. Authenticity is decided by the admin's
// daemon, which knows the secret's hash.
//
// Layout (all integers big-endian):
//
//   offset  size  field
//   0       4     checksum: the first 4 bytes of SHA-256 over every byte after it
//   4       16    secret (random, one-time; the ledger stores only its SHA-256)
//   20      32    admin fingerprint (SHA-256 of its certificate DER)
//   52      4     expires_at, u32 seconds since the Unix epoch
//   56      1     endpoint tag: 4 = IPv4, 6 = IPv6, 0x80 + n = hostname of n bytes (1 <= n <= 63)
//   57      4|16|n endpoint address bytes, or the hostname in ASCII
//   ..      2     endpoint port, 1..65535
//   ..      1     prefix family: 4 or 6
//   ..      1     prefix length: 0..32 or 0..128
//   ..      k     prefix address, only its first k = ceil(length / 8) bytes (the rest are zero);
//                 bits past the length must be zero
//   ..      1     network name length m, 1..255
//   ..      m     network name in ASCII (config/names.ts rule)
//   ..      1     admin name length a, 1..63
//   ..      a     admin name in ASCII (the peer-name rule, config/peer-values.ts): the joiner lists
//                 the admin under it, so it must be a name the joiner's config loader accepts
//
// No version byte: the text prefix is the version (`vibepn2:`); a changed layout gets a new one.
// 200 characters = 8 of prefix + 192 of base64url = 144 bytes, so
//   56 fixed + endpoint (IPv4 7, IPv6 19, hostname 3 + n) + prefix (2 + k) + names (2 + m + a) <= 144.
// Worst realistic case: a 63-byte hostname and an IPv6 /64 leave 144 - 56 - 66 - 10 - 2 = 10
// bytes for the network and admin names together (e.g. corp and hq-one); with an IPv4 endpoint
// and an IPv4 /24 they may have 144 - 56 - 7 - 5 - 2 = 74.
//
// The admin name is capped at 63 (a node name may have 64) so that its length, like the
// hostname's, can never crowd out everything else; a node with a longer name uses the long invite.
//
// Decoding is strict: every length is checked against what is left, nothing may follow the admin name,
// base64url must be canonical (no padding, no stray bits), so a decoded invite re-encodes to the
// very same text. It never throws: every refusal is a value with a message for a person.

import { createHash } from 'node:crypto';
import { networkNameProblem } from '../config/names.js';
import { peerNameProblem } from '../config/peer-values.js';
import { bytesEqual, formatIp, maxPrefixLength, parseIPv4, parseIPv6, prefixProblem, type Family, type Prefix } from '../netgraph/addr.js';
import { formatHostPort, hostPortProblem } from '../netgraph/hostport.js';

export const SHORT_INVITE_PREFIX = 'vibepn2:';
/** The bound the whole format is designed around: one line anywhere. */
export const MAX_SHORT_INVITE_CHARS = 200;
export const SHORT_INVITE_SECRET_BYTES = 16;
/** A DNS label's limit; a longer name would crowd out the network name. */
export const MAX_INVITE_HOSTNAME_BYTES = 63;
/** The admin's name: also a DNS label's limit, for the same reason. */
export const MAX_INVITE_ADMIN_NAME_BYTES = 63;

const CHECKSUM_BYTES = 4;
const FINGERPRINT_BYTES = 32;
const MAX_PAYLOAD_BYTES = ((MAX_SHORT_INVITE_CHARS - SHORT_INVITE_PREFIX.length) * 3) / 4;
const TAG_IPV4 = 4;
const TAG_IPV6 = 6;
const TAG_HOSTNAME = 0x80;
const MAX_U32 = 0xffff_ffff;
const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;
const FINGERPRINT_RE = /^[0-9a-f]{64}$/;

export interface ShortInviteFields {
  /** Where the joiner dials the admin: an IPv4 or IPv6 literal (no brackets) or a hostname, and a port. */
  endpoint: { host: string; port: number };
  /** The admin's fingerprint, 64 hex characters (decoded invites give it in lower case). */
  fingerprint: string;
  network: string;
  /** The admin node's name (its certificate CN): the name the joiner lists it under. */
  name: string;
  prefix: Prefix;
  /** Seconds since the Unix epoch; the invite is refused from this second on. */
  expiresAt: number;
  /** 16 random bytes, made by the caller (randomBytes(16)) so tests can be deterministic. */
  secret: Uint8Array;
}

export type ShortInviteCode = 'invite.invalid' | 'invite.expired';

export type DecodeShortInviteResult = { ok: true; invite: ShortInviteFields } | { ok: false; code: ShortInviteCode; message: string };

/** A caller's mistake in the fields (or an invite too long to be short); the message names the fix. */
export class ShortInviteError extends Error {
  override name = 'ShortInviteError';
}

// ---- encoding ----

/** The invite text. Throws ShortInviteError when a field is invalid or the result would pass 200 characters. */
export function encodeShortInvite(fields: ShortInviteFields): string {
  const payload = encodePayload(fields);
  if (payload.length > MAX_PAYLOAD_BYTES) {
    const over = payload.length - MAX_PAYLOAD_BYTES;
    const hostname = endpointTag(fields.endpoint.host) === TAG_HOSTNAME;
    const network = `the network name '${fields.network}'`;
    const admin = `the admin name '${fields.name}'`;
    const shorten = hostname
      ? `shorten ${network}, ${admin} or the hostname '${fields.endpoint.host}' (or give the admin's IP address)`
      : `shorten ${network} or ${admin}`;
    throw new ShortInviteError(
      `the invite would be ${SHORT_INVITE_PREFIX.length + Math.ceil((payload.length * 4) / 3)} characters, over the ${MAX_SHORT_INVITE_CHARS} a short invite may have ` +
        `(${over} byte${over === 1 ? '' : 's'} too many); ${shorten}, or use the long invite`,
    );
  }
  return SHORT_INVITE_PREFIX + Buffer.from(payload).toString('base64url');
}

function encodePayload(fields: ShortInviteFields): Uint8Array {
  const problem = fieldsProblem(fields);
  if (problem) throw new ShortInviteError(`cannot make a short invite: ${problem}`);
  const { endpoint, prefix } = fields;
  const tag = endpointTag(endpoint.host);
  const hostBytes =
    tag === TAG_IPV4 ? parseIPv4(endpoint.host)! : tag === TAG_IPV6 ? parseIPv6(endpoint.host)! : Buffer.from(endpoint.host, 'ascii');
  const prefixBytes = prefix.bytes.subarray(0, Math.ceil(prefix.length / 8));
  const network = Buffer.from(fields.network, 'ascii');
  const admin = Buffer.from(fields.name, 'ascii');
  const out = Buffer.alloc(56 + 1 + hostBytes.length + 2 + 2 + prefixBytes.length + 1 + network.length + 1 + admin.length);
  let at = CHECKSUM_BYTES;
  out.set(fields.secret, at);
  at += SHORT_INVITE_SECRET_BYTES;
  out.write(fields.fingerprint.toLowerCase(), at, 'hex');
  at += FINGERPRINT_BYTES;
  out.writeUInt32BE(fields.expiresAt, at);
  at += 4;
  out[at++] = tag === TAG_HOSTNAME ? TAG_HOSTNAME + hostBytes.length : tag;
  out.set(hostBytes, at);
  at += hostBytes.length;
  out.writeUInt16BE(endpoint.port, at);
  at += 2;
  out[at++] = prefix.family;
  out[at++] = prefix.length;
  out.set(prefixBytes, at);
  at += prefixBytes.length;
  out[at++] = network.length;
  out.set(network, at);
  at += network.length;
  out[at++] = admin.length;
  out.set(admin, at);
  out.set(checksumOf(out.subarray(CHECKSUM_BYTES)), 0);
  return out;
}

function endpointTag(host: string): number {
  if (parseIPv4(host)) return TAG_IPV4;
  if (host.includes(':')) return TAG_IPV6;
  return TAG_HOSTNAME;
}

/** Why these fields cannot be encoded, or null. The same rules decoding applies, so both agree. */
function fieldsProblem(fields: ShortInviteFields): string | null {
  const { endpoint, prefix } = fields;
  if (typeof endpoint.host !== 'string' || endpoint.host === '') return `the admin's address has no host`;
  const endpointProblem = hostPortProblem(endpoint);
  if (endpointProblem) return `the admin's address ${endpointProblem}`;
  if (endpointTag(endpoint.host) === TAG_HOSTNAME && endpoint.host.length > MAX_INVITE_HOSTNAME_BYTES) {
    return `the hostname '${endpoint.host}' is ${endpoint.host.length} bytes, over the ${MAX_INVITE_HOSTNAME_BYTES} a short invite carries; give a shorter name or the admin's IP address`;
  }
  if (typeof fields.fingerprint !== 'string' || !FINGERPRINT_RE.test(fields.fingerprint.toLowerCase())) {
    return `the fingerprint '${String(fields.fingerprint)}' is not 64 hex characters`;
  }
  const nameProblem = networkNameProblem(fields.network);
  if (nameProblem) return nameProblem;
  if (typeof fields.name !== 'string') return `the admin name must be text`;
  const adminProblem = peerNameProblem(fields.name);
  if (adminProblem) return `the admin name ${adminProblem}`;
  if (fields.name.length > MAX_INVITE_ADMIN_NAME_BYTES) {
    return `the admin name '${fields.name}' is ${fields.name.length} characters, over the ${MAX_INVITE_ADMIN_NAME_BYTES} a short invite carries; use the long invite`;
  }
  const badPrefix = prefixProblem(prefix);
  if (badPrefix) return `network ${badPrefix}`;
  if (!Number.isInteger(fields.expiresAt) || fields.expiresAt < 0 || fields.expiresAt > MAX_U32) {
    return `the expiry ${fields.expiresAt} is not whole seconds since 1970 that fit in 32 bits (before 2106)`;
  }
  if (!(fields.secret instanceof Uint8Array) || fields.secret.length !== SHORT_INVITE_SECRET_BYTES) {
    return `the secret must be ${SHORT_INVITE_SECRET_BYTES} random bytes (randomBytes(${SHORT_INVITE_SECRET_BYTES}))`;
  }
  return null;
}

function checksumOf(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest().subarray(0, CHECKSUM_BYTES);
}

// ---- decoding ----

/**
 * Reads an invite someone pasted. Surrounding whitespace is forgiven (terminals and mail add it);
 * anything else that is not exactly what encodeShortInvite writes is `invite.invalid`, and an
 * invite past its expiry at `now` is `invite.expired`. Never throws.
 */
export function decodeShortInvite(text: string, now: Date): DecodeShortInviteResult {
  if (typeof text !== 'string') return invalid('an invite is text starting with vibepn2:');
  const trimmed = text.trim();
  if (!trimmed.startsWith(SHORT_INVITE_PREFIX)) {
    // Escaped: pasted text may hold newlines or control characters, and the message is one line.
    const shown = quote(trimmed.length > 12 ? `${trimmed.slice(0, 12)}…` : trimmed);
    return invalid(`${shown} is not a short invite: one starts with '${SHORT_INVITE_PREFIX}'`);
  }
  if (trimmed.length > MAX_SHORT_INVITE_CHARS) {
    return invalid(`the invite is ${trimmed.length} characters, longer than a short invite can be (${MAX_SHORT_INVITE_CHARS}); paste only one invite`);
  }
  const body = trimmed.slice(SHORT_INVITE_PREFIX.length);
  if (!BASE64URL_RE.test(body)) return damaged('it has characters an invite never contains');
  const bytes = new Uint8Array(Buffer.from(body, 'base64url'));
  // Canonical base64url only: a last character with stray low bits would decode to the same bytes
  // as the right one, and two texts for one invite breaks "re-encode gives the same invite".
  if (Buffer.from(bytes).toString('base64url') !== body) return damaged('its last characters do not fit together');
  if (bytes.length <= CHECKSUM_BYTES) return damaged('it is cut short');
  if (!bytesEqual(checksumOf(bytes.subarray(CHECKSUM_BYTES)), bytes.subarray(0, CHECKSUM_BYTES))) {
    return damaged('its checksum does not match');
  }
  // Past the checksum the text is as its encoder wrote it; a layout error now means an encoder
  // that is not ours (or a bug), still refused in words.
  const fields = parsePayload(bytes);
  if (typeof fields === 'string') return invalid(`the invite is malformed (${fields}); ask the admin for a new one`);
  if (now.getTime() >= fields.expiresAt * 1000) {
    return {
      ok: false,
      code: 'invite.expired',
      message: `the invite expired at ${new Date(fields.expiresAt * 1000).toISOString()}; ask the admin for a new one (vpnctl invite)`,
    };
  }
  return { ok: true, invite: fields };
}

/** The fields, or why the bytes are not a valid layout. Every length is checked against what is left. */
function parsePayload(bytes: Uint8Array): ShortInviteFields | string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = CHECKSUM_BYTES;
  const take = (n: number, what: string): Buffer | string => {
    if (n > buf.length - at) return `it ends inside the ${what}`;
    const slice = buf.subarray(at, at + n);
    at += n;
    return slice;
  };
  const secret = take(SHORT_INVITE_SECRET_BYTES, 'secret');
  if (typeof secret === 'string') return secret;
  const fingerprint = take(FINGERPRINT_BYTES, 'fingerprint');
  if (typeof fingerprint === 'string') return fingerprint;
  const expires = take(4, 'expiry');
  if (typeof expires === 'string') return expires;
  const tagBytes = take(1, 'address');
  if (typeof tagBytes === 'string') return tagBytes;
  const tag = tagBytes[0]!;
  let host: string;
  if (tag === TAG_IPV4 || tag === TAG_IPV6) {
    const addr = take(tag === TAG_IPV4 ? 4 : 16, 'address');
    if (typeof addr === 'string') return addr;
    host = formatIp(new Uint8Array(addr));
  } else if (tag > TAG_HOSTNAME && tag <= TAG_HOSTNAME + MAX_INVITE_HOSTNAME_BYTES) {
    const name = take(tag - TAG_HOSTNAME, 'hostname');
    if (typeof name === 'string') return name;
    if (!name.every((b) => b >= 0x21 && b < 0x7f)) return 'the hostname is not plain ASCII';
    host = name.toString('ascii');
    if (endpointTag(host) !== TAG_HOSTNAME) return `the hostname '${host}' is an IP address`;
  } else {
    return `unknown address kind ${tag}`;
  }
  const portBytes = take(2, 'port');
  if (typeof portBytes === 'string') return portBytes;
  const endpoint = { host, port: portBytes.readUInt16BE(0) };
  const endpointProblem = hostPortProblem(endpoint);
  if (endpointProblem) return `the admin's address ${endpointProblem}`;
  const familyAndLength = take(2, 'network prefix');
  if (typeof familyAndLength === 'string') return familyAndLength;
  const family = familyAndLength[0]!;
  const length = familyAndLength[1]!;
  if (family !== 4 && family !== 6) return `unknown prefix family ${family}`;
  if (length > maxPrefixLength(family)) return `prefix length ${length} is over ${maxPrefixLength(family)}`;
  const prefixHead = take(Math.ceil(length / 8), 'network prefix');
  if (typeof prefixHead === 'string') return prefixHead;
  const prefixBytes = new Uint8Array(family === 4 ? 4 : 16);
  prefixBytes.set(prefixHead);
  const prefix: Prefix = { family: family as Family, bytes: prefixBytes, length };
  if (prefixProblem(prefix)) return `the network prefix has bits set past its length ${length}`;
  const nameLength = take(1, 'network name');
  if (typeof nameLength === 'string') return nameLength;
  const nameBytes = take(nameLength[0]!, 'network name');
  if (typeof nameBytes === 'string') return nameBytes;
  const network = nameBytes.toString('latin1');
  // Not networkNameProblem's message: it quotes the name, which here may hold any byte.
  if (networkNameProblem(network)) return 'the network name is not 1..255 characters from A-Z a-z 0-9 _ . -';
  const adminLength = take(1, 'admin name');
  if (typeof adminLength === 'string') return adminLength;
  if (adminLength[0]! > MAX_INVITE_ADMIN_NAME_BYTES) return `the admin name length ${adminLength[0]!} is over ${MAX_INVITE_ADMIN_NAME_BYTES}`;
  const adminBytes = take(adminLength[0]!, 'admin name');
  if (typeof adminBytes === 'string') return adminBytes;
  const name = adminBytes.toString('latin1');
  // The same escape as for the network name: peerNameProblem would quote any byte.
  if (peerNameProblem(name)) return 'the admin name is not 1..63 characters from A-Z a-z 0-9 _ . -';
  if (at !== buf.length) return `${buf.length - at} bytes follow the admin name`;
  return {
    endpoint,
    fingerprint: fingerprint.toString('hex'),
    network,
    name,
    prefix,
    expiresAt: expires.readUInt32BE(0),
    secret: new Uint8Array(secret),
  };
}

/** `text` in double quotes with every character outside printable ASCII (and the ellipsis) escaped. */
function quote(text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e…]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function invalid(message: string): DecodeShortInviteResult {
  return { ok: false, code: 'invite.invalid', message };
}

/** Copy-and-paste damage, in words the person holding the invite can act on. */
function damaged(why: string): DecodeShortInviteResult {
  return invalid(`the invite is damaged or cut short (${why}); copy it again whole, from '${SHORT_INVITE_PREFIX}' to its last character`);
}

/** The admin's address as HOST:PORT text, brackets around IPv6: what a config's peers.address holds. */
export function shortInviteAddress(invite: ShortInviteFields): string {
  return formatHostPort(invite.endpoint.host, invite.endpoint.port);
}
