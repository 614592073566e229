// Address and prefix literals in tests: parsed by the real parsers, a typo fails loudly.
import { parseCidr, parseIp, type Prefix } from '../../src/netgraph/addr.js';

export function cidr(text: string): Prefix {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(r.error);
  return r.prefix;
}

export function ip(text: string): Uint8Array {
  const bytes = parseIp(text);
  if (!bytes) throw new Error(`bad test address ${text}`);
  return bytes;
}
