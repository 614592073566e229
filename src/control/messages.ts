// Control-stream messages (PROTOCOL.md section 4): pure encode/decode of one message.
// Wire form: u16 length (BE) | payload, payload = u8 type | body, length 1..4096.
//
// The decoder is strict: a payload decodes only if re-encoding the result gives the same bytes
// back. Anything looser (trailing bytes, a zero-length name, invalid UTF-8) is a protocol
// violation, because a peer that sends it is broken or hostile and the session closes anyway.
// Prefix text is NOT parsed as CIDR here: route policy judges each prefix on its own and still
// applies the rest of the announcement, which it could not do if one bad prefix failed the
// whole message at this layer.

import { encodeEndpointBody, encodeIntroduceBody, type ObservedEndpoint } from './nat-messages.js';
import {
  encodeDigestBody,
  encodeFetchBody,
  encodeRecordMessageBody,
  encodeRedeemBody,
  type DigestBody,
  type FetchBody,
  type RedeemBody,
} from './roster-messages.js';

export const CONTROL_LENGTH_BYTES = 2;
export const MAX_CONTROL_PAYLOAD = 4096;
/** Largest control message on the wire, length prefix included. */
export const MAX_CONTROL_MESSAGE = CONTROL_LENGTH_BYTES + MAX_CONTROL_PAYLOAD;
export const MAX_NAME_BYTES = 255;
export const MAX_METRIC = 0xffff;
export const DEFAULT_METRIC = 1;

export const ControlType = {
  Hello: 0x48, // 'H'
  Announce: 0x41, // 'A'
  Withdraw: 0x57, // 'W'
  Keepalive: 0x4b, // 'K'
  Goodbye: 0x47, // 'G'
  /** vibepn extension (PROTOCOL.md#v-capabilities): what this node accepts beyond v0.1. */
  Capabilities: 0x43, // 'C'
  /** vibepn extension (PROTOCOL.md#v-introductions): "put me in touch with this peer". */
  Introduce: 0x4e, // 'N'
  /** vibepn extension: where a peer's packets come from, as this node sees them. */
  Endpoint: 0x45, // 'E'
  /** vibepn extension (PROTOCOL.md#v-roster): a joiner presents its invite's secret, before Hello. */
  Redeem: 0x4a, // 'J'
  /** vibepn extension: the membership records this node holds, by (fingerprint, version). */
  Digest: 0x44, // 'D'
  /** vibepn extension: "send me these records". */
  Fetch: 0x51, // 'Q'
  /** vibepn extension: one signed membership record. */
  Record: 0x52, // 'R'
} as const;

/** Capability: raw streams to this node may carry TCP super-segment frames (PROTOCOL.md#v-super-segments). */
export const CAPABILITY_TCP_SUPER_SEGMENTS = 'tcp-gso';
/** Capability: this node takes N/E messages and relayed packets (PROTOCOL.md#v-introductions). */
export const CAPABILITY_NAT_TRAVERSAL = 'nat';
/** Capability: this node forwards packets between two of its peers (`relay = true`, PROTOCOL.md#v-relay). */
export const CAPABILITY_RELAY = 'relay';
/** Capability: this node keeps signed rosters and takes D/Q/R messages (PROTOCOL.md#v-roster). */
export const CAPABILITY_ROSTER = 'roster';

export interface RouteAnnouncement {
  prefix: string;
  metric: number;
}

export type ControlMessage =
  | { type: 'hello'; nonce: bigint }
  | { type: 'announce'; network: string; routes: RouteAnnouncement[] }
  | { type: 'withdraw'; network: string; prefix: string }
  | { type: 'keepalive'; time: bigint }
  | { type: 'goodbye' }
  | { type: 'capabilities'; tokens: string[] }
  | { type: 'introduce'; fingerprint: string }
  | { type: 'endpoint'; fingerprint: string; address: ObservedEndpoint | null }
  | ({ type: 'redeem' } & RedeemBody)
  | ({ type: 'digest' } & DigestBody)
  | ({ type: 'fetch' } & FetchBody)
  | { type: 'record'; record: Uint8Array }
  | { type: 'unknown'; code: number; body: Uint8Array };

export type ControlDecodeResult = { ok: true; msg: ControlMessage } | { ok: false; error: string };

const KNOWN_CODES: ReadonlySet<number> = new Set(Object.values(ControlType));
const U64_LIMIT = 1n << 64n;
const LONE_SURROGATE = /\p{Cs}/u;
/** A capability token: 1..255 bytes of printable ASCII, so it can be logged and compared as sent. */
const CAPABILITY_TOKEN = /^[\x21-\x7e]{1,255}$/;

// Stateless when used without { stream: true }, so sharing them is not shared mutable state.
// ignoreBOM keeps a leading U+FEFF in the string, so re-encoding gives the same bytes back.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Encodes a network name or prefix as 1..255 UTF-8 bytes. Throws when it cannot be sent: the
 * caller (config, route table) should have refused such a value long before it reached the wire.
 */
