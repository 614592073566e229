import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveAutoAddress as deriveBytes, deriveOriginalAutoAddress, describeNetworkAddress, resolveNetworkAddress } from '../../../src/config/address.js';
import { newNetwork } from '../../../src/config/write.js';
import { formatIp, parseCidr, parseIp, prefixContains, type Prefix } from '../../../src/netgraph/addr.js';

const FP = '1f3a'.repeat(16);

function randomFingerprint(): string {
  return randomBytes(32).toString('hex');
}

function cidr(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

/** deriveAutoAddress on prefix text, formatted: the tests read better in text. */
function deriveAutoAddress(network: string, prefix: string, fingerprint: string): string {
  return formatIp(deriveBytes(network, cidr(prefix), fingerprint));
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** Offset of `address` from the start of `prefix`, after checking it lies inside. */
function hostOffset(prefix: string, address: string): bigint {
  const parsed = parseCidr(prefix);
  if (!parsed.ok) throw new Error(parsed.error);
  const bytes = parseIp(address);
  expect(bytes, address).not.toBeNull();
  expect(prefixContains(parsed.prefix, bytes!), `${address} in ${prefix}`).toBe(true);
  // Canonical text, so it compares equal to what the loader produces for static addresses.
  expect(formatIp(bytes!)).toBe(address);
  return toBigInt(bytes!) - toBigInt(parsed.prefix.bytes);
}

describe('deriveAutoAddress', () => {
  it('is deterministic and matches the documented derivation', () => {
    const a = deriveAutoAddress('corp', '10.42.0.0/24', FP);
    expect(deriveAutoAddress('corp', '10.42.0.0/24', FP)).toBe(a);
    expect(deriveAutoAddress('corp', '10.42.0.0/24', FP.toUpperCase())).toBe(a);
    // Independent re-computation: 1 + (sha256("corp:<fp>") mod 254).
    const hash = BigInt('0x' + createHash('sha256').update(`corp:${FP}`).digest('hex'));
    expect(a).toBe(`10.42.0.${Number(1n + (hash % 254n))}`);
  });

  it('gives different addresses in different networks for the same node', () => {
    const addresses = new Set(['corp', 'lab', 'dev', 'ops'].map((net) => deriveAutoAddress(net, '10.0.0.0/16', FP)));
    expect(addresses.size).toBe(4);
  });

  it('spreads different nodes over the range (both odd and even offsets)', () => {
    const offsets = Array.from({ length: 200 }, () => hostOffset('10.0.0.0/16', deriveAutoAddress('corp', '10.0.0.0/16', randomFingerprint())));
    expect(new Set(offsets).size).toBeGreaterThan(190);
    expect(offsets.some((o) => o % 2n === 0n)).toBe(true);
    expect(offsets.some((o) => o % 2n === 1n)).toBe(true);
  });

  it.each([
    ['10.42.0.0/24', 8],
    ['10.42.0.0/30', 2],
    ['172.16.0.0/16', 16],
    ['fd00::/64', 64],
    ['fd00::/120', 8],
  ])('stays inside the host range of %s, never network or all-ones', (prefix, hostBits) => {
    const allOnes = (1n << BigInt(hostBits)) - 1n;
    const seen = new Set<bigint>();
    for (let i = 0; i < 500; i++) {
      const offset = hostOffset(prefix, deriveAutoAddress('corp', prefix, randomFingerprint()));
      expect(offset).toBeGreaterThan(0n);
      expect(offset).toBeLessThan(allOnes);
      seen.add(offset);
    }
    // /30 has exactly two usable hosts; 500 draws reach both.
    if (hostBits === 2) expect([...seen].sort()).toEqual([1n, 2n]);
  });

  it('uses both addresses of a /31 and the only address of a /32', () => {
    const seen31 = new Set<string>();
    for (let i = 0; i < 200; i++) seen31.add(deriveAutoAddress('p2p', '10.9.0.0/31', randomFingerprint()));
    expect([...seen31].sort()).toEqual(['10.9.0.0', '10.9.0.1']);
    for (let i = 0; i < 20; i++) expect(deriveAutoAddress('host', '10.8.0.7/32', randomFingerprint())).toBe('10.8.0.7');
    expect(deriveAutoAddress('host', 'fd00::5/128', FP)).toBe('fd00::5');
  });

  it('returns 4 or 16 bytes for the family', () => {
    expect(deriveBytes('corp', cidr('10.42.0.0/24'), FP)).toHaveLength(4);
    expect(deriveBytes('corp', cidr('fd00::/64'), FP)).toHaveLength(16);
  });

  it('cannot be given an invalid prefix: the network builder refuses it, naming the network', () => {
    expect(() => newNetwork('corp', '10.42.0.1/24')).toThrow(
      "network 'corp': prefix '10.42.0.1/24' has host bits set (did you mean 10.42.0.0/24?)",
    );
  });
});

describe('resolveNetworkAddress', () => {
  it('returns the static address or the derived one', () => {
    expect(formatIp(resolveNetworkAddress(newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.9' }), FP))).toBe('10.42.0.9');
    expect(formatIp(resolveNetworkAddress(newNetwork('corp', '10.42.0.0/24'), FP))).toBe(deriveAutoAddress('corp', '10.42.0.0/24', FP));
  });

  it('returns a copy, so a caller cannot change the config through it', () => {
    const net = newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.9' });
    resolveNetworkAddress(net, FP)[3] = 99;
    expect(formatIp(resolveNetworkAddress(net, FP))).toBe('10.42.0.9');
  });
});

describe('describeNetworkAddress', () => {
  it('marks derived addresses and says "auto" when nothing can be derived', () => {
    const auto = newNetwork('corp', '10.42.0.0/24');
    expect(describeNetworkAddress(auto, FP)).toBe(`${deriveAutoAddress('corp', '10.42.0.0/24', FP)} (auto)`);
    expect(describeNetworkAddress(auto, undefined)).toBe('auto');
    expect(describeNetworkAddress(newNetwork('v6', 'fd00::/64', { address: 'FD00::0009' }), FP)).toBe('fd00::9');
  });
});

describe('deriveOriginalAutoAddress', () => {
  const corp = parseCidr('10.42.0.0/24');
  if (!corp.ok) throw new Error(corp.error);

  it('matches the original VibePN binary (it printed 10.42.0.38 for this node)', () => {
    const fingerprint = 'aed1121f05d68097cf65c2d66155fe7a09072d6cf6ed9108dd683eb86d62495a';
    expect(formatIp(deriveOriginalAutoAddress('corp', corp.prefix, fingerprint)!)).toBe('10.42.0.38');
  });

  it('is the original formula: the first 4 hash bytes masked to an even offset, inside the prefix', () => {
    for (let i = 0; i < 200; i++) {
      const fingerprint = randomBytes(32).toString('hex');
      const address = deriveOriginalAutoAddress('corp', corp.prefix, fingerprint)!;
      const digest = createHash('sha256').update(`corp:${fingerprint}`).digest();
      expect(address[3]).toBe(digest.readUInt32BE(0) & 254);
      expect(prefixContains(corp.prefix, address)).toBe(true);
    }
  });

  it('exists only where the original has one: IPv4 prefixes shorter than /31', () => {
    const v6 = parseCidr('fd00::/64');
    const slash31 = parseCidr('10.0.0.0/31');
    if (!v6.ok || !slash31.ok) throw new Error('bad test prefix');
    expect(deriveOriginalAutoAddress('corp', v6.prefix, 'a'.repeat(64))).toBeNull();
    expect(deriveOriginalAutoAddress('corp', slash31.prefix, 'a'.repeat(64))).toBeNull();
  });
});
