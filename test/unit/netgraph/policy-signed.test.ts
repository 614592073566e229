// Route policy for a member of a signed roster (issue 12): inside the network its one host route
// is the address its record gives it. Its auto address and any claim stop counting, or a member
// could announce an address the admin never gave it; allowed_routes (local config) still apply.
import { describe, expect, it } from 'vitest';
import { bytesEqual, formatPrefix } from '../../../src/netgraph/addr.js';
import { checkAnnouncedPrefix, type AnnouncementCheck, type HostOwnership, type PolicyResult } from '../../../src/netgraph/policy.js';
import { cidr, ip } from '../../helpers/addresses.js';

/** This node is 10.42.0.1; the peer's auto address 10.42.0.50, its signed one 10.42.0.7; node2 holds 10.42.0.12. */
function ownership(overrides: Partial<HostOwnership> = {}): HostOwnership {
  return {
    local: ip('10.42.0.1'),
    peerAuto: ip('10.42.0.50'),
    peerClaim: undefined,
    peerSigned: ip('10.42.0.7'),
    holderOf: (address) => (bytesEqual(address, ip('10.42.0.12')) ? 'node2' : undefined),
    ...overrides,
  };
}

function check(announced: string, overrides: Partial<AnnouncementCheck> = {}): PolicyResult {
  return checkAnnouncedPrefix({
    network: 'corp',
    networkExists: true,
    peerAllowedOnNetwork: true,
    networkPrefix: cidr('10.42.0.0/24'),
    allowedRoutes: [cidr('192.168.50.0/24')],
    ownership: ownership(),
    announced,
    ...overrides,
  });
}

describe('checkAnnouncedPrefix with a signed address', () => {
  it('accepts the signed address, without a claim (the record is the claim)', () => {
    const r = check('10.42.0.7/32');
    expect(r).toMatchObject({ ok: true, claim: false });
    if (r.ok) expect(formatPrefix(r.prefix)).toBe('10.42.0.7/32');
  });

  it.each([
    ['its auto address', '10.42.0.50/32'],
    ['a free address', '10.42.0.99/32'],
    ['another node’s address', '10.42.0.12/32'],
  ])('refuses %s as outside-policy, naming the signed address', (_what, announced) => {
    const r = check(announced);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe('outside-policy');
    expect(r.message).toContain('signed roster gives the peer 10.42.0.7');
    expect(r.message).toContain(announced);
  });

  it('a static claim the peer held before does not count either', () => {
    const r = check('10.42.0.9/32', { ownership: ownership({ peerClaim: ip('10.42.0.9') }) });
    expect(r).toMatchObject({ ok: false, reason: 'outside-policy' });
  });

  it('still accepts a subnet in allowed_routes, outside or inside the network prefix', () => {
    expect(check('192.168.50.0/24')).toMatchObject({ ok: true, claim: false });
    expect(check('192.168.50.128/25')).toMatchObject({ ok: true, claim: false });
    // Local config wins: an admin of this node may let the peer route part of the overlay.
    expect(check('10.42.0.64/26', { allowedRoutes: [cidr('10.42.0.64/26')] })).toMatchObject({ ok: true, claim: false });
  });

  it('a prefix wider than a host route inside the network is still refused', () => {
    expect(check('10.42.0.0/24')).toMatchObject({ ok: false, reason: 'outside-policy' });
  });

  it("this node's own address is still a conflict, even when signed to the peer", () => {
    const r = check('10.42.0.1/32', { ownership: ownership({ peerSigned: ip('10.42.0.1') }) });
    expect(r).toMatchObject({ ok: false, reason: 'conflict' });
  });

  it('without a signed address the auto address is accepted as before (the rule only applies to members)', () => {
    expect(check('10.42.0.50/32', { ownership: ownership({ peerSigned: undefined }) })).toMatchObject({ ok: true, claim: false });
  });

  it('IPv6: the signed address only', () => {
    const v6 = {
      networkPrefix: cidr('fd00:42::/64'),
      allowedRoutes: [],
      ownership: ownership({ local: ip('fd00:42::1'), peerAuto: ip('fd00:42::50'), peerSigned: ip('fd00:42::7') }),
    };
    expect(check('fd00:42::7/128', v6)).toMatchObject({ ok: true });
    expect(check('fd00:42::50/128', v6)).toMatchObject({ ok: false, reason: 'outside-policy' });
  });
});
