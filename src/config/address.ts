// `address = "auto"` (CONFIG.md): a node's address in a network is derived from the network
// name and its own certificate fingerprint, so every machine computes the same address for a
// node without coordination, and a node keeps its address across restarts.

import { createHash } from 'node:crypto';
import { formatIp, maxPrefixLength, parseCidr } from '../netgraph/addr.js';
import type { NetworkConfig } from './types.js';

/**
 * Maps SHA-256("<network>:<fingerprint>") into the host range of `prefix`.
 *
 * The usable range excludes the network address (all host bits zero) and the all-ones address
 * (IPv4 broadcast; for IPv6 excluded too so both families behave alike). The original mapped
 * into the whole prefix and could hand out the network address. Point-to-point prefixes have no
 * such reserved addresses: /31 and IPv6 /127 use both (RFC 3021, RFC 6164), /32 and /128 the
 * only one.
 */
export function deriveAutoAddress(networkName: string, prefix: string, fingerprint: string): string {
  const parsed = parseCidr(prefix);
  if (!parsed.ok) throw new Error(`cannot derive an address in network '${networkName}': ${parsed.error}`);
  const { bytes, length, family } = parsed.prefix;
  const hostBits = BigInt(maxPrefixLength(family) - length);
  const hostCount = 1n << hostBits;

  // Fingerprints are canonically lowercase; accept any case so callers can't fork the address.
  const digest = createHash('sha256').update(`${networkName}:${fingerprint.toLowerCase()}`, 'utf8').digest();
  const hash = BigInt(`0x${digest.toString('hex')}`);

  let offset: bigint;
  if (hostBits <= 1n) offset = hash % hostCount;
  else offset = 1n + (hash % (hostCount - 2n));

  return formatBigIp(bytesToBigInt(bytes) + offset, bytes.length);
}

/** The configured static address, or the derived one for "auto". */
export function resolveNetworkAddress(net: NetworkConfig, fingerprint: string): string {
  return net.address === 'auto' ? deriveAutoAddress(net.name, net.prefix, fingerprint) : net.address;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function formatBigIp(value: bigint, byteLength: number): string {
  const out = new Uint8Array(byteLength);
  for (let i = byteLength - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return formatIp(out);
}

