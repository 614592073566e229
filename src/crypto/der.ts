// The few fields of an X.509 certificate a trust decision reads (subject CN, validity), straight
// from its DER. The daemon reads every peer's certificate with this instead of @peculiar/x509,
// whose ASN.1 schema machinery (with tsyringe and reflect-metadata) cost ~19 MB of resident
// memory for three fields; that library is now loaded only to generate certificates.
// Peer certificates are untrusted input: every length is checked against the bytes present
// before it is used, and anything unexpected is a DerError.

export class DerError extends Error {
  override name = 'DerError';
}

export interface CertificateFields {
  /** First CN attribute of the subject; '' if there is none. */
  commonName: string;
  notBefore: Date;
  notAfter: Date;
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID = 0x06;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const VERSION_TAG = 0xa0; // [0] EXPLICIT, constructed
const CN_OID = [0x55, 0x04, 0x03]; // 2.5.4.3

interface Tlv {
  tag: number;
  /** Offset of the value's first byte. */
  start: number;
  /** Offset just past the value. */
  end: number;
}

/** The TLV at `offset`, which must end by `limit`. */
function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated element');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in certificates');
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    // Four length bytes cover 4 GiB; a certificate is a few hundred bytes. 0x80 is BER's indefinite form.
    if (bytes === 0 || bytes > 4) throw new DerError('unsupported length encoding');
    if (start + bytes > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  if (length > limit - start) throw new DerError('element longer than its container');
  return { tag, start, end: start + length };
}

function expect(tlv: Tlv, tag: number, what: string): Tlv {
  if (tlv.tag !== tag) throw new DerError(`expected ${what}, found tag 0x${tlv.tag.toString(16).padStart(2, '0')}`);
  return tlv;
}

/** Subject CN and validity of a DER certificate. Throws DerError if the structure is not one. */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const cert = expect(readTlv(der, 0, der.length), SEQUENCE, 'a certificate SEQUENCE');
  const tbs = expect(readTlv(der, cert.start, cert.end), SEQUENCE, 'a TBSCertificate SEQUENCE');
  let at = tbs.start;
  const next = (): Tlv => {
    const tlv = readTlv(der, at, tbs.end);
    at = tlv.end;
    return tlv;
  };
  let field = next();
  if (field.tag === VERSION_TAG) field = next();
  expect(field, 0x02, 'the serial number');
  expect(next(), SEQUENCE, 'the signature algorithm');
  expect(next(), SEQUENCE, 'the issuer name');
  const validity = expect(next(), SEQUENCE, 'the validity');
  const subject = expect(next(), SEQUENCE, 'the subject name');
  const notBeforeTlv = readTlv(der, validity.start, validity.end);
  const notAfterTlv = readTlv(der, notBeforeTlv.end, validity.end);
  return { commonName: firstCommonName(der, subject), notBefore: readTime(der, notBeforeTlv), notAfter: readTime(der, notAfterTlv) };
}

function firstCommonName(der: Uint8Array, name: Tlv): string {
  for (let at = name.start; at < name.end; ) {
    const rdn = expect(readTlv(der, at, name.end), SET, 'a relative distinguished name SET');
    at = rdn.end;
    for (let inner = rdn.start; inner < rdn.end; ) {
      const attribute = expect(readTlv(der, inner, rdn.end), SEQUENCE, 'an attribute SEQUENCE');
      inner = attribute.end;
      const type = expect(readTlv(der, attribute.start, attribute.end), OID, 'an attribute type');
      const value = readTlv(der, type.end, attribute.end);
      if (type.end - type.start === CN_OID.length && CN_OID.every((b, i) => der[type.start + i] === b)) {
        return decodeString(der.subarray(value.start, value.end), value.tag);
      }
    }
  }
  return '';
}

function decodeString(bytes: Uint8Array, tag: number): string {
  switch (tag) {
    case 0x0c: // UTF8String
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        throw new DerError('the common name is not valid UTF-8');
      }
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString, read as Latin-1 like most implementations
      return String.fromCharCode(...bytes);
    case 0x1e: {
      // BMPString: UTF-16BE
      if (bytes.length % 2 !== 0) throw new DerError('odd-length BMPString');
      let text = '';
      for (let i = 0; i < bytes.length; i += 2) text += String.fromCharCode((bytes[i]! << 8) | bytes[i + 1]!);
      return text;
    }
    case 0x1c: {
      // UniversalString: UTF-32BE
      if (bytes.length % 4 !== 0) throw new DerError('UniversalString length not a multiple of 4');
      let text = '';
      for (let i = 0; i < bytes.length; i += 4) {
        const code = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
        if (code > 0x10ffff) throw new DerError('UniversalString character out of range');
        text += String.fromCodePoint(code);
      }
      return text;
    }
    default:
      throw new DerError(`the common name has an unsupported string type 0x${tag.toString(16)}`);
  }
}

/** UTCTime YYMMDDHHMMSSZ (RFC 5280: YY < 50 is 20YY) or GeneralizedTime YYYYMMDDHHMMSS[.f]Z. */
function readTime(der: Uint8Array, tlv: Tlv): Date {
  const text = String.fromCharCode(...der.subarray(tlv.start, tlv.end));
  let match: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === UTC_TIME) {
    match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!match) throw new DerError(`malformed UTCTime "${printable(text)}"`);
    const yy = Number(match[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (tlv.tag === GENERALIZED_TIME) {
    match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d{1,9})?Z$/.exec(text);
    if (!match) throw new DerError(`malformed GeneralizedTime "${printable(text)}"`);
    year = Number(match[1]);
  } else {
    throw new DerError(`expected a time, found tag 0x${tlv.tag.toString(16)}`);
  }
  const [month, day, hour, minute, second] = match.slice(2, 7).map(Number) as [number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    throw new DerError(`time out of range "${printable(text)}"`);
  }
  // setUTCFullYear, not Date.UTC, which maps years 0..99 to 1900..1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, 0, 0);
  // 31 February rolls over into March: a date that does not exist is malformed.
  if (date.getUTCDate() !== day) throw new DerError(`no such date "${printable(text)}"`);
  // A leap second (60) is the first second of the next minute, as Date and @peculiar/x509 read it.
  return new Date(date.getTime() + second * 1000);
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}
