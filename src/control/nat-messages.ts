// The bodies of the two control messages that let peers behind NATs find each other through a
// common peer (PROTOCOL.md#v-introductions), pure and strict like messages.ts:
//   N (introduce): fingerprint:32            "put me in touch with this peer"
//   E (endpoint):  fingerprint:32 | u8 n | host:n (IP literal, ASCII) | port:u16
//                  n = 0 (and no port): "I have no session with that peer"
// Sent only to peers whose C message offered CAPABILITY_NAT_TRAVERSAL.

import { isIP } from 'node:net';

export const FINGERPRINT_BYTES = 32;
const HEX = /^[0-9a-f]{64}$/;

export interface ObservedEndpoint {
  host: string;
  port: number;
}

/** 32 raw bytes from a lowercase hex fingerprint; throws for anything else (a caller bug). */
export function fingerprintBytes(fingerprint: string): Uint8Array {
  if (!HEX.test(fingerprint)) throw new Error(`'${fingerprint.slice(0, 70)}' is not a SHA-256 fingerprint (64 lowercase hex digits)`);
  return Uint8Array.from(Buffer.from(fingerprint, 'hex'));
}

export function fingerprintHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function encodeIntroduceBody(fingerprint: string): Uint8Array {
  return fingerprintBytes(fingerprint);
}

export function decodeIntroduceBody(body: Uint8Array): { fingerprint: string } | string {
  if (body.length !== FINGERPRINT_BYTES) return `Introduce body must be a ${FINGERPRINT_BYTES}-byte fingerprint, got ${body.length} bytes`;
  return { fingerprint: fingerprintHex(body) };
}

export function encodeEndpointBody(fingerprint: string, address: ObservedEndpoint | null): Uint8Array {
  const fp = fingerprintBytes(fingerprint);
  if (address === null) return Uint8Array.of(...fp, 0);
  // A zone id (fe80::1%eth0) names an interface of the machine that saw the address, not ours;
  // without one an IP literal is at most 45 characters, so its length always fits the byte.
  if (isIP(address.host) === 0 || address.host.includes('%')) throw new Error(`endpoint host '${address.host.slice(0, 60)}' is not an IP address without a zone`);
  if (!Number.isInteger(address.port) || address.port < 1 || address.port > 0xffff) throw new Error(`endpoint port ${address.port} is outside 1..65535`);
  const host = Buffer.from(address.host, 'latin1');
  const out = new Uint8Array(FINGERPRINT_BYTES + 1 + host.length + 2);
  out.set(fp, 0);
  out[FINGERPRINT_BYTES] = host.length;
  out.set(host, FINGERPRINT_BYTES + 1);
  out[out.length - 2] = address.port >> 8;
  out[out.length - 1] = address.port & 0xff;
  return out;
}

export function decodeEndpointBody(body: Uint8Array): { fingerprint: string; address: ObservedEndpoint | null } | string {
  if (body.length < FINGERPRINT_BYTES + 1) return `Endpoint body must start with a ${FINGERPRINT_BYTES}-byte fingerprint and a length byte, got ${body.length} bytes`;
  const fingerprint = fingerprintHex(body.subarray(0, FINGERPRINT_BYTES));
  const length = body[FINGERPRINT_BYTES]!;
  if (length === 0) {
    if (body.length !== FINGERPRINT_BYTES + 1) return `Endpoint without an address has ${body.length - FINGERPRINT_BYTES - 1} trailing bytes`;
    return { fingerprint, address: null };
  }
  if (body.length !== FINGERPRINT_BYTES + 1 + length + 2) return `Endpoint host claims ${length} bytes; the body has ${body.length - FINGERPRINT_BYTES - 1} after the fingerprint (host + 2-byte port expected)`;
  const hostBytes = body.subarray(FINGERPRINT_BYTES + 1, FINGERPRINT_BYTES + 1 + length);
  for (const byte of hostBytes) if (byte < 0x21 || byte > 0x7e) return 'Endpoint host is not printable ASCII';
  const host = Buffer.from(hostBytes).toString('latin1');
  // isIP takes no brackets, but does take a zone id, which means nothing to the receiver.
  if (isIP(host) === 0 || host.includes('%')) return `Endpoint host '${host}' is not an IP address without a zone`;
  const port = (body[body.length - 2]! << 8) | body[body.length - 1]!;
  if (port === 0) return 'Endpoint port is 0';
  return { fingerprint, address: { host, port } };
}
