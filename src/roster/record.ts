// Membership records (issue 12): an admin node's signed statement that a node, by fingerprint,
// is a member of a network (or no longer is). Pure: encoding and decoding one record (signing
// and checking it: signature.ts; which record wins: roster.ts).
//
// Wire form (all integers big-endian):
//   body      = magic "VPNR" | u8 format (1) | u8 kind (1 member, 2 revoked) | u64 version
//             | u8 len | network (ASCII, networkNameProblem's rule)
//             | u8 len | member name (UTF-8, nodeNameProblem's rule)
//             | 32 bytes member fingerprint (raw SHA-256)
//             | u8 family (4|6) | 4 or 16 bytes overlay address
//             | u8 count (0..64) | count × (u8 family | u8 prefix length | 4 or 16 bytes, host bits zero)
//             | u8 count (0..16) | count × (u8 len | endpoint hint "host:port", parseHostPort's rule)
//             | u64 issued_at (Unix ms) | u8 has_expiry (0|1) | [u64 expires_at (Unix ms)]
//             | u16 len (1..4096) | signer certificate DER
//   record    = body | u8 len (1..72) | ECDSA P-256 SHA-256 signature over body (DER, as invite.ts)
//
// The decoder is strict: a record decodes only if re-encoding the result gives the same bytes,
// so there is one byte string per record and the signature covers exactly what is believed.
// Every length is checked against what remains before anything is read.
//
// The signer's certificate travels inside the body because verifiers know admins only by
// fingerprint; being inside the body, it is covered by the signature too, so a record cannot be
// re-attributed to another admin. The magic and format byte keep a record signature from ever
// being mistaken for any other signature a node key makes (invites sign JSON text).

import { networkNameProblem } from '../config/names.js';
import { fingerprintOfDer, isFingerprint, nodeNameProblem } from '../crypto/identity.js';
import { bytesEqual, familyOf, formatIp, formatPrefix, maskBytes, maxPrefixLength, parseCidr, parseIp } from '../netgraph/addr.js';
import { formatHostPort, parseHostPort } from '../netgraph/hostport.js';
import { singleLine } from '../log/logger.js';

export const RECORD_MAGIC = Uint8Array.of(0x56, 0x50, 0x4e, 0x52); // "VPNR"
export const RECORD_FORMAT = 1;
export const MAX_NAME_BYTES = 255;
export const MAX_ROUTES = 64;
export const MAX_ENDPOINTS = 16;
export const MAX_ENDPOINT_BYTES = 255;
export const MAX_CERT_BYTES = 4096;
/** A DER ECDSA P-256 signature is at most 72 bytes (two 33-byte INTEGERs and their headers). */
export const MAX_SIGNATURE_BYTES = 72;
export const MAX_VERSION = (1n << 64n) - 1n;

/** Largest possible record: every field at its bound. Anything longer is refused unread. */
export const MAX_RECORD_BYTES =
  4 + 1 + 1 + 8 +
  (1 + MAX_NAME_BYTES) * 2 +
  32 +
  1 + 16 +
  1 + MAX_ROUTES * (2 + 16) +
  1 + MAX_ENDPOINTS * (1 + MAX_ENDPOINT_BYTES) +
  8 + 1 + 8 +
  2 + MAX_CERT_BYTES +
  1 + MAX_SIGNATURE_BYTES;

const KIND_CODES = { member: 1, revoked: 2 } as const;

export type RecordKind = keyof typeof KIND_CODES;

/** What an admin states about one member. Addresses and routes are text, canonical on decode. */
export interface RecordFields {
  kind: RecordKind;
  /** u64; a higher version of the same (network, fingerprint) replaces a lower one. */
  version: bigint;
  network: string;
  /** The member's node name, unique among a network's current members (roster.ts). */
  name: string;
  /** Lowercase hex SHA-256 of the member's certificate DER. */
  fingerprint: string;
  /** The overlay address the member may announce as its host route. */
  address: string;
  /** Subnet routes the member may announce besides its host route, as CIDR text. */
  routes: readonly string[];
  /** Where the member may be dialed, "host:port"; may be empty. */
  endpoints: readonly string[];
  /** Unix milliseconds. */
  issuedAt: number;
  /** Unix milliseconds; absent: the record does not expire. */
  expiresAt?: number;
}

/** A decoded record: its fields as the signer stated them, the signer's certificate and signature. */
export interface MembershipRecord extends RecordFields {
  signerCertDer: Uint8Array;
  /** sha256(signerCertDer). */
  signerFingerprint: string;
  signature: Uint8Array;
}

