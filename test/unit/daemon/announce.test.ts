import { beforeAll, describe, expect, it } from 'vitest';
import { deriveAutoAddress } from '../../../src/config/address.js';
import type { Config } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer } from '../../../src/config/write.js';
import { DEFAULT_METRIC, type RouteAnnouncement } from '../../../src/control/messages.js';
import { generateIdentity } from '../../../src/crypto/identity.js';
import { announcementsFor, diffAnnouncements, ownHostRoute, peerInNetwork } from '../../../src/daemon/announce.js';
import { formatIp } from '../../../src/netgraph/addr.js';

let fingerprint: string;

beforeAll(async () => {
  fingerprint = (await generateIdentity('self', { now: new Date('2026-01-01T00:00:00Z') })).fingerprint;
});

function config(): Config {
  return newConfig('/etc/vibepn/config.toml', {
    homeDir: '/home/test',
    networks: [
      newNetwork('corp', '10.42.0.0/24', { routes: ['192.168.7.0/24', 'fd00:9::/64'] }),
      newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.5' }),
      newNetwork('quiet', '10.44.0.0/24', { export: false, routes: ['192.168.9.0/24'] }),
      newNetwork('v6', 'fd00:42::/64'),
    ],
  });
}

const routes = (...prefixes: string[]): RouteAnnouncement[] => prefixes.map((prefix) => ({ prefix, metric: DEFAULT_METRIC }));

describe('ownHostRoute', () => {
  it('is the /32 or /128 of the static address, or of the auto address derived from the fingerprint', () => {
    const cfg = config();
    const corp = cfg.networks.get('corp')!;
    expect(ownHostRoute(corp, fingerprint)).toBe(`${formatIp(deriveAutoAddress('corp', corp.prefix, fingerprint))}/32`);
    expect(ownHostRoute(cfg.networks.get('lab')!, fingerprint)).toBe('10.43.0.5/32');
    const v6 = cfg.networks.get('v6')!;
    expect(ownHostRoute(v6, fingerprint)).toBe(`${formatIp(deriveAutoAddress('v6', v6.prefix, fingerprint))}/128`);
  });
});

describe('announcementsFor', () => {
  it('announces, per exported network the peer is in, our own host route first and then the extra routes', () => {
    const cfg = config();
    const peer = newPeer('alice', ['corp', 'lab', 'quiet']);
    const out = announcementsFor(cfg, peer, fingerprint);
    expect([...out.keys()]).toEqual(['corp', 'lab']);
    expect(out.get('corp')).toEqual(routes(ownHostRoute(cfg.networks.get('corp')!, fingerprint), '192.168.7.0/24', 'fd00:9::/64'));
    expect(out.get('lab')).toEqual(routes('10.43.0.5/32'));
  });

  it('never announces the whole network prefix', () => {
    const out = announcementsFor(config(), null, fingerprint);
    const all = [...out.values()].flat().map((r) => r.prefix);
    for (const prefix of ['10.42.0.0/24', '10.43.0.0/24', 'fd00:42::/64']) expect(all).not.toContain(prefix);
  });

  it('announces nothing to a peer that shares no exported network', () => {
    expect(announcementsFor(config(), newPeer('bob', ['quiet']), fingerprint).size).toBe(0);
    expect(announcementsFor(config(), newPeer('bob', []), fingerprint).size).toBe(0);
  });

  it('announces every exported network to an unknown peer', () => {
    expect([...announcementsFor(config(), null, fingerprint).keys()]).toEqual(['corp', 'lab', 'v6']);
  });

  it('peerInNetwork: unknown peers are in every network, configured ones in their list', () => {
    expect(peerInNetwork(null, 'anything')).toBe(true);
    expect(peerInNetwork(newPeer('a', ['corp']), 'corp')).toBe(true);
    expect(peerInNetwork(newPeer('a', ['corp']), 'lab')).toBe(false);
  });
});

describe('diffAnnouncements', () => {
  const map = (entries: Record<string, RouteAnnouncement[]>) => new Map(Object.entries(entries));

  it('is empty when nothing changed', () => {
    const same = map({ corp: routes('10.42.0.7/32', '192.168.7.0/24') });
    expect(diffAnnouncements(same, map({ corp: routes('10.42.0.7/32', '192.168.7.0/24') }))).toEqual({ announce: new Map(), withdraw: [] });
  });

  it('announces only the routes that are new in each network and withdraws those that are gone', () => {
    const before = map({ corp: routes('10.42.0.7/32', '192.168.7.0/24') });
    const after = map({ corp: routes('10.42.0.7/32', '192.168.8.0/24') });
    expect(diffAnnouncements(before, after)).toEqual({
      announce: map({ corp: routes('192.168.8.0/24') }),
      withdraw: [{ network: 'corp', prefix: '192.168.7.0/24' }],
    });
  });

  it('announces a whole network that is new and withdraws every route of one that is gone', () => {
    const before = map({ corp: routes('10.42.0.7/32'), lab: routes('10.43.0.5/32', '192.168.9.0/24') });
    const after = map({ corp: routes('10.42.0.7/32'), home: routes('fd00:7::5/128') });
    expect(diffAnnouncements(before, after)).toEqual({
      announce: map({ home: routes('fd00:7::5/128') }),
      withdraw: [
        { network: 'lab', prefix: '10.43.0.5/32' },
        { network: 'lab', prefix: '192.168.9.0/24' },
      ],
    });
  });

  it('re-announces a route whose metric changed without withdrawing it', () => {
    const before = map({ corp: [{ prefix: '192.168.7.0/24', metric: 1 }] });
    const after = map({ corp: [{ prefix: '192.168.7.0/24', metric: 10 }] });
    expect(diffAnnouncements(before, after)).toEqual({ announce: map({ corp: [{ prefix: '192.168.7.0/24', metric: 10 }] }), withdraw: [] });
  });

  it('moves a peer between two real configs: a network stops being exported, a route is added', () => {
    const before = config();
    const after = newConfig('/etc/vibepn/config.toml', {
      homeDir: '/home/test',
      networks: [
        newNetwork('corp', '10.42.0.0/24', { routes: ['192.168.7.0/24', 'fd00:9::/64', '172.16.0.0/12'] }),
        newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.5', export: false }),
      ],
    });
    const peer = newPeer('alice', ['corp', 'lab']);
    const diff = diffAnnouncements(announcementsFor(before, peer, fingerprint), announcementsFor(after, peer, fingerprint));
    expect(diff).toEqual({ announce: map({ corp: routes('172.16.0.0/12') }), withdraw: [{ network: 'lab', prefix: '10.43.0.5/32' }] });
  });
});
