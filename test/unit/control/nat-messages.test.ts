import { describe, expect, it } from 'vitest';
import { ControlType, decodeControlPayload, encodeControlMessage, type ControlMessage } from '../../../src/control/messages.js';
import {
  FINGERPRINT_BYTES,
  decodeEndpointBody,
  decodeIntroduceBody,
  encodeEndpointBody,
  encodeIntroduceBody,
  fingerprintBytes,
  fingerprintHex,
  type ObservedEndpoint,
} from '../../../src/control/nat-messages.js';
import { ascii } from '../../helpers/bytes.js';

// Bytes 0x00..0x1f: every position distinct, so a shifted, reversed or truncated copy shows.
const FP_BYTES = Array.from({ length: 32 }, (_, i) => i);
const FP = Buffer.from(FP_BYTES).toString('hex');
const FP_B = 'b'.repeat(64);

/** A payload (type byte + body) as the control stream delivers it: decodeControlPayload takes the body as a subarray. */
function payload(code: number, ...body: number[]): Uint8Array {
  return Uint8Array.from([code, ...body]);
}

function decodeError(bytes: Uint8Array): string {
  const result = decodeControlPayload(bytes);
  if (result.ok) throw new Error(`expected a refusal, decoded ${JSON.stringify(result.msg)}`);
  return result.error;
}

describe('fingerprint bytes', () => {
  it('converts lowercase hex to 32 raw bytes and back, also from a view at an offset', () => {
    expect(Array.from(fingerprintBytes(FP))).toEqual(FP_BYTES);
    const framed = Uint8Array.from([0xee, ...FP_BYTES, 0xee]);
    // The decoders hand it subarrays of a larger buffer; reading the whole buffer would be wrong.
    expect(fingerprintHex(framed.subarray(1, 33))).toBe(FP);
  });
});

describe('introduce (N) wire bytes', () => {
  it('is the type byte 0x4e followed by the 32-byte fingerprint', () => {
    const msg: ControlMessage = { type: 'introduce', fingerprint: FP };
    const wire = encodeControlMessage(msg);
    expect(ControlType.Introduce).toBe(0x4e);
    expect(Array.from(wire)).toEqual([0x00, 0x21, 0x4e, ...FP_BYTES]);
    expect(decodeControlPayload(wire.subarray(2))).toEqual({ ok: true, msg });
  });

  it('round trips the body on its own', () => {
    expect(Array.from(encodeIntroduceBody(FP))).toEqual(FP_BYTES);
    expect(decodeIntroduceBody(Uint8Array.from(FP_BYTES))).toEqual({ fingerprint: FP });
  });
});