export function encodeWireName(text: string, what: string): Uint8Array {
  if (LONE_SURROGATE.test(text)) throw new Error(`${what} '${text}' contains an unpaired UTF-16 surrogate; it has no UTF-8 form`);
  const bytes = utf8Encoder.encode(text);
  if (bytes.length === 0) throw new Error(`${what} is empty; the protocol needs 1..${MAX_NAME_BYTES} bytes`);
  if (bytes.length > MAX_NAME_BYTES) {
    throw new Error(`${what} '${text.slice(0, 40)}…' is ${bytes.length} bytes of UTF-8; the protocol allows at most ${MAX_NAME_BYTES}`);
  }
  return bytes;
}

/** Decodes 1..255 bytes of strict UTF-8, or returns null if they are not valid UTF-8. */
export function decodeWireName(bytes: Uint8Array): string | null {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return null;
  }
}

function checkU64(value: bigint, what: string): void {
  if (value < 0n || value >= U64_LIMIT) throw new Error(`${what} ${value} does not fit in an unsigned 64-bit integer`);
}

function checkMetric(metric: number, prefix: string): void {
  if (!Number.isInteger(metric) || metric < 0 || metric > MAX_METRIC) {
    throw new Error(`metric ${metric} for route ${prefix} must be an integer 0..${MAX_METRIC}`);
  }
}

function encodeU64Message(code: number, value: bigint): Uint8Array {
  const out = new Uint8Array(CONTROL_LENGTH_BYTES + 9);
  const view = new DataView(out.buffer);
  view.setUint16(0, 9);
  out[2] = code;
  view.setBigUint64(3, value);
  return out;
}

function tupleLength(prefixBytes: Uint8Array): number {
  return 1 + prefixBytes.length + 2;
}

/** A message of `payloadLength` bytes whose body starts with a network name; the rest is the caller's. */
function namedMessage(code: number, nameBytes: Uint8Array, payloadLength: number): Uint8Array {
  const out = new Uint8Array(CONTROL_LENGTH_BYTES + payloadLength);
  out[0] = payloadLength >> 8;
  out[1] = payloadLength & 0xff;
  out[2] = code;
  out[3] = nameBytes.length;
  out.set(nameBytes, 4);
  return out;
}

function encodeAnnounceFromBytes(nameBytes: Uint8Array, prefixes: Uint8Array[], metrics: number[]): Uint8Array {
  let payloadLength = 2 + nameBytes.length;
  for (const p of prefixes) payloadLength += tupleLength(p);
  if (payloadLength > MAX_CONTROL_PAYLOAD) {
    throw new Error(
      `announce payload would be ${payloadLength} bytes (limit ${MAX_CONTROL_PAYLOAD}); use encodeAnnouncements() to split the route list`,
    );
  }
  const out = namedMessage(ControlType.Announce, nameBytes, payloadLength);
  let pos = 4 + nameBytes.length;
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    const metric = metrics[i]!;
    out[pos++] = p.length;
    out.set(p, pos);
    pos += p.length;
    out[pos++] = metric >> 8;
    out[pos++] = metric & 0xff;
  }
  return out;
}

/** The payload (type byte + body) of a message, without the length prefix. */
export function encodeControlPayload(msg: ControlMessage): Uint8Array {
  return encodeControlMessage(msg).subarray(CONTROL_LENGTH_BYTES);
}

