// Invites: one copy-pasteable string that tells a new node which network to join and whom to
// dial, and pins the inviter's fingerprint. Beyond the original VibePN, whose invite is plain JSON
// anyone on the path can rewrite, ours is signed by the inviter's key and expires.
//
// Signed format:  "vibepn1:" + base64url(JSON {"payload": "<Invite as JSON text>", "sig": "<base64url>"})
// `sig` is the inviter's signature (ECDSA P-256 with SHA-256, DER-encoded as X.509 and OpenSSL
// use) over the UTF-8 bytes of the payload *string*. Signing the exact string, not a re-serialized
// object, means no JSON canonicalization is needed. The key is the one in the embedded certificate,
// and that certificate must hash to the fingerprint the invite pins — so a valid invite proves the
// holder of the pinned key wrote it. (Whether that is the right person is still up to the user.)

import { X509Certificate, sign, verify, type KeyObject } from 'node:crypto';
import { networkNameProblem } from '../config/names.js';
import { undialableProblem } from '../config/peer-values.js';
import { parseDialAddress } from '../config/values.js';
import { parseCidr } from '../netgraph/addr.js';
import { singleLine } from '../log/logger.js';
import {
  certificateInfo,
  checkValidity,
  fingerprintOfDer,
  isFingerprint,
  nodeNameProblem,
  type CertificateInfo,
  type Identity,
} from './identity.js';

/** Messages quote fields of an invite someone sent: kept to one bounded line for the terminal. */
const MAX_INVITE_ERROR_CHARS = 400;

export class InviteError extends Error {
  override name = 'InviteError';

  constructor(message: string) {
    const line = singleLine(message);
    super(line.length > MAX_INVITE_ERROR_CHARS ? `${line.slice(0, MAX_INVITE_ERROR_CHARS)}…` : line);
  }
}

export interface Invite {
  version: 1;
  network: string;
  prefix: string;
  inviter: { name: string; address: string; fingerprint: string; /** PEM; '' in unsigned invites. */ cert: string };
  /** ISO 8601; '' in unsigned invites. */
  issued_at: string;
  /** ISO 8601; '' in unsigned invites. */
  expires_at: string;
}

export interface ParsedInvite {
  invite: Invite;
  /** false for the original's plain invites: nothing in them could be verified. */
  signed: boolean;
}

export const INVITE_PREFIX = 'vibepn1:';
const DEFAULT_TTL_SECONDS = 24 * 60 * 60;
/**
 * The longest an invite may be valid. Whoever holds an invite can join with it until it expires,
 * and it travels through chat and mail; past a year it is a standing credential, not an invite.
 */
export const MAX_INVITE_TTL_SECONDS = 365 * 24 * 60 * 60;
const ALLOWED_CLOCK_SKEW_MS = 5 * 60 * 1000;
// A real invite is ~1.5 KB (most of it the certificate). The cap bounds the work a pasted blob
// can cause before anything is checked.
const MAX_INVITE_CHARS = 16 * 1024;
const ISO_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]+={0,2}$/;
const BASE64_ANY_RE = /^[A-Za-z0-9+/_-]+={0,2}$/;

// ---- creating ----

/** Signs and encodes an invite. Exposed for tests that need to forge a validly framed one. */
export function encodeSignedInvite(invite: Invite, privateKey: KeyObject): string {
  const payload = JSON.stringify({
    version: invite.version,
    network: invite.network,
    prefix: invite.prefix,
    inviter: {
      name: invite.inviter.name,
      address: invite.inviter.address,
      fingerprint: invite.inviter.fingerprint,
      cert: invite.inviter.cert,
    },
    issued_at: invite.issued_at,
    expires_at: invite.expires_at,
  });
  const sig = sign(digestFor(privateKey), Buffer.from(payload, 'utf8'), privateKey).toString('base64url');
  return INVITE_PREFIX + Buffer.from(JSON.stringify({ payload, sig }), 'utf8').toString('base64url');
}

export function createInvite(
  identity: Identity,
  fields: { network: string; prefix: string; address: string; name?: string },
  opts: { ttlSeconds?: number; now?: Date } = {},
): string {
  const ttlSeconds = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new InviteError(`invite lifetime must be a positive number of seconds, got ${ttlSeconds}`);
  }
  if (ttlSeconds > MAX_INVITE_TTL_SECONDS) {
    throw new InviteError(`invite lifetime ${ttlSeconds} s is longer than the longest allowed, ${MAX_INVITE_TTL_SECONDS} s (365 days)`);
  }
  // Whole seconds: the timestamps are for humans to read in error messages.
  const issuedMs = Math.floor((opts.now ?? new Date()).getTime() / 1000) * 1000;
  const invite: Invite = {
    version: 1,
    network: fields.network,
    prefix: fields.prefix,
    inviter: {
      name: fields.name ?? identity.name,
      address: fields.address,
      fingerprint: identity.fingerprint,
      cert: identity.certPem,
    },
    issued_at: isoSeconds(issuedMs),
    expires_at: isoSeconds(issuedMs + Math.round(ttlSeconds * 1000)),
  };
  checkCommonFields(invite, 'cannot create invite');
  return encodeSignedInvite(invite, identity.privateKey);
}

