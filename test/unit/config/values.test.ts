// The single-value rules shared by the loader, the builders and vpnctl: each parser's accepted
// forms and the exact message for what it refuses.
import { describe, expect, it } from 'vitest';
import { parseCidr, parseIp, type Prefix } from '../../../src/netgraph/addr.js';
import {
  INBOUND_ONLY_NEEDS_FINGERPRINT,
  PIN_SOURCE,
  formatEndpoint,
  formatNetworkAddress,
  formatOptionalEndpoint,
  normalizeFingerprint,
  parseDialAddress,
  parseFingerprint,
  parseListen,
  parseMetricsListen,
  parseNetworkAddress,
  parsePeerAddress,
  staticAddressProblem,
} from '../../../src/config/values.js';
import { INBOUND_ONLY_NEEDS_PIN } from './parse-helpers.js';

const HEX = '1f3a'.repeat(16);
const colons = (hex: string) => hex.match(/../g)!.join(':');

function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

/** staticAddressProblem for an address written as `text`. */
function problem(text: string, prefixText: string): string | null {
  const bytes = parseIp(text);
  if (!bytes) throw new Error(`not an IP: ${text}`);
  return staticAddressProblem(text, bytes, prefix(prefixText));
}

describe('normalizeFingerprint', () => {
  it('lowercases 64 hex digits and accepts openssl’s colon form', () => {
    expect(normalizeFingerprint(HEX)).toBe(HEX);
    expect(normalizeFingerprint(HEX.toUpperCase())).toBe(HEX);
    expect(normalizeFingerprint(colons(HEX))).toBe(HEX);
    expect(normalizeFingerprint(colons(HEX.toUpperCase()))).toBe(HEX);
  });

  it('refuses anything else', () => {
    const bad = [
      '',
      HEX.slice(0, 63),
      HEX + '0',
      HEX.slice(0, 63) + 'g',
      ` ${HEX}`,
      `${HEX}\n`,
      colons(HEX).slice(0, -3), // 31 pairs
      colons(HEX) + ':00', // 33 pairs
      colons(HEX).replace(':', ''), // one separator missing
      colons(HEX).replaceAll(':', '-'),
      `sha256:${HEX}`,
    ];
    for (const text of bad) expect(normalizeFingerprint(text), JSON.stringify(text)).toBeNull();
  });
});

describe('parseFingerprint', () => {
  it('returns the canonical form', () => {
    expect(parseFingerprint(colons(HEX.toUpperCase()))).toEqual({ ok: true, value: HEX });
  });

  it('names the bad value and what a fingerprint is', () => {
    expect(parseFingerprint('abc')).toEqual({
      ok: false,
      error: "'abc' is not a valid fingerprint (expected 64 hex digits, the SHA-256 of the DER certificate)",
    });
  });
});

describe('parseListen (daemon.listen)', () => {
  it('accepts IPv4, bracketed IPv6, hostnames, and port 0', () => {
    expect(parseListen('0.0.0.0:51820')).toEqual({ ok: true, value: { host: '0.0.0.0', port: 51820 } });
    expect(parseListen('[::]:51820')).toEqual({ ok: true, value: { host: '::', port: 51820 } });
    expect(parseListen('localhost:1')).toEqual({ ok: true, value: { host: 'localhost', port: 1 } });
    expect(parseListen('127.0.0.1:0')).toEqual({ ok: true, value: { host: '127.0.0.1', port: 0 } });
    expect(parseListen('0.0.0.0:65535')).toEqual({ ok: true, value: { host: '0.0.0.0', port: 65535 } });
  });

  it('refuses a missing host, a missing or out-of-range port, and unbracketed IPv6', () => {
    expect(parseListen(':51820')).toEqual({ ok: false, error: "':51820' is not a valid HOST:PORT (missing host, e.g. 0.0.0.0:51820)" });
    expect(parseListen('0.0.0.0')).toEqual({ ok: false, error: "'0.0.0.0' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820)" });
    expect(parseListen('0.0.0.0:65536')).toEqual({ ok: false, error: "'0.0.0.0:65536' is not a valid HOST:PORT (port must be a number 0..65535)" });
    expect(parseListen('0.0.0.0:-1')).toEqual({ ok: false, error: "'0.0.0.0:-1' is not a valid HOST:PORT (port must be a number 0..65535)" });
    expect(parseListen('::1:51820')).toEqual({ ok: false, error: "'::1:51820' is not a valid HOST:PORT (IPv6 addresses need brackets, e.g. [::1]:51820)" });
  });
});

