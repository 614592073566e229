import { describe, expect, it } from 'vitest';
import { formatPrefix, parseCidr, type Prefix } from '../../../src/netgraph/addr.js';
import { checkAnnouncedPrefix } from '../../../src/netgraph/policy.js';

function cidr(text: string): Prefix {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(r.error);
  return r.prefix;
}

const base = {
  networkExists: true,
  peerAllowedOnNetwork: true,
  networkPrefix: cidr('10.42.0.0/24'),
  allowedRoutes: [cidr('192.168.50.0/24')],
};

function accepted(announced: string, overrides: Partial<typeof base> = {}): string {
  const r = checkAnnouncedPrefix({ ...base, ...overrides, announced });
  if (!r.ok) throw new Error(`expected ${announced} to be accepted, got ${r.reason}: ${r.message}`);
  return formatPrefix(r.prefix);
}

function refused(announced: string, overrides: Partial<typeof base> = {}): { reason: string; message: string } {
  const r = checkAnnouncedPrefix({ ...base, ...overrides, announced });
  if (r.ok) throw new Error(`expected ${announced} to be refused, got ${formatPrefix(r.prefix)}`);
  return { reason: r.reason, message: r.message };
}

describe('checkAnnouncedPrefix', () => {
  it('accepts host routes and sub-prefixes of the network, and allowed extra routes', () => {
    expect(accepted('10.42.0.7/32')).toBe('10.42.0.7/32');
    expect(accepted('10.42.0.0/24')).toBe('10.42.0.0/24');
    expect(accepted('10.42.0.128/25')).toBe('10.42.0.128/25');
    expect(accepted('192.168.50.0/24')).toBe('192.168.50.0/24');
    expect(accepted('192.168.50.9/32')).toBe('192.168.50.9/32');
    expect(accepted('FD00:0::5/128', { networkPrefix: cidr('fd00::/64') })).toBe('fd00::5/128');
  });

  it('refuses an unknown network before looking at anything else', () => {
    const r = refused('garbage', { networkExists: false, peerAllowedOnNetwork: false });
    expect(r.reason).toBe('unknown-network');
    expect(r.message).toMatch(/not configured locally/);
  });

  it('refuses a peer not configured for the network', () => {
    const r = refused('10.42.0.7/32', { peerAllowedOnNetwork: false });
    expect(r.reason).toBe('peer-not-in-network');
    expect(r.message).toMatch(/networks list/);
  });

  it('refuses unparsable prefixes and keeps hostile text out of the message', () => {
    for (const text of ['10.42.0.7', '10.42.0.0/33', '10.42.0/24', '', 'fd00::/129', '10.42.0.0/24 ']) {
      expect(refused(text).reason, text).toBe('bad-prefix');
    }
    expect(refused('10.42.0.0/33').message).toBe("announced prefix '10.42.0.0/33' is not a valid CIDR (prefix length must be 0..32)");
    const hostile = refused(`10.42.0.0/24\n\x1b[31mFAKE LOG LINE${'x'.repeat(200)}`);
    expect(hostile.reason).toBe('bad-prefix');
    expect(hostile.message).not.toContain('\n');
    expect(hostile.message).not.toContain('\x1b');
    expect(hostile.message).toContain('FAKE LOG LINE');
    expect(hostile.message.length).toBeLessThan(120);
  });

  it('refuses prefixes outside the network and the allowed routes, naming both', () => {
    const wide = refused('10.42.0.0/16');
    expect(wide.reason).toBe('outside-policy');
    expect(wide.message).toBe(
      "announced prefix 10.42.0.0/16 is outside 10.42.0.0/24, 192.168.50.0/24; add it to that peer's allowed routes to accept it",
    );
    expect(refused('0.0.0.0/0').reason).toBe('outside-policy');
    expect(refused('10.43.0.1/32').reason).toBe('outside-policy');
    expect(refused('fd00::1/128').reason).toBe('outside-policy'); // other family
    expect(accepted('0.0.0.0/0', { allowedRoutes: [cidr('0.0.0.0/0')] })).toBe('0.0.0.0/0');
  });

  it('masks host bits the original node may send, but only lets the result in if policy allows it', () => {
    expect(accepted('10.42.0.7/24')).toBe('10.42.0.0/24');
    const outside = refused('10.42.0.7/16');
    expect(outside.reason).toBe('outside-policy');
    expect(outside.message).toMatch(/^announced prefix 10\.42\.0\.7\/16 \(masked to 10\.42\.0\.0\/16\) is outside/);
  });
});
