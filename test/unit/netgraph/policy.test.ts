import { describe, expect, it } from 'vitest';
import { bytesEqual, formatPrefix } from '../../../src/netgraph/addr.js';
import { checkAnnouncedPrefix, type HostOwnership } from '../../../src/netgraph/policy.js';
import { cidr, ip } from '../../helpers/addresses.js';

/** This node is 10.42.0.1, the announcing peer's auto address is 10.42.0.7, node2 holds 10.42.0.12. */
function ownership(overrides: Partial<HostOwnership> = {}): HostOwnership {
  return {
    local: ip('10.42.0.1'),
    peerAuto: ip('10.42.0.7'),
    peerClaim: undefined,
    holderOf: (address) => (bytesEqual(address, ip('10.42.0.12')) ? 'node2' : undefined),
    ...overrides,
  };
}

const base = {
  network: 'corp',
  networkExists: true,
  peerAllowedOnNetwork: true,
  networkPrefix: cidr('10.42.0.0/24'),
  allowedRoutes: [cidr('192.168.50.0/24')],
  ownership: ownership(),
};

function accepted(announced: string, overrides: Partial<typeof base> = {}): string {
  const r = checkAnnouncedPrefix({ ...base, ...overrides, announced });
  if (!r.ok) throw new Error(`expected ${announced} to be accepted, got ${r.reason}: ${r.message}`);
  return formatPrefix(r.prefix);
}

function claimed(announced: string, overrides: Partial<typeof base> = {}): boolean {
  const r = checkAnnouncedPrefix({ ...base, ...overrides, announced });
  if (!r.ok) throw new Error(`expected ${announced} to be accepted, got ${r.reason}: ${r.message}`);
  return r.claim;
}

function refused(announced: string, overrides: Partial<typeof base> = {}): { reason: string; message: string } {
  const r = checkAnnouncedPrefix({ ...base, ...overrides, announced });
  if (r.ok) throw new Error(`expected ${announced} to be refused, got ${formatPrefix(r.prefix)}`);
  return { reason: r.reason, message: r.message };
}

describe('checkAnnouncedPrefix', () => {
  it("accepts the peer's own host route, and allowed extra routes", () => {
    expect(accepted('10.42.0.7/32')).toBe('10.42.0.7/32');
    expect(claimed('10.42.0.7/32')).toBe(false);
    expect(accepted('192.168.50.0/24')).toBe('192.168.50.0/24');
    expect(accepted('192.168.50.9/32')).toBe('192.168.50.9/32');
    const v6 = { networkPrefix: cidr('fd00::/64'), ownership: ownership({ local: ip('fd00::1'), peerAuto: ip('fd00::5') }) };
    expect(accepted('FD00:0::5/128', v6)).toBe('fd00::5/128');
  });

  it('accepts sub-prefixes of the network only when allowed_routes lists them', () => {
    expect(refused('10.42.0.0/24').reason).toBe('outside-policy');
    expect(refused('10.42.0.128/25').message).toBe(
      "announced prefix 10.42.0.128/25 covers more than the peer's own address in 10.42.0.0/24; add it to that peer's allowed_routes to accept it",
    );
    expect(accepted('10.42.0.0/24', { allowedRoutes: [cidr('10.42.0.0/24')] })).toBe('10.42.0.0/24');
    expect(accepted('10.42.0.128/25', { allowedRoutes: [cidr('10.42.0.128/25')] })).toBe('10.42.0.128/25');
  });

  it("refuses another node's address, and this node's own, as a conflict", () => {
    const node2 = refused('10.42.0.12/32');
    expect(node2.reason).toBe('conflict');
    expect(node2.message).toBe("announced prefix 10.42.0.12/32 is the address of node2; add it to that peer's allowed_routes to accept it");
    const ours = refused('10.42.0.1/32');
    expect(ours.reason).toBe('conflict');
    expect(ours.message).toBe("announced prefix 10.42.0.1/32, which is this node's own address; set a static networks.corp.address on one of the two nodes");
    // Even allowed_routes cannot hand out this node's own address.
    expect(refused('10.42.0.1/32', { allowedRoutes: [cidr('10.42.0.0/24')] }).reason).toBe('conflict');
    // allowed_routes can give a peer another node's address on purpose (e.g. a failover address).
    expect(accepted('10.42.0.12/32', { allowedRoutes: [cidr('10.42.0.12/32')] })).toBe('10.42.0.12/32');
  });

  it('lets a peer claim one free static address per network, and no second one', () => {
    expect(claimed('10.42.0.20/32')).toBe(true);
    const holding = { ownership: ownership({ peerClaim: ip('10.42.0.20') }) };
    expect(claimed('10.42.0.20/32', holding)).toBe(true);
    expect(accepted('10.42.0.7/32', holding)).toBe('10.42.0.7/32'); // its auto address stays its own
    const second = refused('10.42.0.21/32', holding);
    expect(second.reason).toBe('outside-policy');
    expect(second.message).toMatch(/second address for the peer in this network \(it already holds 10\.42\.0\.20\)/);
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
      "announced prefix 10.42.0.0/16 is outside 10.42.0.0/24, 192.168.50.0/24; add it to that peer's allowed_routes to accept it",
    );
    expect(refused('0.0.0.0/0').reason).toBe('outside-policy');
    expect(refused('10.43.0.1/32').reason).toBe('outside-policy');
    expect(refused('fd00::1/128').reason).toBe('outside-policy'); // other family
    expect(accepted('0.0.0.0/0', { allowedRoutes: [cidr('0.0.0.0/0')] })).toBe('0.0.0.0/0');
  });

  it('masks host bits the original node may send, but only lets the result in if policy allows it', () => {
    expect(accepted('10.42.0.7/24', { allowedRoutes: [cidr('10.42.0.0/24')] })).toBe('10.42.0.0/24');
    expect(refused('10.42.0.7/24').message).toMatch(/^announced prefix 10\.42\.0\.7\/24 \(masked to 10\.42\.0\.0\/24\) covers more/);
    const outside = refused('10.42.0.7/16');
    expect(outside.reason).toBe('outside-policy');
    expect(outside.message).toMatch(/^announced prefix 10\.42\.0\.7\/16 \(masked to 10\.42\.0\.0\/16\) is outside/);
  });
});
