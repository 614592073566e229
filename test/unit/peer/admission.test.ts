import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { generateIdentity, type GeneratedIdentity } from '../../../src/crypto/identity.js';
import { TrustStore } from '../../../src/crypto/trust.js';
import { newPeer } from '../../../src/config/write.js';
import type { PeerConfig } from '../../../src/config/types.js';
import { admitInbound, admitOutbound, normalizeHost, type InboundCheck } from '../../../src/peer/admission.js';
import { distinctIdentities } from '../../helpers/identities.js';


let alice: GeneratedIdentity;
let bob: GeneratedIdentity;
let self: GeneratedIdentity;
let expired: GeneratedIdentity;
let trust: TrustStore;
const der = (id: GeneratedIdentity) => new Uint8Array(new X509Certificate(id.certPem).raw);

beforeAll(async () => {
  [alice, bob, self] = await distinctIdentities(['alice', 'bob', 'self']);
  expired = await generateIdentity('alice', { now: new Date(Date.now() - 10 * 86400_000), validityDays: 2 });
});

beforeEach(() => {
  trust = new TrustStore(join(mkdtempSync(join(tmpdir(), 'vibepn-adm-')), 'known_peers.json'));
});

const outbound = (peer: PeerConfig, id: GeneratedIdentity | null | Uint8Array) =>
  admitOutbound({ peer, certDer: id instanceof Uint8Array || id === null ? id : der(id), trust, localFingerprint: self.fingerprint });

/** An inbound connection from `remoteHost`; peers' hosts are their configured IP literals. */
function inbound(id: GeneratedIdentity, peers: PeerConfig[], options: Partial<InboundCheck> = {}) {
  return admitInbound({
    certDer: der(id),
    peers,
    trust,
    acceptUnknown: false,
    remoteHost: '203.0.113.99',
    hostsOf: (p) => (p.address ? [p.address.host] : []),
    ...options,
  });
}

describe('admitOutbound', () => {
  it('accepts the pinned certificate and refuses another', () => {
    const peer = newPeer('alice', ['corp'], { fingerprint: alice.fingerprint });
    expect(outbound(peer, alice)).toMatchObject({ ok: true, how: 'pinned', name: 'alice' });
    const refused = outbound(peer, bob);
    expect(refused).toMatchObject({ ok: false, reason: 'pin_mismatch' });
    expect(!refused.ok && refused.message).toContain(alice.fingerprint);
  });

  it('learns an unpinned peer on first use, then refuses a changed key', async () => {
    const peer = newPeer('alice', ['corp'], { address: '192.0.2.10:51820' });
    expect(outbound(peer, alice)).toMatchObject({ ok: true, how: 'first-use' });
    // The verdict alone writes nothing: the caller learns before it lets the peer in.
    expect(trust.get('alice')).toBeUndefined();
    await trust.learn('alice', alice.fingerprint);
    expect(trust.get('alice')).toBe(alice.fingerprint);
    expect(outbound(peer, alice)).toMatchObject({ ok: true, how: 'known' });
    expect(outbound(peer, bob)).toMatchObject({ ok: false, reason: 'tofu_mismatch' });
  });

  it('refuses an address that leads back to this node, naming the fix', () => {
    const peer = newPeer('alice', ['corp'], { address: '192.0.2.10:51820' });
    const refused = outbound(peer, self);
    expect(refused).toMatchObject({ ok: false, reason: 'cert_invalid' });
    expect(!refused.ok && refused.message).toMatch(/leads back to this node.*fix peers\.address for alice/);
    expect(trust.get('alice')).toBeUndefined();
  });

  it('refuses an expired certificate even when pinned', () => {
    const peer = newPeer('alice', ['corp'], { fingerprint: expired.fingerprint });
    const refused = outbound(peer, expired);
    expect(refused).toMatchObject({ ok: false, reason: 'cert_expired' });
    expect(!refused.ok && refused.message).toContain('expired');
  });

  it('refuses a missing or unreadable certificate', () => {
    const peer = newPeer('alice', ['corp'], { address: '192.0.2.10:51820' });
    expect(outbound(peer, null)).toMatchObject({ ok: false, reason: 'cert_invalid' });
    expect(outbound(peer, new Uint8Array([0x30, 0x03, 1, 2, 3]))).toMatchObject({ ok: false, reason: 'cert_invalid' });
  });
});