declare const verifiedBrand: unique symbol;

/**
 * A record verifyRecord accepted: only it makes one, so a Roster cannot be handed an unchecked
 * record by mistake. `bytes` is the record as received, for passing on to other nodes unchanged.
 */
export interface VerifiedRecord {
  readonly record: MembershipRecord;
  readonly bytes: Uint8Array;
  readonly [verifiedBrand]: true;
}

export type VerifyFailure = 'malformed' | 'not_admin' | 'bad_signature' | 'expired';

export type VerifyResult = { ok: true; verified: VerifiedRecord; record: MembershipRecord } | { ok: false; reason: VerifyFailure; error: string };

export type DecodeResult = { ok: true; record: MembershipRecord; body: Uint8Array } | { ok: false; error: string };

export class RecordError extends Error {
  override name = 'RecordError';
}

// ---- encoding ----

/** Bytes one field contributes; a list so the total is computed once and copied once. */
type Part = Uint8Array;

function u8(value: number): Part {
  return Uint8Array.of(value);
}

function u16(value: number): Part {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, value);
  return out;
}

function u64(value: bigint): Part {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return out;
}

function shortText(text: string, what: string, maxBytes: number): Part[] {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length < 1 || bytes.length > maxBytes) throw new RecordError(`${what} must be 1..${maxBytes} bytes of UTF-8, got ${bytes.length}`);
  // A lone surrogate would be written as U+FFFD and read back as different text.
  if (bytes.toString('utf8') !== text) throw new RecordError(`${what} is not well-formed Unicode text (it holds a lone surrogate)`);
  return [u8(bytes.length), new Uint8Array(bytes)];
}

function timeMs(value: number, what: string): Part {
  if (!Number.isSafeInteger(value) || value < 0) throw new RecordError(`${what} must be a whole number of Unix milliseconds >= 0, got ${value}`);
  return u64(BigInt(value));
}

/** Why these fields cannot be a record, or null. The decoder applies the same rules. */
function fieldProblem(fields: RecordFields): string | null {
  if (!Object.hasOwn(KIND_CODES, fields.kind)) return `record kind must be 'member' or 'revoked', got ${JSON.stringify(fields.kind)}`;
  if (typeof fields.version !== 'bigint' || fields.version < 0n || fields.version > MAX_VERSION) {
    return `record version must be a u64 bigint, got ${String(fields.version)}`;
  }
  const network = networkNameProblem(fields.network);
  if (network) return network;
  const name = nodeNameProblem(fields.name);
  if (name) return `member ${name}`;
  if (!isFingerprint(fields.fingerprint) || fields.fingerprint !== fields.fingerprint.toLowerCase()) {
    return `member fingerprint '${fields.fingerprint}' must be 64 lowercase hex characters`;
  }
  if (fields.routes.length > MAX_ROUTES) return `a record holds at most ${MAX_ROUTES} routes, got ${fields.routes.length}; split the member's routes into wider prefixes`;
  if (fields.endpoints.length > MAX_ENDPOINTS) return `a record holds at most ${MAX_ENDPOINTS} endpoint hints, got ${fields.endpoints.length}`;
  for (const endpoint of fields.endpoints) {
    const problem = endpointProblem(endpoint);
    if (problem) return problem;
  }
  if (new Set(fields.endpoints).size !== fields.endpoints.length) return 'endpoint hints must not repeat';
  if (fields.expiresAt !== undefined && !(fields.expiresAt > fields.issuedAt)) {
    return `record expires_at (${fields.expiresAt}) must be later than issued_at (${fields.issuedAt})`;
  }
  return null;
}

/** An endpoint hint is canonical "host:port": it must read back as exactly the same text. */
function endpointProblem(text: string): string | null {
  if (Buffer.byteLength(text, 'utf8') > MAX_ENDPOINT_BYTES) return `endpoint hint is longer than ${MAX_ENDPOINT_BYTES} bytes`;
  const parsed = parseHostPort(text);
  if (!parsed.ok) return `endpoint hint ${parsed.error}`;
  if (formatHostPort(parsed.host, parsed.port) !== text) return `endpoint hint '${text}' is not in canonical form (write it as ${formatHostPort(parsed.host, parsed.port)})`;
  return null;
}

function addressPart(text: string): Part[] {
  const bytes = parseIp(text);
  if (!bytes) throw new RecordError(`member address '${text}' is not an IPv4 or IPv6 address`);
  return [u8(familyOf(bytes)), bytes];
}

