import { describe, expect, it } from 'vitest';
import { newPeer } from '../../../src/config/write.js';
import type { Link } from '../../../src/peer/peer.js';
import { Peer } from '../../../src/peer/peer.js';
import { PeerMap } from '../../../src/peer/peers.js';
import type { QuicConnection } from '../../../src/quic/connection.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const FP_C = 'c'.repeat(64);
const FP_D = 'd'.repeat(64);

function connect(peer: Peer): void {
  const link: Link = { conn: {} as QuicConnection, peer, session: null, control: null, relayed: false };
  peer.links.add(link);
  peer.active = link;
}

describe('PeerMap configured peers', () => {
  it('indexes a pinned peer by name and fingerprint', () => {
    const map = new PeerMap();
    const peer = map.addConfigured(newPeer('alice', ['corp'], { fingerprint: FP_A }), undefined);
    expect(peer).toBeInstanceOf(Peer);
    expect(peer.fingerprint).toBe(FP_A);
    expect(map.byConfigName('alice')).toBe(peer);
    expect(map.withFingerprint(FP_A)).toBe(peer);
    expect([...map.withKeys()]).toEqual([peer]);
  });

  it('indexes an unpinned peer by its learned fingerprint, and a pin wins over the learned one', () => {
    const map = new PeerMap();
    const learned = map.addConfigured(newPeer('bob', ['corp'], { address: '192.0.2.2:51820' }), FP_B);
    expect(learned.fingerprint).toBe(FP_B);
    expect(map.withFingerprint(FP_B)).toBe(learned);
    const pinned = map.addConfigured(newPeer('carol', ['corp'], { fingerprint: FP_C }), FP_D);
    expect(pinned.fingerprint).toBe(FP_C);
    expect(map.withFingerprint(FP_C)).toBe(pinned);
    expect(map.withFingerprint(FP_D)).toBeUndefined();
  });

  it('keeps a peer whose key is not known yet in the name index only', () => {
    const map = new PeerMap();
    const peer = map.addConfigured(newPeer('dave', ['corp'], { address: '192.0.2.4:51820' }), undefined);
    expect(peer.fingerprint).toBeNull();
    expect(map.byConfigName('dave')).toBe(peer);
    expect([...map.withKeys()]).toEqual([]);
    expect(map.configured()).toEqual([peer]);
  });

  it('lists configured peers in config order', () => {
    const map = new PeerMap();
    const names = ['zed', 'alice', 'mike'];
    for (const [i, name] of names.entries()) map.addConfigured(newPeer(name, ['corp'], { fingerprint: String(i).repeat(64) }), undefined);
    expect(map.configured().map((p) => p.name)).toEqual(names);
  });
});

describe('PeerMap.setFingerprint', () => {
  it('indexes a peer under the fingerprint it learned', () => {
    const map = new PeerMap();
    const peer = map.addConfigured(newPeer('dave', ['corp'], { address: '192.0.2.4:51820' }), undefined);
    map.setFingerprint(peer, FP_D);
    expect(peer.fingerprint).toBe(FP_D);
    expect(map.withFingerprint(FP_D)).toBe(peer);
    expect([...map.withKeys()]).toEqual([peer]);
  });

  it('moves the index from the old fingerprint to the new one', () => {
    const map = new PeerMap();
    const peer = map.addConfigured(newPeer('bob', ['corp'], { address: '192.0.2.2:51820' }), FP_B);
    map.setFingerprint(peer, FP_C);
    expect(map.withFingerprint(FP_B)).toBeUndefined();
    expect(map.withFingerprint(FP_C)).toBe(peer);
    expect(map.byConfigName('bob')).toBe(peer);
  });

  it('null forgets the key: the peer stays configured but leaves the fingerprint index', () => {
    const map = new PeerMap();
    const peer = map.addConfigured(newPeer('bob', ['corp'], { address: '192.0.2.2:51820' }), FP_B);
    map.setFingerprint(peer, null);
    expect(peer.fingerprint).toBeNull();
    expect(map.withFingerprint(FP_B)).toBeUndefined();
    expect([...map.withKeys()]).toEqual([]);
    expect(map.byConfigName('bob')).toBe(peer);
  });

  it('does not unindex another peer that now holds the old fingerprint', () => {
    const map = new PeerMap();
    const bob = map.addConfigured(newPeer('bob', ['corp'], { address: '192.0.2.2:51820' }), FP_B);
    // A reload pinned FP_B to a new entry: the index points at it now.
    const pinned = map.addConfigured(newPeer('robert', ['corp'], { fingerprint: FP_B }), undefined);
    map.setFingerprint(bob, FP_C);
    expect(map.withFingerprint(FP_B)).toBe(pinned);
    expect(map.withFingerprint(FP_C)).toBe(bob);
  });
});

