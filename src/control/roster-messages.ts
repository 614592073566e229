// The bodies of the control messages that carry membership (issue 12, PROTOCOL.md#v-roster),
// pure and strict like messages.ts (a body decodes only if re-encoding gives the same bytes):
//
//   J (redeem):  u8 n | network:n | secret:16 | u8 family (4|6) | address:4|16
//                "admit me with this invite's secret; my overlay address there is this". The
//                joiner sends it before Hello, only to the admin whose invite it holds.
//   D (digest):  u8 n | network:n | k × (fingerprint:32 | version:u64)        k = 0..MAX_DIGEST_ENTRIES
//                "these are records I hold" (part of them: a large roster takes several D).
//   Q (fetch):   u8 n | network:n | k × fingerprint:32                        k = 1..MAX_FETCH_ENTRIES
//                "send me your records for these members".
//   R (record):  one signed membership record (src/roster/record.ts), nothing else.
//
// D, Q and R go only to peers whose C offered CAPABILITY_ROSTER; others never see them.

import { FINGERPRINT_BYTES, fingerprintBytes, fingerprintHex } from './nat-messages.js';

export const SECRET_BYTES = 16;
const DIGEST_ENTRY_BYTES = FINGERPRINT_BYTES + 8;
/** Leaves room for the type byte and the longest network name inside the 4096-byte payload. */
export const MAX_DIGEST_ENTRIES = Math.floor((4096 - 1 - 256) / DIGEST_ENTRY_BYTES);
export const MAX_FETCH_ENTRIES = Math.floor((4096 - 1 - 256) / FINGERPRINT_BYTES);
/** A record must fit one control message (type byte included). */
export const MAX_RECORD_MESSAGE_BYTES = 4096 - 1;

export interface RedeemBody {
  network: string;
  secret: Uint8Array;
  /** 4 or 16 bytes. */
  address: Uint8Array;
}

export interface DigestBody {
  network: string;
  entries: { fingerprint: string; version: bigint }[];
}