describe('endpoint (E) wire bytes', () => {
  it('encodes an IPv4 address as fingerprint, length 9, ASCII text and a big-endian port', () => {
    const msg: ControlMessage = { type: 'endpoint', fingerprint: FP, address: { host: '192.0.2.7', port: 0xa2a9 } };
    const wire = encodeControlMessage(msg);
    expect(ControlType.Endpoint).toBe(0x45);
    // Payload: type 1 + fingerprint 32 + length 1 + host 9 + port 2 = 45.
    expect(Array.from(wire)).toEqual([0x00, 0x2d, 0x45, ...FP_BYTES, 9, ...ascii('192.0.2.7'), 0xa2, 0xa9]);
    expect(decodeControlPayload(wire.subarray(2))).toEqual({ ok: true, msg });
  });

  it('encodes "no session with that peer" as length 0 and no port', () => {
    const msg: ControlMessage = { type: 'endpoint', fingerprint: FP, address: null };
    const wire = encodeControlMessage(msg);
    expect(Array.from(wire)).toEqual([0x00, 0x22, 0x45, ...FP_BYTES, 0]);
    expect(decodeControlPayload(wire.subarray(2))).toEqual({ ok: true, msg });
  });

  const addresses: Array<[string, ObservedEndpoint]> = [
    ['IPv4 text', { host: '203.0.113.9', port: 51820 }],
    ['IPv6 text', { host: '2001:db8::1', port: 443 }],
    ['IPv6 written out in full', { host: '2001:db8:0:0:0:0:0:1', port: 443 }],
    ['IPv4-mapped IPv6 (what a dual-stack socket reports)', { host: '::ffff:198.51.100.4', port: 65535 }],
    ['port 1', { host: '10.0.0.1', port: 1 }],
    ['the longest IPv6 text', { host: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', port: 4433 }],
  ];
  for (const [label, address] of addresses) {
    it(`round trips ${label} exactly as given`, () => {
      const body = encodeEndpointBody(FP, address);
      expect(body.length).toBe(FINGERPRINT_BYTES + 1 + address.host.length + 2);
      expect(body[FINGERPRINT_BYTES]).toBe(address.host.length);
      expect(decodeEndpointBody(body)).toEqual({ fingerprint: FP, address });
      const msg: ControlMessage = { type: 'endpoint', fingerprint: FP_B, address };
      expect(decodeControlPayload(encodeControlMessage(msg).subarray(2))).toEqual({ ok: true, msg });
    });
  }
});

describe('decodeControlPayload refuses malformed N and E bodies', () => {
  const port = [0x11, 0x5c];
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['introduce with no body', payload(0x4e), /Introduce body must be a 32-byte fingerprint, got 0 bytes/],
    ['introduce one byte short', payload(0x4e, ...FP_BYTES.slice(1)), /got 31 bytes/],
    ['introduce with a trailing byte', payload(0x4e, ...FP_BYTES, 0), /got 33 bytes/],
    ['endpoint with no body', payload(0x45), /must start with a 32-byte fingerprint and a length byte, got 0 bytes/],
    ['endpoint without its length byte', payload(0x45, ...FP_BYTES), /got 32 bytes/],
    ['endpoint without an address but with a port', payload(0x45, ...FP_BYTES, 0, ...port), /without an address has 2 trailing bytes/],
    ['endpoint without an address but with one trailing byte', payload(0x45, ...FP_BYTES, 0, 7), /without an address has 1 trailing bytes/],
    ['endpoint host missing its port', payload(0x45, ...FP_BYTES, 7, ...ascii('1.2.3.4')), /host claims 7 bytes; the body has 7 after/],
    ['endpoint host with half a port', payload(0x45, ...FP_BYTES, 7, ...ascii('1.2.3.4'), 0x11), /host claims 7 bytes; the body has 8 after/],
    ['endpoint with a trailing byte after the port', payload(0x45, ...FP_BYTES, 7, ...ascii('1.2.3.4'), ...port, 0), /host claims 7 bytes; the body has 10 after/],
    ['endpoint host longer than the body', payload(0x45, ...FP_BYTES, 200, ...ascii('1.2.3.4'), ...port), /host claims 200 bytes/],
    ['endpoint host that is a name', payload(0x45, ...FP_BYTES, 9, ...ascii('localhost'), ...port), /host 'localhost' is not an IP address/],
    ['endpoint host in brackets', payload(0x45, ...FP_BYTES, 5, ...ascii('[::1]'), ...port), /host '\[::1\]' is not an IP address/],
    ['endpoint IPv4 with a leading zero', payload(0x45, ...FP_BYTES, 8, ...ascii('01.2.3.4'), ...port), /host '01.2.3.4' is not an IP address/],
    ['endpoint host with host:port text', payload(0x45, ...FP_BYTES, 9, ...ascii('1.2.3.4:5'), ...port), /not an IP address/],
    ['endpoint host with a space', payload(0x45, ...FP_BYTES, 8, ...ascii('1.2.3.4 '), ...port), /host is not printable ASCII/],
    ['endpoint host with a NUL', payload(0x45, ...FP_BYTES, 8, ...ascii('1.2.3.4'), 0, ...port), /host is not printable ASCII/],
    ['endpoint host with DEL', payload(0x45, ...FP_BYTES, 8, ...ascii('1.2.3.4'), 0x7f, ...port), /host is not printable ASCII/],
    ['endpoint host with a non-ASCII byte', payload(0x45, ...FP_BYTES, 8, ...ascii('1.2.3.4'), 0xe9, ...port), /host is not printable ASCII/],
    ['endpoint host with a newline', payload(0x45, ...FP_BYTES, 8, ...ascii('1.2.3.4'), 0x0a, ...port), /host is not printable ASCII/],
    ['endpoint with port 0', payload(0x45, ...FP_BYTES, 7, ...ascii('1.2.3.4'), 0, 0), /Endpoint port is 0/],
  ];
  for (const [label, bytes, pattern] of cases) {
    it(label, () => expect(decodeError(bytes)).toMatch(pattern));
  }

  it('never echoes an unprintable host byte into the error (it goes into a log line)', () => {
    const error = decodeError(payload(0x45, ...FP_BYTES, 8, ...ascii('1.2.3.4'), 0x0a, ...port));
    expect([...error].filter((c) => c < ' ' || c > '~')).toEqual([]);
  });

  // BUG (src/control/nat-messages.ts): the decoder's comment says "isIP accepts no zone ids", but
  // node's isIP('fe80::1%eth0') is 6, so a zone id decodes. It names an interface on the machine
  // that observed the address, meaningless (or wrong) to the node that would dial it.
  it('refuses an IPv6 zone id, which names an interface of the observing machine', () => {
    const host = 'fe80::1%eth0';
    expect(decodeError(payload(0x45, ...FP_BYTES, host.length, ...ascii(host), ...port))).toMatch(/not an IP address/);
  });
});

describe('encoding refuses what a caller should never pass', () => {
  const badFingerprints: Array<[string, string]> = [
    ['empty', ''],
    ['63 digits', 'a'.repeat(63)],
    ['65 digits', 'a'.repeat(65)],
    ['uppercase', 'A'.repeat(64)],
    ['a non-hex digit', 'g' + 'a'.repeat(63)],
    ['a 0x prefix', '0x' + 'a'.repeat(62)],
    ['colon-separated', FP.match(/../g)!.join(':')],
  ];
  for (const [label, fingerprint] of badFingerprints) {
    it(`a fingerprint that is ${label}`, () => {
      const pattern = /is not a SHA-256 fingerprint \(64 lowercase hex digits\)/;
      expect(() => encodeIntroduceBody(fingerprint)).toThrow(pattern);
      expect(() => encodeEndpointBody(fingerprint, null)).toThrow(pattern);
      expect(() => encodeEndpointBody(fingerprint, { host: '10.0.0.1', port: 1 })).toThrow(pattern);
      expect(() => encodeControlMessage({ type: 'introduce', fingerprint })).toThrow(pattern);
      expect(() => encodeControlMessage({ type: 'endpoint', fingerprint, address: null })).toThrow(pattern);
    });
  }

  const badHosts = ['', 'localhost', 'vpn.example.com', '[::1]', '1.2.3', '1.2.3.4 ', '01.2.3.4', '1.2.3.4:5'];
  for (const host of badHosts) {
    it(`an endpoint host '${host}' that is not an IP literal`, () => {
      expect(() => encodeEndpointBody(FP, { host, port: 4433 })).toThrow(/is not an IP address/);
    });
  }

  for (const port of [0, -1, 65536, 1.5, Number.NaN]) {
    it(`an endpoint port ${port}`, () => {
      expect(() => encodeEndpointBody(FP, { host: '10.0.0.1', port })).toThrow(/outside 1\.\.65535/);
      expect(() => encodeControlMessage({ type: 'endpoint', fingerprint: FP, address: { host: '10.0.0.1', port } })).toThrow(/outside 1\.\.65535/);
    });
  }

  // BUG (src/control/nat-messages.ts): isIP accepts a zone id of any length, and the encoder writes
  // host.length into one byte without a check: a 308-character host goes out with length byte 52,
  // a malformed E message that makes the receiving peer close the session.
  it('a host longer than the 255 bytes its length byte can say', () => {
    const host = `fe80::1%${'a'.repeat(300)}`;
    expect(() => encodeEndpointBody(FP, { host, port: 4433 })).toThrow();
  });
});
