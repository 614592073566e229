import { describe, expect, it } from 'vitest';
import { type Prefix, formatPrefix } from '../../../src/netgraph/addr.js';
import { type Route, RouteTable } from '../../../src/netgraph/table.js';
import { cidr, ip } from '../../helpers/addresses.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

function describeRoute(r: Route | undefined): string {
  return r ? `${formatPrefix(r.prefix)} via ${r.peer.slice(0, 8)} metric ${r.metric}` : 'none';
}

describe('RouteTable', () => {
  it('prefers the host route over the /24 it lies in', () => {
    const t = new RouteTable();
    t.add(cidr('10.42.0.0/24'), A, 1);
    t.add(cidr('10.42.0.7/32'), B, 1);
    expect(t.lookup(ip('10.42.0.7'))).toBe(B);
    expect(t.lookup(ip('10.42.0.8'))).toBe(A);
    expect(t.lookup(ip('10.43.0.7'))).toBeUndefined();
    expect(describeRoute(t.lookupRoute(ip('10.42.0.7')))).toBe(`10.42.0.7/32 via bbbbbbbb metric 1`);
  });

  it('uses a /0 default route only when nothing more specific matches', () => {
    const t = new RouteTable();
    t.add(cidr('0.0.0.0/0'), A, 5);
    t.add(cidr('10.0.0.0/8'), B, 1);
    expect(t.lookup(ip('192.0.2.1'))).toBe(A);
    expect(t.lookup(ip('255.255.255.255'))).toBe(A);
    expect(t.lookup(ip('10.1.2.3'))).toBe(B);
    t.add(cidr('::/0'), C, 1);
    expect(t.lookup(ip('2001:db8::1'))).toBe(C);
  });

  it('breaks ties on the same prefix by metric, then by lowest fingerprint', () => {
    const t = new RouteTable();
    t.add(cidr('10.42.0.0/24'), A, 3);
    t.add(cidr('10.42.0.0/24'), B, 2);
    expect(t.lookup(ip('10.42.0.9'))).toBe(B);
    t.add(cidr('10.42.0.0/24'), C, 2);
    expect(t.lookup(ip('10.42.0.9'))).toBe(B); // equal metric: 'b…' < 'c…'
    expect(t.add(cidr('10.42.0.0/24'), A, 2)).toBe(true); // re-add updates the metric
    expect(t.lookup(ip('10.42.0.9'))).toBe(A);
    expect(t.add(cidr('10.42.0.0/24'), A, 2)).toBe(false); // no change
    expect(t.size).toBe(3);
    // The order of arrival must not matter: every node must pick the same winner.
    const other = new RouteTable();
    other.add(cidr('10.42.0.0/24'), C, 2);
    other.add(cidr('10.42.0.0/24'), A, 2);
    other.add(cidr('10.42.0.0/24'), B, 2);
    expect(other.lookup(ip('10.42.0.9'))).toBe(A);
  });

  it('promotes the next best route when the winner withdraws', () => {
    const t = new RouteTable();
    t.add(cidr('10.42.0.0/24'), A, 1);
    t.add(cidr('10.42.0.0/24'), B, 2);
    t.add(cidr('10.42.0.7/32'), C, 9);
    expect(t.lookup(ip('10.42.0.7'))).toBe(C);
    expect(t.withdraw(cidr('10.42.0.7/32'), C)).toBe(true);
    expect(t.lookup(ip('10.42.0.7'))).toBe(A);
    expect(t.withdraw(cidr('10.42.0.0/24'), A)).toBe(true);
    expect(t.lookup(ip('10.42.0.7'))).toBe(B);
    expect(t.withdraw(cidr('10.42.0.0/24'), A)).toBe(false);
    expect(t.withdraw(cidr('10.42.0.0/25'), B)).toBe(false);
    expect(t.withdraw(cidr('10.42.0.0/24'), B)).toBe(true);
    expect(t.lookup(ip('10.42.0.7'))).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it('removes all routes of one peer and keeps the others', () => {
    const t = new RouteTable();
    t.add(cidr('10.42.0.1/32'), A, 1);
    t.add(cidr('10.42.0.0/24'), A, 1);
    t.add(cidr('fd00::1/128'), A, 1);
    t.add(cidr('10.42.0.0/24'), B, 1);
    t.add(cidr('10.42.0.2/32'), B, 1);
    expect(t.peerPrefixes(A).map(formatPrefix)).toEqual(['10.42.0.0/24', '10.42.0.1/32', 'fd00::1/128']);
    expect(t.removePeer(A)).toBe(3);
    expect(t.removePeer(A)).toBe(0);
    expect(t.size).toBe(2);
    expect(t.lookup(ip('10.42.0.1'))).toBe(B);
    expect(t.lookup(ip('fd00::1'))).toBeUndefined();
    expect(t.routes().map((r) => `${formatPrefix(r.prefix)} ${r.peer[0]}`)).toEqual(['10.42.0.0/24 b', '10.42.0.2/32 b']);
  });

  it('handles IPv6 prefixes of every granularity', () => {
    const t = new RouteTable();
    t.add(cidr('fd00::/8'), A, 1);
    t.add(cidr('fd00:1234::/32'), B, 1);
    t.add(cidr('fd00:1234:5678::/47'), C, 1);
    t.add(cidr('fd00:1234:5678::1/128'), A, 1);
    expect(t.lookup(ip('fd00:1234:5678::1'))).toBe(A);
    expect(t.lookup(ip('fd00:1234:5678::2'))).toBe(C);
    expect(t.lookup(ip('fd00:1234:5679::2'))).toBe(C); // bit 47 is 1: still inside the /47
    expect(t.lookup(ip('fd00:1234:567a::2'))).toBe(B);
    expect(t.lookup(ip('fdff::1'))).toBe(A);
    expect(t.lookup(ip('fe80::1'))).toBeUndefined();
    expect(describeRoute(t.lookupRoute(ip('fd00:1234:5679::2')))).toBe(`fd00:1234:5678::/47 via cccccccc metric 1`);
  });

  it('keeps IPv4 and IPv6 apart', () => {
    const t = new RouteTable();
    t.add(cidr('0.0.0.0/0'), A, 1);
    expect(t.lookup(ip('::'))).toBeUndefined();
    expect(t.lookup(ip('::ffff:10.0.0.1'))).toBeUndefined();
    t.add(cidr('::/0'), B, 1);
    expect(t.lookup(ip('0.0.0.0'))).toBe(A);
    expect(t.lookup(ip('::'))).toBe(B);
    // Same leading bytes, different families.
    t.add(cidr('10.0.0.0/8'), C, 1);
    expect(t.lookup(ip('a00::1'))).toBe(B);
    expect(t.lookup(new Uint8Array(5))).toBeUndefined();
    expect(t.withdraw(cidr('::/0'), A)).toBe(false);
  });

  it('looks up an address inside a larger buffer without copying it', () => {
    const t = new RouteTable();
    t.add(cidr('10.42.0.7/32'), A, 1);
    t.add(cidr('fd00::7/128'), B, 1);
    const packet4 = new Uint8Array(20);
    packet4.set(ip('10.42.0.7'), 16);
    expect(t.lookupAt(packet4, 16, 4)).toBe(A);
    expect(t.lookupAt(packet4, 17, 4)).toBeUndefined(); // would read past the end
    const packet6 = new Uint8Array(40);
    packet6.set(ip('fd00::7'), 24);
    expect(t.lookupAt(packet6, 24, 6)).toBe(B);
    expect(t.lookupAt(packet6, 8, 6)).toBeUndefined();
  });

  it('sorts routes() by family, prefix, metric, peer', () => {
    const t = new RouteTable();
    t.add(cidr('fd00::/64'), A, 1);
    t.add(cidr('10.42.0.0/24'), C, 1);
    t.add(cidr('10.42.0.0/24'), B, 1);
    t.add(cidr('10.42.0.0/24'), A, 2);
    t.add(cidr('10.0.0.0/8'), A, 1);
    t.add(cidr('10.42.0.0/16'), A, 1);
    expect(t.routes().map((r) => `${formatPrefix(r.prefix)} ${r.metric} ${r.peer[0]}`)).toEqual([
      '10.0.0.0/8 1 a',
      '10.42.0.0/16 1 a',
      '10.42.0.0/24 1 b',
      '10.42.0.0/24 1 c',
      '10.42.0.0/24 2 a',
      'fd00::/64 1 a',
    ]);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.routes()).toEqual([]);
    expect(t.lookup(ip('10.42.0.1'))).toBeUndefined();
  });

  it('does not let a caller move a route by reusing its prefix buffer', () => {
    const t = new RouteTable();
    const p = cidr('10.42.0.0/24');
    t.add(p, A, 1);
    p.bytes[0] = 192;
    expect(t.lookup(ip('10.42.0.1'))).toBe(A);
    t.routes()[0]!.prefix.bytes[0] = 11;
    expect(t.lookup(ip('10.42.0.1'))).toBe(A);
  });

  it('refuses malformed prefixes and metrics with a message saying why', () => {
    const t = new RouteTable();
    const hostBits: Prefix = { family: 4, bytes: ip('10.42.0.7'), length: 24 };
    expect(() => t.add(hostBits, A, 1)).toThrow(/10\.42\.0\.7\/24 has host bits set/);
    expect(() => t.add({ family: 4, bytes: ip('10.0.0.0'), length: 33 }, A, 1)).toThrow(/length 33 must be 0\.\.32/);
    expect(() => t.add({ family: 6, bytes: ip('10.0.0.0'), length: 8 }, A, 1)).toThrow(/family 6 but 4 address bytes/);
    expect(() => t.add(cidr('10.0.0.0/8'), A, -1)).toThrow(/metric -1 .* must be an integer 0\.\.65535/);
    expect(() => t.add(cidr('10.0.0.0/8'), A, 65536)).toThrow(/metric 65536/);
    expect(() => t.add(cidr('10.0.0.0/8'), '', 1)).toThrow(/peer must be a non-empty/);
    expect(t.size).toBe(0);
  });
});

describe('RouteTable lookups across changes (the index is patched or rebuilt between lookups)', () => {
  it('answers at the very ends of the address space', () => {
    const t = new RouteTable();
    t.add(cidr('0.0.0.0/32'), A, 1);
    t.add(cidr('255.255.255.255/32'), B, 1);
    t.add(cidr('128.0.0.0/1'), C, 1);
    t.add(cidr('::/128'), A, 1);
    t.add(cidr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'), B, 1);
    t.add(cidr('8000::/1'), C, 1);
    const expectations = (): [string, string | undefined][] => [
      ['0.0.0.0', A],
      ['0.0.0.1', undefined],
      ['127.255.255.255', undefined],
      ['128.0.0.0', C],
      ['255.255.255.254', C],
      ['255.255.255.255', B],
      ['::', A],
      ['::1', undefined],
      ['7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', undefined],
      ['8000::', C],
      ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', C],
      ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', B],
    ];
    for (const [address, peer] of expectations()) expect(t.lookup(ip(address)), address).toBe(peer);
    t.withdraw(cidr('128.0.0.0/1'), C);
    t.withdraw(cidr('8000::/1'), C);
    expect(t.lookup(ip('255.255.255.254'))).toBeUndefined();
    expect(t.lookup(ip('255.255.255.255'))).toBe(B);
    expect(t.lookup(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'))).toBeUndefined();
    expect(t.lookup(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))).toBe(B);
    expect(t.lookup(ip('::'))).toBe(A);
  });

  it('sees every change made between two lookups, one at a time or in a batch', () => {
    const t = new RouteTable();
    t.add(cidr('10.0.0.0/8'), A, 1);
    for (let i = 0; i < 50; i++) {
      t.add(cidr(`10.0.${i}.1/32`), B, 1);
      expect(t.lookup(ip(`10.0.${i}.1`))).toBe(B);
      expect(t.lookup(ip(`10.0.${i}.2`))).toBe(A);
    }
    // A batch bigger than the table patches: the next lookup starts over.
    for (let i = 0; i < 2000; i++) t.add(cidr(`10.1.${i >> 8}.${i & 0xff}/32`), C, 1);
    for (let i = 0; i < 50; i += 7) t.withdraw(cidr(`10.0.${i}.1/32`), B);
    expect(t.lookup(ip('10.1.7.207'))).toBe(C);
    expect(t.lookup(ip('10.0.7.1'))).toBe(A);
    expect(t.lookup(ip('10.0.8.1'))).toBe(B);
    t.withdraw(cidr('10.0.0.0/8'), A);
    expect(t.lookup(ip('10.0.7.1'))).toBeUndefined();
    expect(t.lookup(ip('10.1.7.207'))).toBe(C);
    t.clear();
    expect(t.lookup(ip('10.1.7.207'))).toBeUndefined();
    t.add(cidr('10.1.7.207/32'), A, 1);
    expect(t.lookup(ip('10.1.7.207'))).toBe(A);
  });

  it('keeps the best peer current when it changes on a prefix that stays routed', () => {
    const t = new RouteTable();
    t.add(cidr('fd00::/64'), B, 2);
    expect(t.lookup(ip('fd00::1'))).toBe(B);
    t.add(cidr('fd00::/64'), A, 3);
    expect(t.lookup(ip('fd00::1'))).toBe(B);
    t.add(cidr('fd00::/64'), A, 1);
    expect(t.lookup(ip('fd00::1'))).toBe(A);
    t.withdraw(cidr('fd00::/64'), A);
    expect(t.lookup(ip('fd00::1'))).toBe(B);
  });
});

describe('RouteTable.routesTo (the receive path\'s source check)', () => {
  it('is true for an address inside any route of the peer, winning or not', () => {
    const t = new RouteTable();
    t.add(cidr('192.168.50.0/24'), A, 1);
    t.add(cidr('192.168.50.0/25'), B, 1);
    t.add(cidr('10.42.0.7/32'), C, 1);
    // B's /25 wins lookups, but A routes the whole /24: both may send from inside the /25.
    expect(t.lookup(ip('192.168.50.3'))).toBe(B);
    expect(t.routesTo(ip('192.168.50.3'), A)).toBe(true);
    expect(t.routesTo(ip('192.168.50.3'), B)).toBe(true);
    expect(t.routesTo(ip('192.168.50.200'), B)).toBe(false);
    // Another node's host address is not A's to send from.
    expect(t.routesTo(ip('10.42.0.7'), A)).toBe(false);
    expect(t.routesTo(ip('10.42.0.7'), C)).toBe(true);
    expect(t.routesTo(ip('fd00::1'), A)).toBe(false);
  });

  it('answers for each of many peers announcing the same prefix', () => {
    const t = new RouteTable();
    const peers = Array.from({ length: 300 }, (_, i) => i.toString(16).padStart(64, '0'));
    for (const peer of peers) t.add(cidr('10.0.0.0/8'), peer, 1);
    t.add(cidr('10.1.0.0/16'), peers[7]!, 1);
    t.add(cidr('10.1.0.0/24'), peers[7]!, 1); // inside its /16: adds nothing to what it routes
    expect(peers.every((peer) => t.routesTo(ip('10.200.0.1'), peer))).toBe(true);
    expect(t.routesTo(ip('11.0.0.1'), peers[0]!)).toBe(false);
    t.withdraw(cidr('10.0.0.0/8'), peers[7]!);
    expect(t.routesTo(ip('10.200.0.1'), peers[7]!)).toBe(false);
    expect(t.routesTo(ip('10.1.255.255'), peers[7]!)).toBe(true);
    expect(t.routesTo(ip('10.2.0.0'), peers[7]!)).toBe(false);
    expect(t.removePeer(peers[7]!)).toBe(2);
    expect(t.routesTo(ip('10.1.0.1'), peers[7]!)).toBe(false);
  });
});