describe('admitInbound', () => {
  it('accepts a pinned fingerprint whatever the certificate CN says', () => {
    const peers = [newPeer('laptop', ['corp'], { fingerprint: alice.fingerprint })];
    expect(inbound(alice, peers)).toMatchObject({ ok: true, name: 'laptop', how: 'pinned' });
  });

  it('accepts a fingerprint learned earlier for an unpinned peer, from anywhere', async () => {
    await trust.learn('laptop', alice.fingerprint);
    const peers = [newPeer('laptop', ['corp'], { address: '192.0.2.10:51820' })];
    expect(inbound(alice, peers)).toMatchObject({ ok: true, name: 'laptop', how: 'known' });
  });

  it('never trusts a certificate name: a stranger claiming an unpinned peer is refused', () => {
    // The attack: peer "alice" is configured without a fingerprint; anyone anywhere makes a
    // self-signed certificate with CN "alice" and connects.
    const peers = [newPeer('alice', ['corp'], { address: '192.0.2.10:51820' })];
    const refused = inbound(alice, peers);
    expect(refused).toMatchObject({ ok: false, reason: 'unknown_fingerprint' });
    expect(!refused.ok && refused.message).toMatch(/claims the name 'alice'.*not pinned.*came from 203\.0\.113\.99.*192\.0\.2\.10:51820.*pin its fingerprint/);
    expect(trust.get('alice')).toBeUndefined();
    // With accept_unknown_peers it gets in as an unknown peer, never under the configured name.
    const unknown = inbound(alice, peers, { acceptUnknown: true });
    expect(unknown).toMatchObject({ ok: true, peer: null, how: 'unknown-accepted' });
    expect(unknown.ok && unknown.name).toBe(`unknown-${alice.fingerprint.slice(0, 8)}`);
  });

  it("learns an unpinned peer inbound only from its configured address's IP", () => {
    const peers = [newPeer('alice', ['corp'], { address: '192.0.2.10:51820' })];
    expect(inbound(alice, peers, { remoteHost: '192.0.2.10' })).toMatchObject({ ok: true, name: 'alice', how: 'first-use' });
    // IPv4-mapped IPv6, as a dual-stack socket reports it, is the same host.
    expect(inbound(alice, peers, { remoteHost: '::ffff:192.0.2.10' })).toMatchObject({ ok: true, name: 'alice', how: 'first-use' });
    // The CN does not matter there either: the address is what was proven.
    expect(inbound(bob, peers, { remoteHost: '192.0.2.10' })).toMatchObject({ ok: true, name: 'alice', how: 'first-use' });
    expect(normalizeHost('::FFFF:192.0.2.10')).toBe('192.0.2.10');
    expect(normalizeHost('FD00::1')).toBe('fd00::1');
  });

  it('picks among unpinned peers behind one IP by CN, and refuses when that does not decide', () => {
    const peers = [newPeer('alice', ['corp'], { address: '192.0.2.10:51820' }), newPeer('bob', ['corp'], { address: '192.0.2.10:51821' })];
    expect(inbound(bob, peers, { remoteHost: '192.0.2.10' })).toMatchObject({ ok: true, name: 'bob', how: 'first-use' });
    expect(inbound(self, peers, { remoteHost: '192.0.2.10' })).toMatchObject({ ok: false, reason: 'unknown_fingerprint' });
  });

  it('refuses a new key from a learned peer’s address (a TOFU mismatch, not a second first use)', async () => {
    await trust.learn('alice', alice.fingerprint);
    const peers = [newPeer('alice', ['corp'], { address: '192.0.2.10:51820' })];
    expect(inbound(bob, peers, { remoteHost: '192.0.2.10' })).toMatchObject({ ok: false, reason: 'unknown_fingerprint' });
    const changed = inbound(await generateIdentity('alice'), peers);
    expect(changed).toMatchObject({ ok: false, reason: 'tofu_mismatch' });
  });

  it('refuses a CN that names a pinned peer with another key', () => {
    const peers = [newPeer('alice', ['corp'], { fingerprint: bob.fingerprint })];
    expect(inbound(alice, peers)).toMatchObject({ ok: false, reason: 'pin_mismatch' });
  });

  it('refuses unknown certificates unless accept_unknown_peers is set', () => {
    const peers = [newPeer('carol', ['corp'], { fingerprint: bob.fingerprint })];
    const refused = inbound(alice, peers);
    expect(refused).toMatchObject({ ok: false, reason: 'unknown_fingerprint' });
    expect(!refused.ok && refused.message).toContain('accept_unknown_peers');
    expect(inbound(alice, peers, { acceptUnknown: true })).toMatchObject({ ok: true, peer: null, name: 'alice', how: 'unknown-accepted' });
  });

  it('refuses rather than trusts when the known-peers file is corrupt', () => {
    writeFileSync(trust.path, '{not json', { mode: 0o600 });
    const peers = [newPeer('alice', ['corp'], { address: '192.0.2.10:51820' })];
    expect(inbound(alice, peers, { remoteHost: '192.0.2.10' })).toMatchObject({ ok: false, reason: 'tofu_mismatch' });
  });
});
