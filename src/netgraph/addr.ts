// IP addresses and CIDR prefixes as bytes (4 for IPv4, 16 for IPv6). Shared by config
// validation, the route table and the forwarding path, so all three agree on what a prefix
// means. Parsers return null or an error string instead of throwing: config validation turns
// them into messages that name the key.

export type Family = 4 | 6;

export interface Prefix {
  readonly family: Family;
  /** Network address, host bits zero; 4 or 16 bytes. */
  readonly bytes: Uint8Array;
  readonly length: number;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIPv4(text: string): Uint8Array | null {
  const m = IPV4_RE.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1]!;
    // Leading zeros are ambiguous (octal in some parsers); refuse them like Go's net.ParseIP.
    if (part.length > 1 && part.startsWith('0')) return null;
    const n = Number(part);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

export function parseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45 || text.includes('%')) return null;
  let head = text;
  let tailV4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > 0) {
    tailV4 = parseIPv4(text.slice(lastColon + 1));
    if (!tailV4) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const doubleColon = head.indexOf('::');
  if (doubleColon !== head.lastIndexOf('::')) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const groups = s.split(':');
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (doubleColon >= 0) {
    const left = parseGroups(head.slice(0, doubleColon));
    const right = parseGroups(head.slice(doubleColon + 2));
    if (!left || !right || left.length + right.length > 7) return null;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i]! >> 8;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  if (tailV4) out.set(tailV4, 12);
  return out;
}

/** Parses an IPv4 or IPv6 address (no zone, no brackets). */
export function parseIp(text: string): Uint8Array | null {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

export function familyOf(bytes: Uint8Array): Family {
  return bytes.length === 4 ? 4 : 6;
}

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function maxPrefixLength(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Zeroes every bit past `length`. Returns a new array. */
export function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const bitsHere = length - i * 8;
    if (bitsHere >= 8) continue;
    out[i] = bitsHere <= 0 ? 0 : out[i]! & (0xff << (8 - bitsHere));
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type CidrResult = { ok: true; prefix: Prefix } | { ok: false; error: string };

/**
 * Parses "addr/len". Host bits must be zero unless `allowHostBits`: a prefix like 10.42.0.5/24
 * is almost always a typo for 10.42.0.0/24 or 10.42.0.5/32, so the error suggests both.
 */
export function parseCidr(text: string, allowHostBits = false): CidrResult {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, error: `'${text}' is not a valid CIDR (expected ADDRESS/LENGTH, e.g. 10.42.0.0/24)` };
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const bytes = parseIp(addrText);
  if (!bytes) return { ok: false, error: `'${text}' is not a valid CIDR ('${addrText}' is not an IP address)` };
  const family = familyOf(bytes);
  const max = maxPrefixLength(family);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    return { ok: false, error: `'${text}' is not a valid CIDR (prefix length must be 0..${max})` };
  }
  const length = Number(lenText);
  const masked = maskBytes(bytes, length);
  if (!allowHostBits && !bytesEqual(masked, bytes)) {
    return {
      ok: false,
      error: `'${text}' has host bits set (did you mean ${formatIp(masked)}/${length}?)`,
    };
  }
  return { ok: true, prefix: { family, bytes: masked, length } };
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatIp(prefix.bytes)}/${prefix.length}`;
}

/** Whether `addr` (4 or 16 bytes) lies inside `prefix`. */
export function prefixContains(prefix: Prefix, addr: Uint8Array): boolean {
  if (addr.length !== prefix.bytes.length) return false;
  const full = prefix.length >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== prefix.bytes[i]) return false;
  const rest = prefix.length & 7;
  if (rest === 0) return true;
  const mask = 0xff << (8 - rest);
  return (addr[full]! & mask) === (prefix.bytes[full]! & mask);
}

/** Whether `inner` is equal to or inside `outer`. */
export function prefixCovers(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && inner.length >= outer.length && prefixContains(outer, inner.bytes);
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  return prefixCovers(a, b) || prefixCovers(b, a);
}

/** A host route for one address: /32 or /128. */
export function hostPrefix(addr: Uint8Array): Prefix {
  const family = familyOf(addr);
  return { family, bytes: new Uint8Array(addr), length: maxPrefixLength(family) };
}

/**
 * Why a Prefix built in code cannot be used (wrong byte count for its family, a length out of
 * range, host bits set), or null. parseCidr never produces such a value; this guards the layers
 * (route table, TUN) that take Prefix values from callers.
 */
export function prefixProblem(prefix: Prefix): string | null {
  const expectedBytes = prefix.family === 4 ? 4 : prefix.family === 6 ? 16 : -1;
  if (expectedBytes < 0 || prefix.bytes.length !== expectedBytes) {
    return `prefix has family ${String(prefix.family)} but ${prefix.bytes.length} address bytes`;
  }
  const max = maxPrefixLength(prefix.family);
  if (!Number.isInteger(prefix.length) || prefix.length < 0 || prefix.length > max) return `prefix length ${prefix.length} must be 0..${max}`;
  if (!bytesEqual(maskBytes(prefix.bytes, prefix.length), prefix.bytes)) {
    return `prefix ${formatPrefix(prefix)} has host bits set; mask it first (parseCidr does)`;
  }
  return null;
}

/** Family, then address bytes, then length: the order routes and prefixes are listed in. */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.bytes.length; i++) {
    const d = a.bytes[i]! - b.bytes[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
