// Decoding one control-message payload (messages.ts holds the types and encoders). Strict: a
// payload decodes only if re-encoding the result gives the same bytes back; unknown types decode
// to { type: 'unknown' } so a session can log and skip them.

import { printable } from '../log/logger.js';
import { MAX_CONTROL_PAYLOAD, MAX_NAME_BYTES, ControlType, decodeWireName, type ControlDecodeResult, type RouteAnnouncement } from './messages.js';
import { decodeEndpointBody, decodeIntroduceBody } from './nat-messages.js';
import { decodeDigestBody, decodeFetchBody, decodeRecordMessageBody, decodeRedeemBody } from './roster-messages.js';

function fail(error: string): ControlDecodeResult {
  return { ok: false, error };
}

/** Reads u8 length + 1..255 bytes of UTF-8 at `pos`. */
function readName(
  payload: Uint8Array,
  pos: number,
  what: string,
): { ok: true; text: string; next: number } | { ok: false; error: string } {
  if (pos >= payload.length) return { ok: false, error: `${what} length byte is missing` };
  const length = payload[pos]!;
  if (length === 0) return { ok: false, error: `${what} has length 0; the protocol needs 1..${MAX_NAME_BYTES} bytes` };
  const end = pos + 1 + length;
  if (end > payload.length) {
    return { ok: false, error: `${what} claims ${length} bytes but only ${payload.length - pos - 1} remain in the message` };
  }
  const text = decodeWireName(payload.subarray(pos + 1, end));
  if (text === null) return { ok: false, error: `${what} is not valid UTF-8` };
  return { ok: true, text, next: end };
}

function readU64Body(payload: Uint8Array, what: string): bigint | string {
  if (payload.length !== 9) return `${what} body must be exactly 8 bytes, got ${payload.length - 1}`;
  return new DataView(payload.buffer, payload.byteOffset + 1, 8).getBigUint64(0);
}

/**
 * Decodes one payload (type byte + body, length prefix already removed). Unknown type codes
 * decode to `{type:'unknown'}` with a copy of the body, so callers can log and skip them.
 * Never throws.
 */
export function decodeControlPayload(payload: Uint8Array): ControlDecodeResult {
  if (payload.length === 0) return fail('control message payload is empty (no type byte)');
  if (payload.length > MAX_CONTROL_PAYLOAD) return fail(`control message payload is ${payload.length} bytes (limit ${MAX_CONTROL_PAYLOAD})`);
  const code = payload[0]!;
  switch (code) {
    case ControlType.Hello: {
      const nonce = readU64Body(payload, 'Hello');
      return typeof nonce === 'string' ? fail(nonce) : { ok: true, msg: { type: 'hello', nonce } };
    }
    case ControlType.Keepalive: {
      const time = readU64Body(payload, 'Keepalive');
      return typeof time === 'string' ? fail(time) : { ok: true, msg: { type: 'keepalive', time } };
    }
    case ControlType.Goodbye:
      if (payload.length !== 1) return fail(`Goodbye body must be empty, got ${payload.length - 1} bytes`);
      return { ok: true, msg: { type: 'goodbye' } };
    case ControlType.Announce: {
      const name = readName(payload, 1, 'Announce network name');
      if (!name.ok) return fail(name.error);
      const routes: RouteAnnouncement[] = [];
      let pos = name.next;
      while (pos < payload.length) {
        const what = `Announce route ${routes.length + 1} prefix`;
        const prefix = readName(payload, pos, what);
        if (!prefix.ok) return fail(prefix.error);
        pos = prefix.next;
        if (pos + 2 > payload.length) return fail(`Announce route ${routes.length + 1} is missing its 2-byte metric`);
        routes.push({ prefix: prefix.text, metric: (payload[pos]! << 8) | payload[pos + 1]! });
        pos += 2;
      }
      if (routes.length === 0) return fail(`Announce for network ${printable(name.text)} carries no routes; at least one is required`);
      return { ok: true, msg: { type: 'announce', network: name.text, routes } };
    }
    case ControlType.Withdraw: {
      const name = readName(payload, 1, 'Withdraw network name');
      if (!name.ok) return fail(name.error);
      const prefix = readName(payload, name.next, 'Withdraw prefix');
      if (!prefix.ok) return fail(prefix.error);
      if (prefix.next !== payload.length) return fail(`Withdraw has ${payload.length - prefix.next} trailing bytes after the prefix`);
      return { ok: true, msg: { type: 'withdraw', network: name.text, prefix: prefix.text } };
    }
    case ControlType.Capabilities: {
      const tokens: string[] = [];
      let pos = 1;
      while (pos < payload.length) {
        const length = payload[pos]!;
        const end = pos + 1 + length;
        if (length === 0 || end > payload.length) return fail(`Capabilities token ${tokens.length + 1} has length ${length}, ${payload.length - pos - 1} bytes remain`);
        let token = '';
        for (let i = pos + 1; i < end; i++) {
          const byte = payload[i]!;
          if (byte < 0x21 || byte > 0x7e) return fail(`Capabilities token ${tokens.length + 1} has a byte 0x${byte.toString(16)} that is not printable ASCII`);
          token += String.fromCharCode(byte);
        }
        tokens.push(token);
        pos = end;
      }
      return { ok: true, msg: { type: 'capabilities', tokens } };
    }
    case ControlType.Introduce: {
      const body = decodeIntroduceBody(payload.subarray(1));
      return typeof body === 'string' ? fail(body) : { ok: true, msg: { type: 'introduce', ...body } };
    }
    case ControlType.Endpoint: {
      const body = decodeEndpointBody(payload.subarray(1));
      return typeof body === 'string' ? fail(body) : { ok: true, msg: { type: 'endpoint', ...body } };
    }
    case ControlType.Redeem: {
      const body = decodeRedeemBody(payload.subarray(1));
      return typeof body === 'string' ? fail(body) : { ok: true, msg: { type: 'redeem', ...body } };
    }
    case ControlType.Digest: {
      const body = decodeDigestBody(payload.subarray(1));
      return typeof body === 'string' ? fail(body) : { ok: true, msg: { type: 'digest', ...body } };
    }
    case ControlType.Fetch: {
      const body = decodeFetchBody(payload.subarray(1));
      return typeof body === 'string' ? fail(body) : { ok: true, msg: { type: 'fetch', ...body } };
    }
    case ControlType.Record: {
      const body = decodeRecordMessageBody(payload.subarray(1));
      return typeof body === 'string' ? fail(body) : { ok: true, msg: { type: 'record', ...body } };
    }
    default:
      // A copy: the payload is usually a view into a stream buffer that is about to be reused.
      return { ok: true, msg: { type: 'unknown', code, body: payload.slice(1) } };
  }
}