// ---- parsing ----

/**
 * Reads a signed `vibepn1:` invite, or one of the original VibePN's unsigned formats (see
 * parseOriginalJson and parseOriginalToken). Throws InviteError and nothing else.
 */
export function parseInvite(text: string, opts: { now?: Date } = {}): ParsedInvite {
  try {
    return parseAny(text, opts.now ?? new Date());
  } catch (err) {
    if (err instanceof InviteError) throw err;
    // Every expected failure is an InviteError already; this keeps the contract if one slipped by.
    throw new InviteError(`invite could not be read (unexpected ${err instanceof Error ? err.name : 'error'}: ${String(err)})`);
  }
}

function parseAny(text: string, now: Date): ParsedInvite {
  if (typeof text !== 'string') throw new InviteError('invite must be text');
  const trimmed = text.trim();
  if (trimmed === '') throw new InviteError('invite is empty');
  if (trimmed.length > MAX_INVITE_CHARS) {
    throw new InviteError(`invite is ${trimmed.length} characters, more than any real invite (${MAX_INVITE_CHARS}); was the wrong file given?`);
  }
  if (trimmed.startsWith(INVITE_PREFIX)) return parseSigned(trimmed.slice(INVITE_PREFIX.length), now);
  const versioned = /^vibepn(\d+):/.exec(trimmed);
  if (versioned) {
    throw new InviteError(`invite format vibepn${versioned[1]} is not supported by this version (it reads vibepn1); upgrade vpnctl`);
  }
  if (trimmed.startsWith('vibepn://')) return parseOriginalToken(trimmed);
  return parseOriginalJson(trimmed);
}