describe('parseMetricsListen (daemon.metrics_listen)', () => {
  it('takes "" as disabled and ":PORT" as every interface', () => {
    expect(parseMetricsListen('')).toEqual({ ok: true, value: null });
    expect(parseMetricsListen(':9000')).toEqual({ ok: true, value: { host: '', port: 9000 } });
    expect(parseMetricsListen('127.0.0.1:0')).toEqual({ ok: true, value: { host: '127.0.0.1', port: 0 } });
  });

  it('adds how to disable metrics to a refusal', () => {
    expect(parseMetricsListen('9000')).toEqual({
      ok: false,
      error: "'9000' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use \"\" to disable metrics",
    });
    expect(parseMetricsListen('256.0.0.1:9000')).toEqual({
      ok: false,
      error: "'256.0.0.1:9000' is not a valid HOST:PORT ('256.0.0.1' is not an IPv4 address); use \"\" to disable metrics",
    });
  });
});

describe('parseDialAddress', () => {
  it('accepts IP literals and hostnames with a port 1..65535', () => {
    expect(parseDialAddress('203.0.113.7:51820')).toEqual({ ok: true, value: { host: '203.0.113.7', port: 51820 } });
    expect(parseDialAddress('[fd00::1]:51820')).toEqual({ ok: true, value: { host: 'fd00::1', port: 51820 } });
    expect(parseDialAddress('peer.example.com.:443')).toEqual({ ok: true, value: { host: 'peer.example.com.', port: 443 } });
  });

  it('refuses port 0, an empty host, bad IPs and bad hostnames', () => {
    const cases: Array<[string, string]> = [
      ['192.0.2.1:0', 'port must be a number 1..65535'],
      [':51820', 'missing host, e.g. 0.0.0.0:51820'],
      ['999.1.1.1:51820', "'999.1.1.1' is not an IPv4 address"],
      ['[fd00::zz]:51820', "'fd00::zz' is not an IPv6 address"],
      ['[fd00::1]51820', 'expected [IPv6]:PORT, e.g. [fd00::1]:51820'],
      ['-peer.example:51820', "'-peer.example' is not an IP address or hostname"],
      ['peer_1.example:51820', "'peer_1.example' is not an IP address or hostname"],
    ];
    for (const [text, why] of cases) {
      expect(parseDialAddress(text), text).toEqual({ ok: false, error: `'${text}' is not a valid HOST:PORT (${why})` });
    }
  });
});

describe('parsePeerAddress (peers.address)', () => {
  it('takes "" as inbound only', () => {
    expect(parsePeerAddress('')).toEqual({ ok: true, value: null });
    expect(parsePeerAddress('192.0.2.1:51820')).toEqual({ ok: true, value: { host: '192.0.2.1', port: 51820 } });
  });

  it('adds how to make a peer inbound-only to a refusal', () => {
    expect(parsePeerAddress('192.0.2.1')).toEqual({
      ok: false,
      error: "'192.0.2.1' is not a valid HOST:PORT (missing :PORT, e.g. 203.0.113.42:51820); use \"\" to only accept inbound connections",
    });
    expect(parsePeerAddress('192.0.2.1:0')).toEqual({
      ok: false,
      error: "'192.0.2.1:0' is not a valid HOST:PORT (port must be a number 1..65535); use \"\" to only accept inbound connections",
    });
  });
});

describe('parseNetworkAddress (networks.*.address)', () => {
  it('accepts "auto" and IPv4/IPv6 literals', () => {
    expect(parseNetworkAddress('auto')).toEqual({ ok: true, value: 'auto' });
    expect(parseNetworkAddress('10.42.0.5')).toEqual({ ok: true, value: new Uint8Array([10, 42, 0, 5]) });
    const v6 = parseNetworkAddress('fd00::5');
    expect(v6.ok && v6.value).toEqual(parseIp('fd00::5'));
  });

  it('refuses anything else, suggesting "auto"', () => {
    for (const text of ['Auto', '', '10.42.0.5/24', '10.42.0', '010.42.0.5', '[fd00::5]']) {
      expect(parseNetworkAddress(text), text).toEqual({
        ok: false,
        error: `'${text}' is not an IP address (use an address inside the prefix, or "auto")`,
      });
    }
  });
});

