// What a relayed packet looks like inside a DATAGRAM frame on a session with the relay
// (PROTOCOL.md#v-relay): kind:u8 | fingerprint:32 | packet. Pure, and strict about the header;
// the packet is an end-to-end QUIC packet the relay cannot read and does not look into.
//   kind 0x01 "to":   sender -> relay, fingerprint = where it should go
//   kind 0x02 "from": relay -> target, fingerprint = who sent it

import { FINGERPRINT_BYTES, fingerprintBytes, fingerprintHex } from '../control/nat-messages.js';

export const RELAY_TO = 0x01;
export const RELAY_FROM = 0x02;
export const RELAY_HEADER_BYTES = 1 + FINGERPRINT_BYTES;

export interface RelayDatagram {
  kind: typeof RELAY_TO | typeof RELAY_FROM;
  fingerprint: string;
  /** A view into the datagram: valid only as long as it is. */
  packet: Uint8Array;
}

export function encodeRelayDatagram(kind: RelayDatagram['kind'], fingerprint: string | Uint8Array, packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(RELAY_HEADER_BYTES + packet.length);
  out[0] = kind;
  out.set(typeof fingerprint === 'string' ? fingerprintBytes(fingerprint) : fingerprint, 1);
  out.set(packet, RELAY_HEADER_BYTES);
  return out;
}

/** The datagram's parts, or null for one that is too short, empty or of an unknown kind. */
export function decodeRelayDatagram(data: Uint8Array): RelayDatagram | null {
  if (data.length <= RELAY_HEADER_BYTES) return null;
  const kind = data[0];
  if (kind !== RELAY_TO && kind !== RELAY_FROM) return null;
  return { kind, fingerprint: fingerprintHex(data.subarray(1, RELAY_HEADER_BYTES)), packet: data.subarray(RELAY_HEADER_BYTES) };
}
