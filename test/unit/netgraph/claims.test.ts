import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/netgraph/addr.js';
import { AddressClaims } from '../../../src/netgraph/claims.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const ip = (text: string): Uint8Array => parseIp(text)!;

describe('AddressClaims', () => {
  it('records who holds an address, per network', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    expect(claims.holder('corp', ip('10.42.0.50'))).toMatchObject({ peer: FP_A, name: 'alice' });
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.50'));
    expect(claims.holder('lab', ip('10.42.0.50'))).toBeUndefined();
    expect(claims.activeClaim('lab', FP_A)).toBeUndefined();
    expect(claims.holder('corp', ip('10.42.0.51'))).toBeUndefined();
    expect(claims.activeClaim('corp', FP_B)).toBeUndefined();
  });

  it('keys addresses by value and keeps its own copy', () => {
    const claims = new AddressClaims();
    const address = ip('fd00:42::50');
    claims.claim('corp', FP_A, 'alice', address);
    address[15] = 0x99;
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('fd00:42::50'));
    // A view into a larger buffer finds the same claim.
    const buffer = new Uint8Array(20);
    buffer.set(ip('fd00:42::50'), 4);
    expect(claims.holder('corp', buffer.subarray(4))).toMatchObject({ name: 'alice' });
  });

  it('a new claim by the same peer in a network replaces its old one', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.60'));
    expect(claims.holder('corp', ip('10.42.0.50'))).toBeUndefined();
    expect(claims.holder('corp', ip('10.42.0.60'))).toMatchObject({ peer: FP_A });
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.60'));
  });

  it('claims in different networks are independent', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    claims.claim('lab', FP_A, 'alice', ip('10.43.0.50'));
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.50'));
    expect(claims.activeClaim('lab', FP_A)).toEqual(ip('10.43.0.50'));
  });

  it('release frees an address only for its holder and only for that address', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    claims.release('corp', FP_B, ip('10.42.0.50'));
    expect(claims.holder('corp', ip('10.42.0.50'))).toMatchObject({ peer: FP_A });
    claims.release('corp', FP_A, ip('10.42.0.51'));
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.50'));
    claims.release('lab', FP_A, ip('10.42.0.50'));
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.50'));
    claims.release('corp', FP_A, ip('10.42.0.50'));
    expect(claims.holder('corp', ip('10.42.0.50'))).toBeUndefined();
    expect(claims.activeClaim('corp', FP_A)).toBeUndefined();
  });

  it('markStale keeps the address reserved but no longer binds its holder, in every network', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    claims.claim('lab', FP_A, 'alice', ip('10.43.0.50'));
    claims.claim('corp', FP_B, 'bob', ip('10.42.0.70'));
    claims.markStale(FP_A);
    expect(claims.holder('corp', ip('10.42.0.50'))).toMatchObject({ peer: FP_A, name: 'alice' });
    expect(claims.holder('lab', ip('10.43.0.50'))).toMatchObject({ peer: FP_A });
    expect(claims.activeClaim('corp', FP_A)).toBeUndefined();
    expect(claims.activeClaim('lab', FP_A)).toBeUndefined();
    expect(claims.activeClaim('corp', FP_B)).toEqual(ip('10.42.0.70'));
    // The holder may move: claiming another address frees the stale one.
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.80'));
    expect(claims.holder('corp', ip('10.42.0.50'))).toBeUndefined();
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.80'));
  });

  it('a holder coming back to its stale address makes the claim active again', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    claims.markStale(FP_A);
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    expect(claims.activeClaim('corp', FP_A)).toEqual(ip('10.42.0.50'));
  });

  it('dropNetwork forgets every claim in that network only', () => {
    const claims = new AddressClaims();
    claims.claim('corp', FP_A, 'alice', ip('10.42.0.50'));
    claims.claim('lab', FP_A, 'alice', ip('10.43.0.50'));
    claims.dropNetwork('corp');
    expect(claims.holder('corp', ip('10.42.0.50'))).toBeUndefined();
    expect(claims.activeClaim('corp', FP_A)).toBeUndefined();
    expect(claims.activeClaim('lab', FP_A)).toEqual(ip('10.43.0.50'));
    claims.claim('corp', FP_B, 'bob', ip('10.42.0.50'));
    expect(claims.holder('corp', ip('10.42.0.50'))).toMatchObject({ peer: FP_B });
  });
});