describe('PeerMap unknown peers', () => {
  it('creates one unknown peer per fingerprint and returns it again', () => {
    const map = new PeerMap();
    const first = map.unknown(FP_A, 'stranger');
    expect(first.config).toBeNull();
    expect(first.name).toBe('stranger');
    expect(first.fingerprint).toBe(FP_A);
    expect(map.unknown(FP_A, 'other-cn')).toBe(first);
    const second = map.unknown(FP_B, 'stranger');
    expect(second).not.toBe(first);
    expect(map.unknowns()).toEqual([first, second]);
    expect(map.configured()).toEqual([]);
    expect(map.byConfigName('stranger')).toBeUndefined();
  });

  it('lists only unknown peers in unknowns(), and all keyed peers in withKeys()', () => {
    const map = new PeerMap();
    const alice = map.addConfigured(newPeer('alice', ['corp'], { fingerprint: FP_A }), undefined);
    const stranger = map.unknown(FP_B, 'stranger');
    expect(map.unknowns()).toEqual([stranger]);
    expect(new Set(map.withKeys())).toEqual(new Set([alice, stranger]));
  });
});

describe('PeerMap.remove and connectedCount', () => {
  it('removes a configured peer from both indexes', () => {
    const map = new PeerMap();
    const peer = map.addConfigured(newPeer('alice', ['corp'], { fingerprint: FP_A }), undefined);
    map.remove(peer);
    expect(map.byConfigName('alice')).toBeUndefined();
    expect(map.withFingerprint(FP_A)).toBeUndefined();
    expect(map.configured()).toEqual([]);
  });

  it('removes an unknown peer, and a later connection with its key makes a new one', () => {
    const map = new PeerMap();
    const peer = map.unknown(FP_B, 'stranger');
    map.remove(peer);
    expect(map.withFingerprint(FP_B)).toBeUndefined();
    expect(map.unknowns()).toEqual([]);
    expect(map.unknown(FP_B, 'stranger')).not.toBe(peer);
  });

  it('leaves alone a newer peer that took over the name or the fingerprint', () => {
    const map = new PeerMap();
    const old = map.addConfigured(newPeer('alice', ['corp'], { fingerprint: FP_A }), undefined);
    const replaced = map.addConfigured(newPeer('alice', ['corp'], { fingerprint: FP_A }), undefined);
    map.remove(old);
    expect(map.byConfigName('alice')).toBe(replaced);
    expect(map.withFingerprint(FP_A)).toBe(replaced);

    const stranger = map.unknown(FP_C, 'stranger');
    const nowConfigured = map.addConfigured(newPeer('carol', ['corp'], { fingerprint: FP_C }), undefined);
    map.remove(stranger);
    expect(map.withFingerprint(FP_C)).toBe(nowConfigured);
  });

  it('counts peers with an active session', () => {
    const map = new PeerMap();
    const alice = map.addConfigured(newPeer('alice', ['corp'], { fingerprint: FP_A }), undefined);
    map.addConfigured(newPeer('bob', ['corp'], { fingerprint: FP_B }), undefined);
    const stranger = map.unknown(FP_C, 'stranger');
    expect(map.connectedCount()).toBe(0);
    connect(alice);
    connect(stranger);
    expect(map.connectedCount()).toBe(2);
    alice.active = null;
    expect(map.connectedCount()).toBe(1);
    map.remove(stranger);
    expect(map.connectedCount()).toBe(0);
  });
});
