// `address = "auto"` (CONFIG.md): a node's address in a network is derived from the network
// name and its own certificate fingerprint, so every machine computes the same address for a
// node without coordination, and a node keeps its address across restarts.

import { createHash } from 'node:crypto';
import { formatIp, maxPrefixLength, type Prefix } from '../netgraph/addr.js';
import type { NetworkConfig } from './types.js';

/**
 * Maps SHA-256("<network>:<fingerprint>") into the host range of `prefix` (4 or 16 bytes out).
 *
 * The usable range excludes the network address (all host bits zero) and the all-ones address
 * (IPv4 broadcast; for IPv6 excluded too so both families behave alike). The original mapped
 * into the whole prefix and could hand out the network address. Point-to-point prefixes have no
 * such reserved addresses: /31 and IPv6 /127 use both (RFC 3021, RFC 6164), /32 and /128 the
 * only one.
 */
export function deriveAutoAddress(networkName: string, prefix: Prefix, fingerprint: string): Uint8Array {
  const { bytes, length, family } = prefix;
  const hostBits = BigInt(maxPrefixLength(family) - length);
  const hostCount = 1n << hostBits;

  // Fingerprints are canonically lowercase; accept any case so callers can't fork the address.
  const digest = createHash('sha256').update(`${networkName}:${fingerprint.toLowerCase()}`, 'utf8').digest();
  const hash = BigInt(`0x${digest.toString('hex')}`);

  let offset: bigint;
  if (hostBits <= 1n) offset = hash % hostCount;
  else offset = 1n + (hash % (hostCount - 2n));

  return bigIntToBytes(bytesToBigInt(bytes) + offset, bytes.length);
}

/**
 * The original VibePN's `auto` address for a node (config/address.go deriveAutoAddress): the
 * same SHA-256("<network>:<fingerprint>"), but its first 4 bytes masked with (2^hostBits - 2), so
 * always an even offset, possibly the network address; IPv4 prefixes shorter than /31 only.
 * Null where the original has no auto address.
 */
export function deriveOriginalAutoAddress(networkName: string, prefix: Prefix, fingerprint: string): Uint8Array | null {
  if (prefix.family !== 4 || prefix.length >= 31) return null;
  const digest = createHash('sha256').update(`${networkName}:${fingerprint}`, 'utf8').digest();
  const mask = 2 ** (32 - prefix.length) - 2;
  const offset = digest.readUInt32BE(0) & mask;
  return bigIntToBytes(bytesToBigInt(prefix.bytes) + BigInt(offset >>> 0), 4);
}

/** The configured static address, or the derived one for "auto". A copy: callers may keep or change it. */
export function resolveNetworkAddress(net: NetworkConfig, fingerprint: string): Uint8Array {
  return net.address === 'auto' ? deriveAutoAddress(net.name, net.prefix, fingerprint) : new Uint8Array(net.address);
}

/**
 * This node's address in `net` for people: "10.42.0.7 (auto)" or "10.42.0.9"; just "auto" when
 * the fingerprint is not known (an unreadable certificate), since nothing can be derived then.
 */
export function describeNetworkAddress(net: NetworkConfig, fingerprint: string | undefined): string {
  if (net.address !== 'auto') return formatIp(net.address);
  return fingerprint === undefined ? 'auto' : `${formatIp(deriveAutoAddress(net.name, net.prefix, fingerprint))} (auto)`;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bigIntToBytes(value: bigint, byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  for (let i = byteLength - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}
