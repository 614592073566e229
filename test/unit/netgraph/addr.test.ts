import { describe, expect, it } from 'vitest';
import { isIPv6 } from 'node:net';
import { formatIp, parseCidr, parseIp, prefixContains, prefixesOverlap } from '../../../src/netgraph/addr.js';

describe('addr', () => {
  it('parses and formats IPv4', () => {
    expect(formatIp(parseIp('10.42.0.7')!)).toBe('10.42.0.7');
    for (const bad of ['10.42.0', '10.42.0.256', '010.1.1.1', '1.2.3.4.5', '', 'a.b.c.d']) expect(parseIp(bad)).toBeNull();
  });

  it('parses and formats IPv6 in RFC 5952 form', () => {
    const cases: Array<[string, string]> = [
      ['fd00::1', 'fd00::1'],
      ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['::ffff:10.0.0.1', '::ffff:a00:1'],
      ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ];
    for (const [input, out] of cases) expect(formatIp(parseIp(input)!)).toBe(out);
    for (const bad of ['1::2::3', ':::', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', 'g::1', '1:2:3:4:5:6:7']) {
      expect(parseIp(bad)).toBeNull();
    }
  });

  it('agrees with node:net on random IPv6 round trips', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(16);
      for (let j = 0; j < 16; j++) bytes[j] = Math.random() < 0.4 ? 0 : Math.floor(Math.random() * 256);
      const text = formatIp(bytes);
      expect(isIPv6(text)).toBe(true);
      expect(parseIp(text)).toEqual(bytes);
    }
  });

  it('parses CIDRs strictly', () => {
    const ok = parseCidr('10.42.0.0/24');
    expect(ok.ok && ok.prefix.length).toBe(24);
    const host = parseCidr('10.42.0.5/24');
    expect(!host.ok && host.error).toContain('did you mean 10.42.0.0/24');
    expect(parseCidr('10.42.0.0/33').ok).toBe(false);
    expect(parseCidr('10.42.0.0').ok).toBe(false);
    expect(parseCidr('fd00::/8').ok).toBe(true);
    expect(parseCidr('fd00::/129').ok).toBe(false);
  });

  it('tests containment and overlap', () => {
    const p = (t: string) => {
      const r = parseCidr(t);
      if (!r.ok) throw new Error(r.error);
      return r.prefix;
    };
    expect(prefixContains(p('10.42.0.0/24'), parseIp('10.42.0.200')!)).toBe(true);
    expect(prefixContains(p('10.42.0.0/23'), parseIp('10.42.1.1')!)).toBe(true);
    expect(prefixContains(p('10.42.0.0/24'), parseIp('10.42.1.1')!)).toBe(false);
    expect(prefixContains(p('0.0.0.0/0'), parseIp('1.2.3.4')!)).toBe(true);
    expect(prefixContains(p('10.0.0.0/8'), parseIp('fd00::1')!)).toBe(false);
    expect(prefixesOverlap(p('10.0.0.0/8'), p('10.42.0.0/24'))).toBe(true);
    expect(prefixesOverlap(p('10.43.0.0/16'), p('10.42.0.0/24'))).toBe(false);
  });
});
