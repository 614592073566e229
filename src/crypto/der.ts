// Just enough ASN.1 DER to write a self-signed X.509 certificate and to read the subject CN and
// validity window back out of one. Hand-written because @peculiar/x509 needs a global Reflect
// metadata polyfill (tsyringe) that this project does not ship; node:crypto signs and checks, this
// file only frames bytes. The reader handles certificates sent by untrusted peers: every length is
// checked against the enclosing element before use.

export class DerError extends Error {
  override name = 'DerError';
}

// ---- writer ----

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  return Buffer.concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]): Uint8Array => tlv(0x31, ...items);
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(0x04, bytes);
export const utf8String = (text: string): Uint8Array => tlv(0x0c, Buffer.from(text, 'utf8'));
export const booleanTrue = (): Uint8Array => Uint8Array.of(0x01, 0x01, 0xff);
/** Context-specific constructed tag [n] (EXPLICIT wrapping). */
export const explicit = (n: number, ...items: Uint8Array[]): Uint8Array => tlv(0xa0 | n, ...items);

/** Bit string with `unusedBits` trailing padding bits in the last byte. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return tlv(0x03, Uint8Array.of(unusedBits), bytes);
}

/** A non-negative INTEGER from big-endian magnitude bytes, minimally encoded. */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsPad = trimmed.length === 0 || (trimmed[0]! & 0x80) !== 0;
  return tlv(0x02, needsPad ? Uint8Array.of(0) : new Uint8Array(0), trimmed);
}

export function objectIdentifier(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. Second precision. */
export function time(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  const pad = (n: number): string => String(n).padStart(2, '0');
  const rest =
    pad(date.getUTCMonth() + 1) +
    pad(date.getUTCDate()) +
    pad(date.getUTCHours()) +
    pad(date.getUTCMinutes()) +
    pad(date.getUTCSeconds()) +
    'Z';
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(pad(year % 100) + rest, 'latin1'));
  return tlv(0x18, Buffer.from(String(year).padStart(4, '0') + rest, 'latin1'));
}

// ---- reader ----

export interface Element {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset one past the last content byte. */
  end: number;
}

/** Reads one element at `pos` that must end at or before `limit`. */
export function readElement(buf: Uint8Array, pos: number, limit: number = buf.length): Element {
  if (pos + 2 > limit) throw new DerError('truncated element header');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let lengthByte = buf[pos + 1]!;
  let start = pos + 2;
  let length: number;
  if (lengthByte < 0x80) {
    length = lengthByte;
  } else {
    lengthByte &= 0x7f;
    // 0 would be BER's indefinite length; more than 4 bytes cannot fit any real certificate.
    if (lengthByte === 0 || lengthByte > 4) throw new DerError('unsupported length encoding');
    if (start + lengthByte > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < lengthByte; i++) length = length * 256 + buf[start + i]!;
    start += lengthByte;
  }
  if (length > limit - start) throw new DerError('element runs past its container');
  return { tag, start, end: start + length };
}

export function childrenOf(buf: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let pos = parent.start; pos < parent.end; ) {
    const child = readElement(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

function expectTag(el: Element | undefined, tag: number, what: string): Element {
  if (!el || el.tag !== tag) throw new DerError(`expected ${what}`);
  return el;
}

function decodeTime(buf: Uint8Array, el: Element): Date {
  const text = Buffer.from(buf.subarray(el.start, el.end)).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (el.tag === 0x17) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!m) throw new DerError(`bad UTCTime '${text}'`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (el.tag === 0x18) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text);
    if (!m) throw new DerError(`bad GeneralizedTime '${text}'`);
    year = Number(m[1]);
  } else {
    throw new DerError('expected a time');
  }
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls month 13 into next year; a certificate with such a date is malformed, not lenient.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new DerError(`bad time '${text}'`);
  }
  return date;
}

function decodeString(buf: Uint8Array, el: Element): string {
  const bytes = Buffer.from(buf.subarray(el.start, el.end));
  switch (el.tag) {
    case 0x0c: // UTF8String
      return bytes.toString('utf8');
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString, read as Latin-1 like most implementations
      return bytes.toString('latin1');
    case 0x1e: // BMPString, UTF-16BE
      if (bytes.length % 2 !== 0) throw new DerError('odd-length BMPString');
      return Buffer.from(bytes).swap16().toString('utf16le');
    default:
      throw new DerError(`unsupported string type 0x${el.tag.toString(16)}`);
  }
}

const OID_COMMON_NAME = Uint8Array.of(0x55, 0x04, 0x03);

function sameBytes(buf: Uint8Array, el: Element, expected: Uint8Array): boolean {
  if (el.end - el.start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (buf[el.start + i] !== expected[i]) return false;
  return true;
}

export interface CertificateFields {
  /** First CN attribute of the subject; '' if there is none. */
  commonName: string;
  notBefore: Date;
  notAfter: Date;
}

/** Reads subject CN and validity from a DER certificate. Throws DerError on anything malformed. */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const cert = expectTag(readElement(der, 0), 0x30, 'Certificate SEQUENCE');
  if (cert.end !== der.length) throw new DerError('trailing bytes after certificate');
  const tbs = expectTag(childrenOf(der, cert)[0], 0x30, 'TBSCertificate SEQUENCE');
  const fields = childrenOf(der, tbs);
  // version [0] is optional (absent means v1); everything after it is positional.
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  expectTag(fields[offset], 0x02, 'serialNumber');
  const validity = expectTag(fields[offset + 3], 0x30, 'Validity SEQUENCE');
  const subject = expectTag(fields[offset + 4], 0x30, 'subject Name');
  const [notBeforeEl, notAfterEl] = childrenOf(der, validity);
  if (!notBeforeEl || !notAfterEl) throw new DerError('incomplete Validity');

  let commonName = '';
  for (const rdn of childrenOf(der, subject)) {
    expectTag(rdn, 0x31, 'RelativeDistinguishedName SET');
    for (const attr of childrenOf(der, rdn)) {
      const [type, value] = childrenOf(der, expectTag(attr, 0x30, 'AttributeTypeAndValue'));
      if (!type || !value || type.tag !== 0x06) throw new DerError('malformed name attribute');
      if (commonName === '' && sameBytes(der, type, OID_COMMON_NAME)) commonName = decodeString(der, value);
    }
  }
  return { commonName, notBefore: decodeTime(der, notBeforeEl), notAfter: decodeTime(der, notAfterEl) };
}
