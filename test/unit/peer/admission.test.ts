import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { generateIdentity, type GeneratedIdentity } from '../../../src/crypto/identity.js';
import { TrustStore } from '../../../src/crypto/trust.js';
import { newPeer } from '../../../src/config/write.js';
import { admitInbound, admitOutbound } from '../../../src/peer/admission.js';

let alice: GeneratedIdentity;
let bob: GeneratedIdentity;
let expired: GeneratedIdentity;
let trust: TrustStore;
const der = (id: GeneratedIdentity) => new Uint8Array(new X509Certificate(id.certPem).raw);

beforeAll(async () => {
  [alice, bob] = await Promise.all([generateIdentity('alice'), generateIdentity('bob')]);
  expired = await generateIdentity('alice', { now: new Date(Date.now() - 10 * 86400_000), validityDays: 2 });
});

beforeEach(() => {
  trust = new TrustStore(join(mkdtempSync(join(tmpdir(), 'vibepn-adm-')), 'known_peers.json'));
});

describe('admitOutbound', () => {
  it('accepts the pinned certificate and refuses another', () => {
    const peer = newPeer('alice', ['corp'], { fingerprint: alice.fingerprint });
    expect(admitOutbound(peer, der(alice), trust)).toMatchObject({ ok: true, how: 'pinned', name: 'alice' });
    const refused = admitOutbound(peer, der(bob), trust);
    expect(refused).toMatchObject({ ok: false, reason: 'pin_mismatch' });
    expect(!refused.ok && refused.message).toContain(alice.fingerprint);
  });

  it('trusts an unpinned peer on first use, then refuses a changed key', () => {
    const peer = newPeer('alice', ['corp']);
    expect(admitOutbound(peer, der(alice), trust)).toMatchObject({ ok: true, how: 'first-use' });
    expect(trust.get('alice')).toBe(alice.fingerprint);
    expect(admitOutbound(peer, der(alice), trust)).toMatchObject({ ok: true, how: 'known' });
    expect(admitOutbound(peer, der(bob), trust)).toMatchObject({ ok: false, reason: 'tofu_mismatch' });
  });

  it('refuses an expired certificate even when pinned', () => {
    const peer = newPeer('alice', ['corp'], { fingerprint: expired.fingerprint });
    const refused = admitOutbound(peer, der(expired), trust);
    expect(refused).toMatchObject({ ok: false, reason: 'cert_expired' });
    expect(!refused.ok && refused.message).toContain('expired');
  });

  it('refuses a missing or unreadable certificate', () => {
    const peer = newPeer('alice', ['corp']);
    expect(admitOutbound(peer, null, trust)).toMatchObject({ ok: false, reason: 'cert_invalid' });
    expect(admitOutbound(peer, new Uint8Array([0x30, 0x03, 1, 2, 3]), trust)).toMatchObject({ ok: false, reason: 'cert_invalid' });
  });
});

describe('admitInbound', () => {
  it('accepts a pinned fingerprint whatever the certificate CN says', () => {
    const peers = [newPeer('laptop', ['corp'], { fingerprint: alice.fingerprint })];
    expect(admitInbound(der(alice), peers, trust, false)).toMatchObject({ ok: true, name: 'laptop', how: 'pinned' });
  });

  it('accepts a fingerprint learned earlier for an unpinned peer', () => {
    trust.set('laptop', alice.fingerprint);
    const peers = [newPeer('laptop', ['corp'])];
    expect(admitInbound(der(alice), peers, trust, false)).toMatchObject({ ok: true, name: 'laptop', how: 'known' });
  });

  it('matches an unpinned, never-seen peer by CN and learns it; refuses a different key later', () => {
    const peers = [newPeer('alice', ['corp'])];
    expect(admitInbound(der(alice), peers, trust, false)).toMatchObject({ ok: true, name: 'alice', how: 'first-use' });
    const impostor = admitInbound(der(expired), peers, trust, false);
    expect(impostor.ok).toBe(false);
  });

  it('refuses a CN that names a pinned peer with another key', () => {
    const peers = [newPeer('alice', ['corp'], { fingerprint: bob.fingerprint })];
    expect(admitInbound(der(alice), peers, trust, false)).toMatchObject({ ok: false, reason: 'pin_mismatch' });
  });

  it('refuses unknown certificates unless accept_unknown_peers is set', () => {
    const peers = [newPeer('carol', ['corp'], { fingerprint: bob.fingerprint })];
    const refused = admitInbound(der(alice), peers, trust, false);
    expect(refused).toMatchObject({ ok: false, reason: 'unknown_fingerprint' });
    expect(!refused.ok && refused.message).toContain('accept_unknown_peers');
    expect(admitInbound(der(alice), peers, trust, true)).toMatchObject({ ok: true, peer: null, name: 'alice', how: 'unknown-accepted' });
  });

  it('refuses rather than trusts when the known-peers file is corrupt', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(trust.path, '{not json', { mode: 0o600 });
    expect(admitInbound(der(alice), [newPeer('alice', ['corp'])], trust, false)).toMatchObject({ ok: false, reason: 'tofu_mismatch' });
  });
});