/** Encodes one message with its u16 length prefix, ready to write to the control stream. */
export function encodeControlMessage(msg: ControlMessage): Uint8Array {
  switch (msg.type) {
    case 'hello':
      checkU64(msg.nonce, 'hello nonce');
      return encodeU64Message(ControlType.Hello, msg.nonce);
    case 'keepalive':
      checkU64(msg.time, 'keepalive time');
      return encodeU64Message(ControlType.Keepalive, msg.time);
    case 'goodbye':
      return Uint8Array.of(0, 1, ControlType.Goodbye);
    case 'announce': {
      const nameBytes = encodeWireName(msg.network, 'network name');
      if (msg.routes.length === 0) throw new Error(`announce for network '${msg.network}' has no routes; the protocol needs at least one`);
      const prefixes = msg.routes.map((r) => encodeWireName(r.prefix, `route prefix in network '${msg.network}'`));
      msg.routes.forEach((r) => checkMetric(r.metric, r.prefix));
      return encodeAnnounceFromBytes(nameBytes, prefixes, msg.routes.map((r) => r.metric));
    }
    case 'withdraw': {
      const nameBytes = encodeWireName(msg.network, 'network name');
      const prefix = encodeWireName(msg.prefix, `withdrawn prefix in network '${msg.network}'`);
      // Cannot exceed the limit: 1 + 1 + 255 + 1 + 255 < 4096.
      const payloadLength = 3 + nameBytes.length + prefix.length;
      const out = namedMessage(ControlType.Withdraw, nameBytes, payloadLength);
      out[4 + nameBytes.length] = prefix.length;
      out.set(prefix, 5 + nameBytes.length);
      return out;
    }
    case 'capabilities': {
      let payloadLength = 1;
      for (const token of msg.tokens) {
        if (!CAPABILITY_TOKEN.test(token)) throw new Error(`capability '${token}' must be 1..255 printable ASCII characters`);
        payloadLength += 1 + token.length;
      }
      if (payloadLength > MAX_CONTROL_PAYLOAD) throw new Error(`capabilities message would be ${payloadLength} bytes (limit ${MAX_CONTROL_PAYLOAD})`);
      const out = new Uint8Array(CONTROL_LENGTH_BYTES + payloadLength);
      out[0] = payloadLength >> 8;
      out[1] = payloadLength & 0xff;
      out[2] = ControlType.Capabilities;
      let pos = 3;
      for (const token of msg.tokens) {
        out[pos++] = token.length;
        for (let i = 0; i < token.length; i++) out[pos++] = token.charCodeAt(i);
      }
      return out;
    }
    case 'introduce':
      return withHeader(ControlType.Introduce, encodeIntroduceBody(msg.fingerprint));
    case 'endpoint':
      return withHeader(ControlType.Endpoint, encodeEndpointBody(msg.fingerprint, msg.address));
    case 'redeem':
      return withHeader(ControlType.Redeem, encodeRedeemBody(msg));
    case 'digest':
      return withHeader(ControlType.Digest, encodeDigestBody(msg));
    case 'fetch':
      return withHeader(ControlType.Fetch, encodeFetchBody(msg));
    case 'record':
      return withHeader(ControlType.Record, encodeRecordMessageBody(msg.record));
    case 'unknown': {
      if (!Number.isInteger(msg.code) || msg.code < 0 || msg.code > 0xff) throw new Error(`unknown message code ${msg.code} is not a byte`);
      if (KNOWN_CODES.has(msg.code)) {
        throw new Error(`message code 0x${msg.code.toString(16)} is a known type; build the typed message instead of 'unknown'`);
      }
      const payloadLength = 1 + msg.body.length;
      if (payloadLength > MAX_CONTROL_PAYLOAD) {
        throw new Error(`message with code 0x${msg.code.toString(16)} would be ${payloadLength} bytes (limit ${MAX_CONTROL_PAYLOAD})`);
      }
      const out = new Uint8Array(CONTROL_LENGTH_BYTES + payloadLength);
      out[0] = payloadLength >> 8;
      out[1] = payloadLength & 0xff;
      out[2] = msg.code;
      out.set(msg.body, 3);
      return out;
    }
  }
}

/** A message of a type byte and a body (always well within the payload limit). */
function withHeader(code: number, body: Uint8Array): Uint8Array {
  const payloadLength = 1 + body.length;
  const out = new Uint8Array(CONTROL_LENGTH_BYTES + payloadLength);
  out[0] = payloadLength >> 8;
  out[1] = payloadLength & 0xff;
  out[2] = code;
  out.set(body, 3);
  return out;
}

/**
 * Encodes a network's routes as as many Route-Announce messages as needed to keep each one
 * within the payload limit, in the given order. An empty route list gives no messages.
 */
export function encodeAnnouncements(network: string, routes: readonly RouteAnnouncement[]): Uint8Array[] {
  const nameBytes = encodeWireName(network, 'network name');
  const headerLength = 2 + nameBytes.length;
  const messages: Uint8Array[] = [];
  let prefixes: Uint8Array[] = [];
  let metrics: number[] = [];
  let payloadLength = headerLength;
  for (const route of routes) {
    const prefix = encodeWireName(route.prefix, `route prefix in network '${network}'`);
    checkMetric(route.metric, route.prefix);
    // Always fits in an empty message: 2 + 255 + (1 + 255 + 2) < 4096.
    if (payloadLength + tupleLength(prefix) > MAX_CONTROL_PAYLOAD) {
      messages.push(encodeAnnounceFromBytes(nameBytes, prefixes, metrics));
      prefixes = [];
      metrics = [];
      payloadLength = headerLength;
    }
    prefixes.push(prefix);
    metrics.push(route.metric);
    payloadLength += tupleLength(prefix);
  }
  if (prefixes.length > 0) messages.push(encodeAnnounceFromBytes(nameBytes, prefixes, metrics));
  return messages;
}

export { decodeControlPayload } from './decode-payload.js';

/** For log lines about skipped messages: `0x5a ('Z')`, the letter only when printable. */
export function controlTypeLabel(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  return code >= 0x21 && code <= 0x7e ? `${hex} ('${String.fromCharCode(code)}')` : hex;
}