export interface FetchBody {
  network: string;
  fingerprints: string[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function networkBytes(network: string): Uint8Array {
  const bytes = new TextEncoder().encode(network);
  if (bytes.length < 1 || bytes.length > 255) throw new Error(`network name '${network.slice(0, 40)}' must be 1..255 bytes of UTF-8`);
  return bytes;
}

function withNetwork(network: string, rest: number): { out: Uint8Array; at: number } {
  const name = networkBytes(network);
  const out = new Uint8Array(1 + name.length + rest);
  out[0] = name.length;
  out.set(name, 1);
  return { out, at: 1 + name.length };
}

/** The network name at the start of a body and where the rest begins, or why not. */
function readNetwork(body: Uint8Array, what: string): { network: string; at: number } | string {
  if (body.length < 1) return `${what} body is empty`;
  const length = body[0]!;
  if (length === 0) return `${what} network name has length 0`;
  if (1 + length > body.length) return `${what} network name claims ${length} bytes, ${body.length - 1} remain`;
  try {
    return { network: utf8.decode(body.subarray(1, 1 + length)), at: 1 + length };
  } catch {
    return `${what} network name is not valid UTF-8`;
  }
}

export function encodeRedeemBody(body: RedeemBody): Uint8Array {
  if (body.secret.length !== SECRET_BYTES) throw new Error(`redeem secret must be ${SECRET_BYTES} bytes`);
  if (body.address.length !== 4 && body.address.length !== 16) throw new Error('redeem address must be 4 or 16 bytes');
  const { out, at } = withNetwork(body.network, SECRET_BYTES + 1 + body.address.length);
  out.set(body.secret, at);
  out[at + SECRET_BYTES] = body.address.length === 4 ? 4 : 6;
  out.set(body.address, at + SECRET_BYTES + 1);
  return out;
}

export function decodeRedeemBody(body: Uint8Array): RedeemBody | string {
  const head = readNetwork(body, 'Redeem');
  if (typeof head === 'string') return head;
  const { network, at } = head;
  if (body.length < at + SECRET_BYTES + 1) return `Redeem body ends inside its secret or address family`;
  const family = body[at + SECRET_BYTES]!;
  if (family !== 4 && family !== 6) return `Redeem address family ${family} must be 4 or 6`;
  const size = family === 4 ? 4 : 16;
  if (body.length !== at + SECRET_BYTES + 1 + size) return `Redeem body is ${body.length} bytes; a ${network.length}-byte network name and an IPv${family} address make ${at + SECRET_BYTES + 1 + size}`;
  return {
    network,
    secret: body.slice(at, at + SECRET_BYTES),
    address: body.slice(at + SECRET_BYTES + 1),
  };
}

export function encodeDigestBody(body: DigestBody): Uint8Array {
  if (body.entries.length > MAX_DIGEST_ENTRIES) throw new Error(`a digest holds at most ${MAX_DIGEST_ENTRIES} entries; split it (digestMessages)`);
  const { out, at } = withNetwork(body.network, body.entries.length * DIGEST_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  body.entries.forEach((entry, i) => {
    const pos = at + i * DIGEST_ENTRY_BYTES;
    out.set(fingerprintBytes(entry.fingerprint), pos);
    view.setBigUint64(pos + FINGERPRINT_BYTES, entry.version);
  });
  return out;
}

export function decodeDigestBody(body: Uint8Array): DigestBody | string {
  const head = readNetwork(body, 'Digest');
  if (typeof head === 'string') return head;
  const rest = body.length - head.at;
  if (rest % DIGEST_ENTRY_BYTES !== 0) return `Digest entries take ${rest} bytes, not a multiple of ${DIGEST_ENTRY_BYTES}`;
  if (rest / DIGEST_ENTRY_BYTES > MAX_DIGEST_ENTRIES) return `Digest holds ${rest / DIGEST_ENTRY_BYTES} entries, more than ${MAX_DIGEST_ENTRIES}`;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const entries: DigestBody['entries'] = [];
  for (let pos = head.at; pos < body.length; pos += DIGEST_ENTRY_BYTES) {
    entries.push({ fingerprint: fingerprintHex(body.subarray(pos, pos + FINGERPRINT_BYTES)), version: view.getBigUint64(pos + FINGERPRINT_BYTES) });
  }
  return { network: head.network, entries };
}

export function encodeFetchBody(body: FetchBody): Uint8Array {
  if (body.fingerprints.length < 1 || body.fingerprints.length > MAX_FETCH_ENTRIES) throw new Error(`a fetch asks for 1..${MAX_FETCH_ENTRIES} records; split it`);
  const { out, at } = withNetwork(body.network, body.fingerprints.length * FINGERPRINT_BYTES);
  body.fingerprints.forEach((fp, i) => out.set(fingerprintBytes(fp), at + i * FINGERPRINT_BYTES));
  return out;
}

export function decodeFetchBody(body: Uint8Array): FetchBody | string {
  const head = readNetwork(body, 'Fetch');
  if (typeof head === 'string') return head;
  const rest = body.length - head.at;
  if (rest === 0 || rest % FINGERPRINT_BYTES !== 0) return `Fetch fingerprints take ${rest} bytes, not a positive multiple of ${FINGERPRINT_BYTES}`;
  if (rest / FINGERPRINT_BYTES > MAX_FETCH_ENTRIES) return `Fetch asks for ${rest / FINGERPRINT_BYTES} records, more than ${MAX_FETCH_ENTRIES}`;
  const fingerprints: string[] = [];
  for (let pos = head.at; pos < body.length; pos += FINGERPRINT_BYTES) fingerprints.push(fingerprintHex(body.subarray(pos, pos + FINGERPRINT_BYTES)));
  return { network: head.network, fingerprints };
}

export function encodeRecordMessageBody(record: Uint8Array): Uint8Array {
  if (record.length < 1 || record.length > MAX_RECORD_MESSAGE_BYTES) throw new Error(`a membership record must be 1..${MAX_RECORD_MESSAGE_BYTES} bytes to fit one control message`);
  return record;
}

export function decodeRecordMessageBody(body: Uint8Array): { record: Uint8Array } | string {
  if (body.length < 1) return 'Record body is empty';
  // A copy: the payload is a view into a stream buffer that is about to be reused.
  return { record: body.slice() };
}

/** Splits a digest into messages of at most MAX_DIGEST_ENTRIES entries (one, empty, for an empty roster). */
export function digestBodies(network: string, entries: DigestBody['entries']): DigestBody[] {
  if (entries.length === 0) return [{ network, entries: [] }];
  const out: DigestBody[] = [];
  for (let i = 0; i < entries.length; i += MAX_DIGEST_ENTRIES) out.push({ network, entries: entries.slice(i, i + MAX_DIGEST_ENTRIES) });
  return out;
}

/** Splits a list of wanted fingerprints into fetch messages. */
export function fetchBodies(network: string, fingerprints: readonly string[]): FetchBody[] {
  const out: FetchBody[] = [];
  for (let i = 0; i < fingerprints.length; i += MAX_FETCH_ENTRIES) out.push({ network, fingerprints: fingerprints.slice(i, i + MAX_FETCH_ENTRIES) });
  return out;
}