function routeParts(routes: readonly string[]): Part[] {
  const parts: Part[] = [u8(routes.length)];
  const seen = new Set<string>();
  for (const text of routes) {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new RecordError(`member route ${parsed.error}`);
    const canonical = formatPrefix(parsed.prefix);
    if (seen.has(canonical)) throw new RecordError(`member route ${canonical} is listed twice`);
    seen.add(canonical);
    parts.push(u8(parsed.prefix.family), u8(parsed.prefix.length), parsed.prefix.bytes);
  }
  return parts;
}

/** The signed part of a record. Throws RecordError naming the field that cannot be encoded. */
export function encodeRecordBody(fields: RecordFields, signerCertDer: Uint8Array): Uint8Array {
  const problem = fieldProblem(fields);
  if (problem) throw new RecordError(`cannot encode membership record: ${problem}`);
  if (signerCertDer.length < 1 || signerCertDer.length > MAX_CERT_BYTES) {
    throw new RecordError(`signer certificate must be 1..${MAX_CERT_BYTES} bytes of DER, got ${signerCertDer.length}`);
  }
  const parts: Part[] = [
    RECORD_MAGIC,
    u8(RECORD_FORMAT),
    u8(KIND_CODES[fields.kind]),
    u64(fields.version),
    ...shortText(fields.network, 'network name', MAX_NAME_BYTES),
    ...shortText(fields.name, 'member name', MAX_NAME_BYTES),
    new Uint8Array(Buffer.from(fields.fingerprint, 'hex')),
    ...addressPart(fields.address),
    ...routeParts(fields.routes),
    u8(fields.endpoints.length),
    ...fields.endpoints.flatMap((endpoint) => shortText(endpoint, 'endpoint hint', MAX_ENDPOINT_BYTES)),
    timeMs(fields.issuedAt, 'issued_at'),
    ...(fields.expiresAt === undefined ? [u8(0)] : [u8(1), timeMs(fields.expiresAt, 'expires_at')]),
    u16(signerCertDer.length),
    signerCertDer,
  ];
  return new Uint8Array(Buffer.concat(parts));
}

/** body | u8 len | signature. */
export function encodeRecord(body: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length < 1 || signature.length > MAX_SIGNATURE_BYTES) {
    throw new RecordError(`record signature must be 1..${MAX_SIGNATURE_BYTES} bytes (an ECDSA P-256 signature), got ${signature.length}`);
  }
  return new Uint8Array(Buffer.concat([body, u8(signature.length), signature]));
}

// ---- decoding ----

/** Thrown inside the decoder only; decodeRecord turns it into { ok: false }. */
class Malformed extends Error {}

class Reader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  take(count: number, what: string): Uint8Array {
    if (count > this.remaining) throw new Malformed(`record ends inside ${what} (needs ${count} bytes, ${this.remaining} left)`);
    const out = this.bytes.subarray(this.pos, this.pos + count);
    this.pos += count;
    return out;
  }

  u8(what: string): number {
    return this.take(1, what)[0]!;
  }

  u16(what: string): number {
    const b = this.take(2, what);
    return (b[0]! << 8) | b[1]!;
  }

  u64(what: string): bigint {
    const b = this.take(8, what);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  }

  /** u8 length then UTF-8; invalid UTF-8 (which would not re-encode to the same bytes) is refused. */
  text(what: string, maxBytes: number): string {
    const length = this.u8(`${what} length`);
    if (length < 1 || length > maxBytes) throw new Malformed(`${what} length ${length} is outside 1..${maxBytes}`);
    const bytes = this.take(length, what);
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw new Malformed(`${what} is not valid UTF-8`);
    }
  }

  time(what: string): number {
    const value = this.u64(what);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Malformed(`${what} ${value} is beyond any real time`);
    return Number(value);
  }

  /** Family byte then the address bytes. */
  ip(what: string): Uint8Array {
    const family = this.u8(`${what} family`);
    if (family !== 4 && family !== 6) throw new Malformed(`${what} family ${family} must be 4 or 6`);
    return this.take(family === 4 ? 4 : 16, what);
  }
}

