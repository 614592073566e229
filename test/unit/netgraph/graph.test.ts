import { describe, expect, it } from 'vitest';
import { formatPrefix, parseIp } from '../../../src/netgraph/addr.js';
import { NetGraph } from '../../../src/netgraph/graph.js';
import { cidr } from '../../helpers/addresses.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('NetGraph', () => {
  it('keeps one independent table per network', () => {
    const g = new NetGraph();
    expect(g.table('corp')).toBeUndefined();
    const corp = g.ensure('corp');
    expect(g.ensure('corp')).toBe(corp);
    g.ensure('lab').add(cidr('10.42.0.0/24'), B, 1);
    corp.add(cidr('10.42.0.0/24'), A, 1);
    expect(g.table('corp')!.lookup(parseIp('10.42.0.1')!)).toBe(A);
    expect(g.table('lab')!.lookup(parseIp('10.42.0.1')!)).toBe(B);
    expect(g.networks()).toEqual(['corp', 'lab']);
  });

  it('removes a peer from every network and reports what went', () => {
    const g = new NetGraph();
    g.ensure('lab').add(cidr('10.9.0.5/32'), A, 1);
    g.ensure('corp').add(cidr('10.42.0.7/32'), A, 1);
    g.ensure('corp').add(cidr('192.168.50.0/24'), A, 1);
    g.ensure('corp').add(cidr('10.42.0.8/32'), B, 1);
    const removed = g.removePeer(A).map((r) => `${r.network} ${formatPrefix(r.prefix)}`);
    expect(removed).toEqual(['corp 10.42.0.7/32', 'corp 192.168.50.0/24', 'lab 10.9.0.5/32']);
    expect(g.removePeer(A)).toEqual([]);
    expect(g.routeCount('corp')).toBe(1);
    expect(g.routeCount('lab')).toBe(0);
    expect(g.routeCount('nowhere')).toBe(0);
  });

  it('lists all routes as text for vpnctl, sorted by network then route order', () => {
    const g = new NetGraph();
    g.ensure('lab').add(cidr('fd00::1/128'), B, 2);
    g.ensure('corp').add(cidr('10.42.0.0/24'), B, 1);
    g.ensure('corp').add(cidr('10.42.0.0/24'), A, 1);
    expect(g.routes().map((r) => ({ ...r, prefix: formatPrefix(r.prefix) }))).toEqual([
      { network: 'corp', prefix: '10.42.0.0/24', peer: A, metric: 1 },
      { network: 'corp', prefix: '10.42.0.0/24', peer: B, metric: 1 },
      { network: 'lab', prefix: 'fd00::1/128', peer: B, metric: 2 },
    ]);
    expect(g.drop('lab')).toBe(true);
    expect(g.drop('lab')).toBe(false);
    expect(g.routes().map((r) => r.network)).toEqual(['corp', 'corp']);
  });
});
