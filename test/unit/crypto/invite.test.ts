import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, loadIdentity, writeIdentityFiles, type Identity } from '../../../src/crypto/identity.js';
import {
  INVITE_PREFIX,
  InviteError,
  createInvite,
  encodeSignedInvite,
  parseInvite,
  type Invite,
} from '../../../src/crypto/invite.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const FIELDS = { network: 'corp', prefix: '10.42.0.0/24', address: '198.51.100.20:51820' };

let dir: string;
let alice: Identity;
let mallory: Identity;

async function makeIdentity(name: string): Promise<Identity> {
  const gen = await generateIdentity(name, { now: new Date('2026-01-01T00:00:00Z') });
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeIdentityFiles(cert, key, gen);
  return loadIdentity(cert, key);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-invite-'));
  alice = await makeIdentity('alice');
  mallory = await makeIdentity('mallory');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function inviteError(text: string, now: Date = NOW): InviteError {
  try {
    parseInvite(text, { now });
  } catch (err) {
    if (err instanceof InviteError) return err;
    throw new Error(`expected InviteError, got ${String(err)}`);
  }
  throw new Error('expected parseInvite to throw');
}

/** The decoded envelope of a signed invite, for tampering. */
function openEnvelope(text: string): { payload: string; sig: string } {
  return JSON.parse(Buffer.from(text.slice(INVITE_PREFIX.length), 'base64url').toString('utf8')) as { payload: string; sig: string };
}

function sealEnvelope(envelope: { payload: string; sig: string }): string {
  return INVITE_PREFIX + Buffer.from(JSON.stringify(envelope)).toString('base64url');
}

function validInvite(overrides: Partial<Invite> = {}): Invite {
  const parsed = parseInvite(createInvite(alice, FIELDS, { now: NOW }), { now: NOW });
  return { ...parsed.invite, ...overrides };
}

describe('signed invites', () => {
  it('round-trips every field', () => {
    const text = createInvite(alice, FIELDS, { now: NOW });
    expect(text.startsWith('vibepn1:')).toBe(true);
    expect(text).toMatch(/^vibepn1:[A-Za-z0-9_-]+$/);
    const { invite, signed } = parseInvite(text, { now: NOW });
    expect(signed).toBe(true);
    expect(invite).toEqual({
      version: 1,
      network: 'corp',
      prefix: '10.42.0.0/24',
      inviter: { name: 'alice', address: '198.51.100.20:51820', fingerprint: alice.fingerprint, cert: alice.certPem },
      issued_at: '2026-03-01T12:00:00Z',
      expires_at: '2026-03-02T12:00:00Z',
    });
  });

  it('uses the name override and the ttl', () => {
    const text = createInvite(alice, { ...FIELDS, name: 'gateway', address: '[fd00::1]:4433' }, { now: NOW, ttlSeconds: 600 });
    const { invite } = parseInvite(text, { now: NOW });
    expect(invite.inviter.name).toBe('gateway');
    expect(invite.inviter.address).toBe('[fd00::1]:4433');
    expect(invite.expires_at).toBe('2026-03-01T12:10:00Z');
  });

  it('survives surrounding whitespace and line wrapping', () => {
    const text = createInvite(alice, FIELDS, { now: NOW });
    const wrapped = `\n  ${text.slice(0, 40)}\n${text.slice(40, 100)} \r\n${text.slice(100)}\n`;
    expect(parseInvite(wrapped, { now: NOW }).invite.inviter.fingerprint).toBe(alice.fingerprint);
  });

  it('refuses to create an invite with bad fields', () => {
    expect(() => createInvite(alice, { ...FIELDS, prefix: '10.42.0.5/24' }, { now: NOW })).toThrow(/host bits/);
    expect(() => createInvite(alice, { ...FIELDS, address: 'nowhere' }, { now: NOW })).toThrow(InviteError);
    expect(() => createInvite(alice, { ...FIELDS, network: 'a b' }, { now: NOW })).toThrow(/network name/);
    expect(() => createInvite(alice, FIELDS, { now: NOW, ttlSeconds: 0 })).toThrow(/positive/);
  });

  it('applies the config loader\'s network-name and address rules', () => {
    // Whatever join can write, the daemon can load: the same rule, the same message.
    const long = 'n'.repeat(256);
    expect(() => createInvite(alice, { ...FIELDS, network: long }, { now: NOW })).toThrow(
      `cannot create invite: '${long}' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`,
    );
    expect(parseInvite(createInvite(alice, { ...FIELDS, network: 'n'.repeat(255) }, { now: NOW }), { now: NOW }).invite.network).toHaveLength(255);
    expect(() => createInvite(alice, { ...FIELDS, address: '198.51.100.20:0' }, { now: NOW })).toThrow(
      "cannot create invite: inviter address '198.51.100.20:0' is not a valid HOST:PORT (port must be a number 1..65535)",
    );
  });

  it('refuses a payload changed after signing', () => {
    const envelope = openEnvelope(createInvite(alice, FIELDS, { now: NOW }));
    const tampered = envelope.payload.replace('10.42.0.0/24', '10.43.0.0/24');
    expect(tampered).not.toBe(envelope.payload);
    const err = inviteError(sealEnvelope({ ...envelope, payload: tampered }));
    expect(err.message).toContain('signature does not verify');
    expect(err.message).toContain('new invite');
  });

  it('refuses a one-character flip anywhere in the network or address', () => {
    const envelope = openEnvelope(createInvite(alice, FIELDS, { now: NOW }));
    for (const [from, to] of [
      ['"corp"', '"corq"'],
      ['198.51.100.20', '198.51.100.21'],
      ['"alice"', '"alicf"'],
    ] as const) {
      const err = inviteError(sealEnvelope({ ...envelope, payload: envelope.payload.replace(from, to) }));
      expect(err.message).toContain('signature does not verify');
    }
  });

  it('refuses an invite re-signed with another key', () => {
    const forged = encodeSignedInvite(validInvite({ prefix: '10.99.0.0/16' }), mallory.privateKey);
    expect(inviteError(forged).message).toContain('signature does not verify');
  });

  it('refuses a certificate that does not hash to the fingerprint', () => {
    // Mallory's certificate under Alice's fingerprint, signed by Mallory: the signature would verify.
    const swapped = validInvite();
    swapped.inviter = { ...swapped.inviter, cert: mallory.certPem };
    const err = inviteError(encodeSignedInvite(swapped, mallory.privateKey));
    expect(err.message).toContain(`hashes to ${mallory.fingerprint}`);
    expect(err.message).toContain(alice.fingerprint);

    const wrongFp = validInvite();
    wrongFp.inviter = { ...wrongFp.inviter, fingerprint: mallory.fingerprint };
    expect(inviteError(encodeSignedInvite(wrongFp, alice.privateKey)).message).toContain('inconsistent');
  });

  it('refuses an expired invite, saying when and what to do', () => {
    const text = createInvite(alice, FIELDS, { now: NOW, ttlSeconds: 3600 });
    expect(parseInvite(text, { now: new Date('2026-03-01T13:00:00Z') }).signed).toBe(true);
    const err = inviteError(text, new Date('2026-03-01T13:00:01Z'));
    expect(err.message).toContain('expired at 2026-03-01T13:00:00Z');
    expect(err.message).toContain('vpnctl invite');
  });

  it('refuses an invite issued in the future beyond five minutes of skew', () => {
    const text = createInvite(alice, FIELDS, { now: new Date(NOW.getTime() + 10 * 60 * 1000) });
    expect(inviteError(text).message).toContain('in the future');
    const slightlyAhead = createInvite(alice, FIELDS, { now: new Date(NOW.getTime() + 4 * 60 * 1000) });
    expect(parseInvite(slightlyAhead, { now: NOW }).signed).toBe(true);
  });

  it('refuses signed but self-inconsistent fields', () => {
    const cases: Array<[Partial<Invite>, string]> = [
      [{ prefix: '10.42.0.0/33' }, 'not a valid CIDR'],
      [{ prefix: 'corp' }, 'not a valid CIDR'],
      [{ network: '' }, 'network name'],
      [{ issued_at: 'yesterday' }, 'issued_at'],
      [{ expires_at: '2026-03-01T11:00:00Z' }, 'expires'],
    ];
    for (const [override, fragment] of cases) {
      expect(inviteError(encodeSignedInvite(validInvite(override), alice.privateKey)).message).toContain(fragment);
    }
    const badAddress = validInvite();
    badAddress.inviter = { ...badAddress.inviter, address: '198.51.100.20' };
    expect(inviteError(encodeSignedInvite(badAddress, alice.privateKey)).message).toContain('inviter address');
  });

  it('names missing and mistyped fields', () => {
    const envelope = openEnvelope(createInvite(alice, FIELDS, { now: NOW }));
    const payload = JSON.parse(envelope.payload) as Record<string, unknown>;
    const reseal = (p: unknown): string => sealEnvelope({ payload: JSON.stringify(p), sig: envelope.sig });
    expect(inviteError(reseal({ ...payload, network: 7 })).message).toContain('network is missing or not a string');
    expect(inviteError(reseal({ ...payload, inviter: 'alice' })).message).toContain('inviter is missing');
    expect(inviteError(reseal({ ...payload, version: 2 })).message).toContain('version 2');
    expect(inviteError(sealEnvelope({ payload: envelope.payload, sig: '' })).message).toContain('signature does not verify');
    expect(inviteError(INVITE_PREFIX + Buffer.from('{"payload":1}').toString('base64url')).message).toContain('payload');
  });

  it('refuses garbage with clear messages', () => {
    expect(inviteError('').message).toContain('empty');
    expect(inviteError('vibepn1:').message).toContain('base64url');
    expect(inviteError('vibepn1:!!!!').message).toContain('base64url');
    expect(inviteError('vibepn1:' + Buffer.from('hello').toString('base64url')).message).toContain('damaged');
    expect(inviteError('vibepn2:abc').message).toContain('not supported');
    expect(inviteError('hello world').message).toContain('not an invite');
    expect(inviteError('x'.repeat(20000)).message).toContain('more than any real invite');
  });

  it('throws nothing but InviteError for 1000 random mutations', () => {
    const text = createInvite(alice, FIELDS, { now: NOW });
    const envelope = openEnvelope(text);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_{}":,[]\\ +/=%@#?';
    // Deterministic PRNG so a failure can be reproduced.
    let seed = 0x12345678;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const mutate = (s: string): string => {
      const at = rand(s.length + 1);
      switch (rand(5)) {
        case 0:
          return s.slice(0, at) + alphabet[rand(alphabet.length)]! + s.slice(at + 1);
        case 1:
          return s.slice(0, at) + s.slice(at + 1 + rand(50));
        case 2:
          return s.slice(0, at);
        case 3:
          return s.slice(0, at) + alphabet[rand(alphabet.length)]! + s.slice(at);
        default: {
          const bytes = Buffer.alloc(rand(400));
          for (let i = 0; i < bytes.length; i++) bytes[i] = rand(256);
          return INVITE_PREFIX + bytes.toString('base64url');
        }
      }
    };
    let accepted = 0;
    for (let i = 0; i < 1000; i++) {
      // Half mutate the outer text, half the signed payload inside a well-formed envelope.
      const candidate =
        i % 2 === 0 ? mutate(text) : sealEnvelope({ payload: mutate(envelope.payload), sig: i % 4 === 1 ? envelope.sig : mutate(envelope.sig) });
      try {
        const parsed = parseInvite(candidate, { now: NOW });
        // Only mutations that leave the signed content untouched may pass, and then unchanged.
        expect(parsed.invite.inviter.fingerprint).toBe(alice.fingerprint);
        accepted++;
      } catch (err) {
        expect(err).toBeInstanceOf(InviteError);
        // The catch-all wrapper would hide a bug behind an InviteError; no input should reach it.
        expect((err as Error).message).not.toContain('unexpected');
      }
    }
    expect(accepted).toBeLessThan(1000);
  });
});

describe("the original's unsigned invites", () => {
  const fp = '0123456789abcdef'.repeat(4);
  const original = {
    version: 1,
    network: 'corp',
    prefix: '10.42.0.0/24',
    inviter: { name: 'node-a', address: '198.51.100.20:51820', fingerprint: fp },
  };
  const expected: Invite = {
    version: 1,
    network: 'corp',
    prefix: '10.42.0.0/24',
    inviter: { name: 'node-a', address: '198.51.100.20:51820', fingerprint: fp, cert: '' },
    issued_at: '',
    expires_at: '',
  };

  it('accepts the original nested JSON, pretty-printed, as unsigned', () => {
    expect(parseInvite(JSON.stringify(original, null, 2) + '\n')).toEqual({ invite: expected, signed: false });
  });

  it('accepts the flat variant from the brief', () => {
    const flat = { network: 'corp', prefix: '10.42.0.0/24', peer_name: 'node-a', peer_address: '198.51.100.20:51820', peer_fingerprint: fp.toUpperCase() };
    expect(parseInvite(JSON.stringify(flat))).toEqual({ invite: expected, signed: false });
    const other = { network: 'corp', cidr: '10.42.0.0/24', node: 'node-a', endpoint: '198.51.100.20:51820', fp };
    expect(parseInvite(JSON.stringify(other)).invite).toEqual(expected);
  });

  it('accepts standard and URL-safe base64 of the JSON', () => {
    const json = JSON.stringify(original);
    expect(parseInvite(Buffer.from(json).toString('base64')).invite).toEqual(expected);
    expect(parseInvite(Buffer.from(json).toString('base64url')).invite).toEqual(expected);
  });

  it("accepts the original's vibepn:// token", () => {
    const token = `vibepn://corp@198.51.100.20:51820#${fp}?name=node-a&prefix=10.42.0.0%2F24`;
    expect(parseInvite(token)).toEqual({ invite: expected, signed: false });
    expect(inviteError(`vibepn://corp@198.51.100.20:51820#${fp}?name=node-a`).message).toContain('prefix');
    expect(inviteError('vibepn://corp').message).toContain('invalid invite token');
  });

  it('names what is missing or invalid', () => {
    const { fingerprint: _fp, ...noFingerprint } = original.inviter;
    expect(inviteError(JSON.stringify({ ...original, inviter: noFingerprint })).message).toContain('no inviter fingerprint');
    expect(inviteError(JSON.stringify({ ...original, prefix: '10.42.0.0/99' })).message).toContain('not a valid CIDR');
    expect(inviteError(JSON.stringify({ ...original, inviter: { ...original.inviter, fingerprint: 'abc' } })).message).toContain(
      'not 64 hex',
    );
    expect(inviteError(JSON.stringify({ ...original, version: 3 })).message).toContain('version 3');
    expect(inviteError('{"network": ').message).toContain('not valid JSON');
    expect(inviteError('[1,2]').message).toContain('not an invite');
  });
});