function decodeBody(r: Reader): RecordFields & { signerCertDer: Uint8Array } {
  if (!bytesEqual(r.take(RECORD_MAGIC.length, 'magic'), RECORD_MAGIC)) throw new Malformed('not a membership record (no VPNR magic)');
  const format = r.u8('format');
  if (format !== RECORD_FORMAT) throw new Malformed(`membership record format ${format} is not supported (this version reads ${RECORD_FORMAT}); upgrade vibepn`);
  const kindCode = r.u8('kind');
  const kind = kindCode === KIND_CODES.member ? 'member' : kindCode === KIND_CODES.revoked ? 'revoked' : null;
  if (kind === null) throw new Malformed(`record kind ${kindCode} is unknown`);
  const version = r.u64('version');
  const network = r.text('network name', MAX_NAME_BYTES);
  const name = r.text('member name', MAX_NAME_BYTES);
  const fingerprint = Buffer.from(r.take(32, 'member fingerprint')).toString('hex');
  const address = formatIp(r.ip('member address'));
  const routeCount = r.u8('route count');
  if (routeCount > MAX_ROUTES) throw new Malformed(`route count ${routeCount} is more than ${MAX_ROUTES}`);
  const routes: string[] = [];
  for (let i = 0; i < routeCount; i++) {
    const family = r.u8('route family');
    if (family !== 4 && family !== 6) throw new Malformed(`route family ${family} must be 4 or 6`);
    const length = r.u8('route prefix length');
    if (length > maxPrefixLength(family)) throw new Malformed(`route prefix length ${length} is more than ${maxPrefixLength(family)}`);
    const bytes = r.take(family === 4 ? 4 : 16, 'route address');
    if (!bytesEqual(maskBytes(bytes, length), bytes)) throw new Malformed('route has host bits set');
    routes.push(formatPrefix({ family, bytes, length }));
  }
  if (new Set(routes).size !== routes.length) throw new Malformed('a route is listed twice');
  const endpointCount = r.u8('endpoint count');
  if (endpointCount > MAX_ENDPOINTS) throw new Malformed(`endpoint count ${endpointCount} is more than ${MAX_ENDPOINTS}`);
  const endpoints: string[] = [];
  for (let i = 0; i < endpointCount; i++) endpoints.push(r.text('endpoint hint', MAX_ENDPOINT_BYTES));
  const issuedAt = r.time('issued_at');
  const hasExpiry = r.u8('expiry flag');
  if (hasExpiry > 1) throw new Malformed(`expiry flag ${hasExpiry} must be 0 or 1`);
  const expiresAt = hasExpiry === 1 ? r.time('expires_at') : undefined;
  const certLength = r.u16('certificate length');
  if (certLength < 1 || certLength > MAX_CERT_BYTES) throw new Malformed(`certificate length ${certLength} is outside 1..${MAX_CERT_BYTES}`);
  const signerCertDer = r.take(certLength, 'signer certificate');
  const fields: RecordFields = { kind, version, network, name, fingerprint, address, routes, endpoints, issuedAt };
  if (expiresAt !== undefined) fields.expiresAt = expiresAt;
  // The same rules the encoder applies (names, endpoint canonical form, expiry after issue).
  const problem = fieldProblem(fields);
  if (problem) throw new Malformed(problem);
  return { ...fields, signerCertDer };
}

/**
 * Reads a record without checking its signature: for looking at one, never for believing it
 * (use verifyRecord). Never throws. Returns copies, so the input may be reused.
 */
export function decodeRecord(bytes: Uint8Array): DecodeResult {
  if (bytes.length > MAX_RECORD_BYTES) return { ok: false, error: `record is ${bytes.length} bytes, more than any valid one (${MAX_RECORD_BYTES})` };
  try {
    const r = new Reader(bytes);
    const fields = decodeBody(r);
    const bodyEnd = r.pos;
    const sigLength = r.u8('signature length');
    if (sigLength < 1 || sigLength > MAX_SIGNATURE_BYTES) throw new Malformed(`signature length ${sigLength} is outside 1..${MAX_SIGNATURE_BYTES}`);
    const signature = r.take(sigLength, 'signature');
    if (r.remaining !== 0) throw new Malformed(`${r.remaining} bytes follow the signature`);
    const signerCertDer = new Uint8Array(fields.signerCertDer);
    const record: MembershipRecord = {
      ...fields,
      signerCertDer,
      signerFingerprint: fingerprintOfDer(signerCertDer),
      signature: new Uint8Array(signature),
    };
    return { ok: true, record, body: new Uint8Array(bytes.subarray(0, bodyEnd)) };
  } catch (err) {
    // Messages may quote decoded text: kept to one line for logs.
    if (err instanceof Malformed) return { ok: false, error: singleLine(`malformed membership record: ${err.message}`) };
    return { ok: false, error: `malformed membership record (unexpected ${err instanceof Error ? err.name : 'error'})` };
  }
}

// ---- signing and verifying ----