function parseSigned(body: string, now: Date): ParsedInvite {
  // Tolerate line breaks and spaces that terminals and chat clients insert into long strings.
  const compact = body.replace(/\s+/g, '');
  if (compact === '' || !BASE64URL_RE.test(compact)) {
    throw new InviteError(`invite is damaged: the text after '${INVITE_PREFIX}' is not base64url (copy the whole string)`);
  }
  const envelope = parseEnvelope(decodeUtf8(Buffer.from(compact, 'base64url')), INVITE_PREFIX.length + compact.length);
  const payload = envelope.payload;
  const sig = envelope.sig;
  if (typeof payload !== 'string' || typeof sig !== 'string') {
    throw new InviteError('invite is damaged: expected {"payload": "...", "sig": "..."} inside');
  }
  const obj = parseJsonObject(payload, 'invite payload is damaged');
  if (obj.version !== 1) throw new InviteError(`invite version ${JSON.stringify(obj.version)} is not supported (expected 1); upgrade vpnctl`);
  const inviterObj = obj.inviter;
  if (typeof inviterObj !== 'object' || inviterObj === null || Array.isArray(inviterObj)) {
    throw new InviteError('invite field inviter is missing or not an object');
  }
  const inviter = inviterObj as Record<string, unknown>;
  const invite: Invite = {
    version: 1,
    network: stringField(obj, 'network', 'network'),
    prefix: stringField(obj, 'prefix', 'prefix'),
    inviter: {
      name: stringField(inviter, 'name', 'inviter.name'),
      address: stringField(inviter, 'address', 'inviter.address'),
      fingerprint: stringField(inviter, 'fingerprint', 'inviter.fingerprint'),
      cert: stringField(inviter, 'cert', 'inviter.cert'),
    },
    issued_at: stringField(obj, 'issued_at', 'issued_at'),
    expires_at: stringField(obj, 'expires_at', 'expires_at'),
  };
  if (!isFingerprint(invite.inviter.fingerprint)) {
    throw new InviteError(`invite field inviter.fingerprint '${invite.inviter.fingerprint}' is not 64 hex characters`);
  }
  invite.inviter.fingerprint = invite.inviter.fingerprint.toLowerCase();

  // Self-consistency first, then the signature: both must hold before any field is believed.
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(invite.inviter.cert);
  } catch {
    throw new InviteError('invite field inviter.cert is not a valid PEM certificate');
  }
  const certFingerprint = fingerprintOfDer(cert.raw);
  if (certFingerprint !== invite.inviter.fingerprint) {
    throw new InviteError(
      `invite is inconsistent: its certificate hashes to ${certFingerprint} but it claims fingerprint ${invite.inviter.fingerprint}; ` +
        `do not use it, ask for a new invite`,
    );
  }
  const sigBytes = BASE64URL_RE.test(sig) ? Buffer.from(sig, 'base64url') : null;
  let valid = false;
  if (sigBytes && sigBytes.length > 0) {
    try {
      valid = verify(digestFor(cert.publicKey), Buffer.from(payload, 'utf8'), cert.publicKey, sigBytes);
    } catch {
      // A malformed signature is just an invalid one.
    }
  }
  if (!valid) {
    throw new InviteError(
      `invite signature does not verify: it was changed after ${invite.inviter.name} signed it (or damaged while copying); ` +
        `ask for a new invite`,
    );
  }

  const issued = parseTime(invite.issued_at, 'issued_at');
  const expires = parseTime(invite.expires_at, 'expires_at');
  if (expires <= issued) throw new InviteError(`invite is inconsistent: it expires (${invite.expires_at}) before it was issued (${invite.issued_at})`);
  if (now.getTime() > expires) {
    throw new InviteError(
      `invite expired at ${invite.expires_at} (issued ${invite.issued_at}); ask ${invite.inviter.name} for a new one with 'vpnctl invite'`,
    );
  }
  if (issued > now.getTime() + ALLOWED_CLOCK_SKEW_MS) {
    throw new InviteError(
      `invite was issued at ${invite.issued_at}, in the future (now ${now.toISOString()}); the clock on this machine or on ${invite.inviter.name}'s is wrong`,
    );
  }
  let certInfo: CertificateInfo;
  try {
    certInfo = certificateInfo(new Uint8Array(cert.raw));
  } catch (err) {
    throw new InviteError(`invite field inviter.cert is unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const certValidity = checkValidity(certInfo.notBefore, certInfo.notAfter, now);
  if (certValidity) throw new InviteError(`${invite.inviter.name}'s ${certValidity}; peers would refuse it, ask for a new identity and invite`);

  checkCommonFields(invite, 'invalid invite');
  return { invite, signed: true };
}

/**
 * The original VibePN's `vpnctl invite` output: plain JSON, unsigned. Its own layout is
 *   {"version": 1, "network": "corp", "prefix": "10.42.0.0/24",
 *    "inviter": {"name": "node-a", "address": "198.51.100.20:51820", "fingerprint": "<64 hex>"}}
 * Flat variants are accepted too, since hand-made invites are common. Accepted keys, looked up in
 * the `inviter` (or `peer`) object first and then at the top level:
 *   network:     network | network_name
 *   prefix:      prefix | cidr | network_prefix | subnet
 *   name:        name | peer_name | node | node_name | inviter_name
 *   address:     address | peer_address | endpoint | addr | inviter_address
 *   fingerprint: fingerprint | peer_fingerprint | fp | inviter_fingerprint
 * The JSON may also arrive base64-encoded (standard or URL alphabet). `version`, if present, must be 1.
 */
function parseOriginalJson(text: string): ParsedInvite {
  let json = text;
  if (!text.startsWith('{')) {
    const notAnInvite = new InviteError(
      `not an invite: expected '${INVITE_PREFIX}…', the original's JSON invite or its 'vibepn://…' token`,
    );
    const compact = text.replace(/\s+/g, '');
    if (!BASE64_ANY_RE.test(compact)) throw notAnInvite;
    // Base64 that does not decode to JSON text was never an invite, so say that rather than "damaged".
    const decoded = new TextDecoder('utf-8', { fatal: false }).decode(
      Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64'),
    );
    json = decoded.trim();
    if (!json.startsWith('{')) throw notAnInvite;
  }
  const obj = parseJsonObject(json, 'invite is not valid JSON');
  if (obj.version !== undefined && obj.version !== 1) {
    throw new InviteError(`invite version ${JSON.stringify(obj.version)} is not supported (expected 1)`);
  }
  const nestedValue = obj.inviter ?? obj.peer;
  const nested =
    typeof nestedValue === 'object' && nestedValue !== null && !Array.isArray(nestedValue)
      ? (nestedValue as Record<string, unknown>)
      : undefined;
  const pick = (what: string, keys: readonly string[], sources: Array<Record<string, unknown> | undefined>): string => {
    for (const source of sources) {
      if (!source) continue;
      for (const key of keys) {
        const value = source[key];
        if (value === undefined) continue;
        if (typeof value !== 'string') throw new InviteError(`invite field ${key} must be a string`);
        if (value.trim() !== '') return value.trim();
      }
    }
    throw new InviteError(`invite has no ${what} (looked for ${keys.join(', ')})`);
  };
  const inviterFirst = [nested, obj];
  const fingerprint = pick('inviter fingerprint', ['fingerprint', 'peer_fingerprint', 'fp', 'inviter_fingerprint'], inviterFirst);
  return unsignedInvite({
    network: pick('network name', ['network', 'network_name'], [obj, nested]),
    prefix: pick('network prefix', ['prefix', 'cidr', 'network_prefix', 'subnet'], [obj, nested]),
    name: pick('inviter name', ['name', 'peer_name', 'node', 'node_name', 'inviter_name'], inviterFirst),
    address: pick('inviter address', ['address', 'peer_address', 'endpoint', 'addr', 'inviter_address'], inviterFirst),
    fingerprint,
  });
}

/** The original's one-line token: vibepn://NETWORK@HOST:PORT#FINGERPRINT?name=NAME&prefix=10.42.0.0%2F24 */
function parseOriginalToken(token: string): ParsedInvite {
  const usage = `invalid invite token: expected vibepn://NETWORK@HOST:PORT#FINGERPRINT?name=NAME&prefix=CIDR`;
  let rest = token.slice('vibepn://'.length);
  const query = new Map<string, string>();
  const q = rest.indexOf('?');
  if (q >= 0) {
    for (const pair of rest.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      try {
        query.set(pair.slice(0, eq), decodeURIComponent(pair.slice(eq + 1)));
      } catch {
        throw new InviteError(`${usage} (bad percent-encoding in '${pair}')`);
      }
    }
    rest = rest.slice(0, q);
  }
  const at = rest.indexOf('@');
  const hash = rest.indexOf('#');
  if (at <= 0 || hash <= at + 1) throw new InviteError(usage);
  return unsignedInvite({
    network: rest.slice(0, at),
    address: rest.slice(at + 1, hash),
    fingerprint: rest.slice(hash + 1),
    name: query.get('name') ?? '',
    prefix: query.get('prefix') ?? '',
  });
}

function unsignedInvite(f: { network: string; prefix: string; name: string; address: string; fingerprint: string }): ParsedInvite {
  if (!isFingerprint(f.fingerprint)) throw new InviteError(`invite fingerprint '${f.fingerprint}' is not 64 hex characters`);
  const invite: Invite = {
    version: 1,
    network: f.network,
    prefix: f.prefix,
    inviter: { name: f.name, address: f.address, fingerprint: f.fingerprint.toLowerCase(), cert: '' },
    issued_at: '',
    expires_at: '',
  };
  checkCommonFields(invite, 'invalid invite');
  return { invite, signed: false };
}

// ---- helpers ----

/**
 * Checks what every invite must satisfy, signed or not, with the config loader's own rules, so
 * join never writes a config the daemon refuses.
 */
function checkCommonFields(invite: Invite, context: string): void {
  const nameProblem = networkNameProblem(invite.network);
  if (nameProblem) throw new InviteError(`${context}: ${nameProblem}`);
  const cidr = parseCidr(invite.prefix);
  if (!cidr.ok) throw new InviteError(`${context}: network prefix ${cidr.error}`);
  const inviterProblem = nodeNameProblem(invite.inviter.name);
  if (inviterProblem) throw new InviteError(`${context}: inviter ${inviterProblem}`);
  const address = parseDialAddress(invite.inviter.address);
  if (!address.ok) throw new InviteError(`${context}: inviter address ${address.error}`);
  const undialable = undialableProblem(address.value);
  if (undialable) throw new InviteError(`${context}: inviter address ${undialable}`);
}

function digestFor(key: KeyObject): string | null {
  // EdDSA hashes internally and must be given no digest; every other key type signs SHA-256.
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256';
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function parseTime(text: string, field: string): number {
  const ms = ISO_TIME_RE.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new InviteError(`invite field ${field} '${text}' is not an ISO 8601 UTC time`);
  return ms;
}

/** Copy-and-paste damage, in words: the JSON parser's "position 444" means nothing to the person holding the invite. */
function damaged(why: string): InviteError {
  return new InviteError(`the invite is cut short or damaged (${why}); copy it again whole, from '${INVITE_PREFIX}' to its last character`);
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw damaged('it does not decode to text');
  }
}

/**
 * The outer {"payload", "sig"} object. Every invite this code writes ends with its closing brace,
 * so decoded text that stops before one was cut off: the usual damage, a terminal or chat client
 * that wrapped or truncated a long line.
 */
function parseEnvelope(text: string, length: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw damaged(text.trimEnd().endsWith('}') ? 'its contents do not decode to an invite' : `it stops after ${length} characters, before its end`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw damaged('its contents do not decode to an invite');
  return value as Record<string, unknown>;
}

function parseJsonObject(text: string, context: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InviteError(`${context}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InviteError(`${context}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function stringField(obj: Record<string, unknown>, key: string, label: string): string {
  const value = obj[key];
  if (typeof value !== 'string') throw new InviteError(`invite field ${label} is missing or not a string`);
  return value;
}