describe('staticAddressProblem', () => {
  it('accepts host addresses inside the prefix', () => {
    expect(problem('10.42.0.5', '10.42.0.0/24')).toBeNull();
    expect(problem('10.42.0.1', '10.42.0.0/24')).toBeNull();
    expect(problem('10.42.0.254', '10.42.0.0/24')).toBeNull();
    // Inside a /22, x.x.0.255 and x.x.1.0 are ordinary host addresses.
    expect(problem('10.42.0.255', '10.42.0.0/22')).toBeNull();
    expect(problem('10.42.1.0', '10.42.0.0/22')).toBeNull();
    expect(problem('fd00::5', 'fd00::/64')).toBeNull();
  });

  it('refuses another family, naming both', () => {
    expect(problem('fd00::5', '10.42.0.0/24')).toBe("'fd00::5' is an IPv6 address but prefix 10.42.0.0/24 is IPv4");
    expect(problem('10.42.0.5', 'fd00::/64')).toBe("'10.42.0.5' is an IPv4 address but prefix fd00::/64 is IPv6");
    expect(problem('::ffff:10.42.0.5', '10.42.0.0/24')).toBe("'::ffff:10.42.0.5' is an IPv6 address but prefix 10.42.0.0/24 is IPv4");
  });

  it('refuses an address outside the prefix', () => {
    expect(problem('10.43.0.5', '10.42.0.0/24')).toBe("'10.43.0.5' is outside prefix 10.42.0.0/24");
    expect(problem('10.42.4.1', '10.42.0.0/22')).toBe("'10.42.4.1' is outside prefix 10.42.0.0/22");
    expect(problem('fd01::5', 'fd00::/64')).toBe("'fd01::5' is outside prefix fd00::/64");
  });

  it('refuses the network address, in the text as written', () => {
    expect(problem('10.42.0.0', '10.42.0.0/24')).toBe(`'10.42.0.0' is the network address of 10.42.0.0/24; use a host address or "auto"`);
    expect(problem('FD00::', 'fd00::/64')).toBe(`'FD00::' is the network address of fd00::/64; use a host address or "auto"`);
  });

  it('refuses the IPv4 broadcast address, for any prefix length', () => {
    expect(problem('10.42.0.255', '10.42.0.0/24')).toBe(`'10.42.0.255' is the broadcast address of 10.42.0.0/24; use a host address or "auto"`);
    expect(problem('10.42.3.255', '10.42.0.0/22')).toBe(`'10.42.3.255' is the broadcast address of 10.42.0.0/22; use a host address or "auto"`);
    expect(problem('10.42.0.3', '10.42.0.0/30')).toBe(`'10.42.0.3' is the broadcast address of 10.42.0.0/30; use a host address or "auto"`);
    expect(problem('10.255.255.255', '10.0.0.0/8')).toBe(`'10.255.255.255' is the broadcast address of 10.0.0.0/8; use a host address or "auto"`);
  });

  it('has no broadcast address in IPv6', () => {
    expect(problem('fd00::ffff:ffff:ffff:ffff', 'fd00::/64')).toBeNull();
  });

  it('lets point-to-point and single-host prefixes use every address', () => {
    expect(problem('10.42.0.1', '10.42.0.0/30')).toBeNull();
    expect(problem('10.42.0.2', '10.42.0.0/30')).toBeNull();
    expect(problem('10.42.0.0', '10.42.0.0/30')).toBe(`'10.42.0.0' is the network address of 10.42.0.0/30; use a host address or "auto"`);
    expect(problem('10.42.0.0', '10.42.0.0/31')).toBeNull();
    expect(problem('10.42.0.1', '10.42.0.0/31')).toBeNull();
    expect(problem('10.42.0.7', '10.42.0.7/32')).toBeNull();
    expect(problem('fd00::', 'fd00::/127')).toBeNull();
    expect(problem('fd00::1', 'fd00::/127')).toBeNull();
    expect(problem('fd00::7', 'fd00::7/128')).toBeNull();
  });
});

describe('formatting config values', () => {
  it('writes endpoints as host:port, brackets around IPv6', () => {
    expect(formatEndpoint({ host: '192.0.2.1', port: 51820 })).toBe('192.0.2.1:51820');
    expect(formatEndpoint({ host: 'fd00::1', port: 51820 })).toBe('[fd00::1]:51820');
    expect(formatEndpoint({ host: '', port: 9000 })).toBe(':9000');
    expect(formatOptionalEndpoint(null)).toBe('');
    expect(formatOptionalEndpoint({ host: 'peer.example', port: 1 })).toBe('peer.example:1');
  });

  it('writes network addresses as "auto" or the IP', () => {
    expect(formatNetworkAddress('auto')).toBe('auto');
    expect(formatNetworkAddress(new Uint8Array([10, 42, 0, 5]))).toBe('10.42.0.5');
    expect(formatNetworkAddress(parseIp('fd00:0:0:0:0:0:0:5')!)).toBe('fd00::5');
  });

  it('round-trips through the parsers', () => {
    for (const text of ['0.0.0.0:51820', '[::]:0', '[fd00::1]:9', 'host.example:443']) {
      const parsed = parseListen(text);
      expect(parsed.ok && formatEndpoint(parsed.value), text).toBe(text);
    }
    for (const text of ['', ':9000', '127.0.0.1:9100']) {
      const parsed = parseMetricsListen(text);
      expect(parsed.ok && formatOptionalEndpoint(parsed.value), text).toBe(text);
    }
    for (const text of ['auto', '10.42.0.5', 'fd00::5']) {
      const parsed = parseNetworkAddress(text);
      expect(parsed.ok && formatNetworkAddress(parsed.value), text).toBe(text);
    }
  });
});

describe('shared hint texts', () => {
  it('are what the loader says about an inbound-only peer without a pin', () => {
    expect(INBOUND_ONLY_NEEDS_PIN).toBe(`required when address is "" (${INBOUND_ONLY_NEEDS_FINGERPRINT}; add fingerprint = "<64 hex>" ${PIN_SOURCE})`);
  });
});
