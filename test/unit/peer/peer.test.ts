import { beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { deriveAutoAddress } from '../../../src/config/address.js';
import { newPeer } from '../../../src/config/write.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { formatPrefix, parseCidr, prefixContains, type Prefix } from '../../../src/netgraph/addr.js';
import { PeerManager } from '../../../src/peer/manager.js';
import { Peer } from '../../../src/peer/peer.js';
import { distinctIdentities } from '../../helpers/identities.js';


function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

let fpA: string;
let fpB: string;

beforeAll(async () => {
  const now = new Date('2026-01-01T00:00:00Z');
  [fpA, fpB] = (await distinctIdentities(['alice', 'bob'], { now })).map((g) => g.fingerprint) as [string, string];
});

describe('Peer.autoAddressIn', () => {
  it('is the address config/address.ts derives from the network name and the peer’s fingerprint', () => {
    const peer = new Peer(null, 'alice', fpA);
    for (const text of ['10.42.0.0/24', '10.0.0.0/8', 'fd00:42::/64']) {
      const net = prefix(text);
      expect(peer.autoAddressIn('corp', net)).toEqual(deriveAutoAddress('corp', net, fpA));
    }
    expect(peer.autoAddressIn('home', prefix('10.42.0.0/24'))).toEqual(deriveAutoAddress('home', prefix('10.42.0.0/24'), fpA));
    expect(new Peer(null, 'bob', fpB).autoAddressIn('corp', prefix('10.42.0.0/24'))).toEqual(deriveAutoAddress('corp', prefix('10.42.0.0/24'), fpB));
  });

  it('is cached per network and prefix', () => {
    const peer = new Peer(null, 'alice', fpA);
    const corp = peer.autoAddressIn('corp', prefix('10.42.0.0/24'));
    expect(peer.autoAddressIn('corp', prefix('10.42.0.0/24'))).toBe(corp);
    // Another network name, prefix length or prefix address is another entry.
    const others = [
      peer.autoAddressIn('home', prefix('10.42.0.0/24')),
      peer.autoAddressIn('corp', prefix('10.42.0.0/16')),
      peer.autoAddressIn('corp', prefix('10.43.0.0/24')),
    ];
    for (const other of others) expect(other).not.toBe(corp);
    expect(prefixContains(prefix('10.43.0.0/24'), others[2]!)).toBe(true);
    expect(prefixContains(prefix('10.42.0.0/24'), others[2]!)).toBe(false);
  });

  // The fingerprint changes when a reload forgets a learned key and a first use learns another.
  it('follows a change of the peer’s fingerprint', () => {
    const peer = new Peer(newPeer('alice', ['corp'], { address: '192.0.2.1:51820' }), 'alice', fpA);
    const net = prefix('10.42.0.0/24');
    expect(peer.autoAddressIn('corp', net)).toEqual(deriveAutoAddress('corp', net, fpA));
    peer.fingerprint = fpB;
    expect(peer.autoAddressIn('corp', net)).toEqual(deriveAutoAddress('corp', net, fpB));
  });
});

describe('Peer policy facts', () => {
  it('a configured peer takes part only in its networks and may route its allowed_routes', () => {
    const config = newPeer('alice', ['corp', 'lab'], { fingerprint: fpA, allowedRoutes: ['192.168.7.0/24', 'fd00:9::/64'] });
    const peer = new Peer(config, 'alice', fpA);
    expect(peer.inNetwork('corp')).toBe(true);
    expect(peer.inNetwork('lab')).toBe(true);
    expect(peer.inNetwork('home')).toBe(false);
    expect(peer.allowedRoutes().map(formatPrefix)).toEqual(['192.168.7.0/24', 'fd00:9::/64']);
  });

  it('follows a config replaced on reload', () => {
    const peer = new Peer(newPeer('alice', ['corp'], { fingerprint: fpA, allowedRoutes: ['192.168.7.0/24'] }), 'alice', fpA);
    peer.config = newPeer('alice', ['home'], { fingerprint: fpA });
    expect(peer.inNetwork('corp')).toBe(false);
    expect(peer.inNetwork('home')).toBe(true);
    expect(peer.allowedRoutes()).toEqual([]);
  });

  it('an unknown peer takes part in every network but may route nothing extra', () => {
    const peer = new Peer(null, 'stranger', fpB);
    expect(peer.inNetwork('corp')).toBe(true);
    expect(peer.inNetwork('anything')).toBe(true);
    expect(peer.allowedRoutes()).toEqual([]);
  });
});

describe('Peer identity and state', () => {
  it('labels itself with its name and a short fingerprint, or the name alone while the key is unknown', () => {
    const known = new Peer(null, 'alice', fpA);
    expect(known.label).toBe(`alice (${fpA.slice(0, 8)}…)`);
    expect(known.id).toBe(fpA);
    const unlearned = new Peer(newPeer('bob', ['corp'], { address: '192.0.2.2:51820' }), 'bob', null);
    expect(unlearned.label).toBe('bob');
    expect(unlearned.id).toBe('');
  });

  it('is connected while it has an active link, with no session before its Hello', () => {
    const peer = new Peer(null, 'alice', fpA);
    expect(peer.connected).toBe(false);
    expect(peer.session).toBeNull();
    peer.active = { conn: {} as never, peer, session: null, control: null, relayed: false };
    expect(peer.connected).toBe(true);
    expect(peer.session).toBeNull();
  });

  it('reports its manager’s last error, and null without a manager', () => {
    const peer = new Peer(newPeer('bob', ['corp'], { address: '192.0.2.2:51820' }), 'bob', fpB);
    expect(peer.lastError).toBeNull();
    const { logger } = memoryLogger();
    peer.manager = new PeerManager('bob', { dial: () => {}, isConnected: () => false, clock: new FakeClock(), logger });
    peer.manager.start();
    peer.manager.dialFailed('handshake timed out');
    expect(peer.lastError).toBe('handshake timed out');
  });
});
