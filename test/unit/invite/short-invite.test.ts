import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MAX_SHORT_INVITE_CHARS,
  SHORT_INVITE_PREFIX,
  ShortInviteError,
  decodeShortInvite,
  encodeShortInvite,
  shortInviteAddress,
  type ShortInviteFields,
} from '../../../src/invite/short-invite.js';
import { cidr } from '../../helpers/addresses.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);
const FP = createHash('sha256').update('admin').digest('hex');
const SECRET = Uint8Array.from({ length: 16 }, (_, i) => i * 17);

function fields(over: Partial<ShortInviteFields> = {}): ShortInviteFields {
  return {
    endpoint: { host: '198.51.100.20', port: 51820 },
    fingerprint: FP,
    network: 'corp',
    name: 'alpha',
    prefix: cidr('10.42.0.0/24'),
    expiresAt: NOW_S + 24 * 3600,
    secret: SECRET,
    ...over,
  };
}

function decodeOk(text: string, now = NOW): ShortInviteFields {
  const r = decodeShortInvite(text, now);
  if (!r.ok) throw new Error(`refused: ${r.message}`);
  return r.invite;
}

/** The payload bytes of an invite, and back, to build invites a foreign encoder might write. */
function payloadOf(text: string): Buffer {
  return Buffer.from(text.slice(SHORT_INVITE_PREFIX.length), 'base64url');
}
function withChecksum(payload: Buffer): string {
  const body = Buffer.from(payload);
  createHash('sha256').update(body.subarray(4)).digest().copy(body, 0, 0, 4);
  return SHORT_INVITE_PREFIX + body.toString('base64url');
}

describe('short invite round trip', () => {
  const cases: Array<[string, Partial<ShortInviteFields>]> = [
    ['IPv4 endpoint', {}],
    ['IPv6 endpoint', { endpoint: { host: 'fd00:42::1', port: 1 }, prefix: cidr('fd00:42::/64') }],
    ['hostname endpoint', { endpoint: { host: 'vpn.example.org', port: 65535 } }],
    ['odd prefix length', { prefix: cidr('10.40.0.0/13') }],
    ['default route prefix', { prefix: cidr('0.0.0.0/0') }],
    ['host prefix', { prefix: cidr('fd00::1/128') }],
    ['expiry at the u32 limit', { expiresAt: 0xffff_ffff }],
    ['one-character admin name', { name: 'a' }],
    ['63-character admin name', { name: `${'n'.repeat(60)}_.-` }],
  ];
  for (const [what, over] of cases) {
    it(`keeps every field: ${what}`, () => {
      const f = fields(over);
      const text = encodeShortInvite(f);
      expect(text.startsWith(SHORT_INVITE_PREFIX)).toBe(true);
      expect(text.length).toBeLessThanOrEqual(MAX_SHORT_INVITE_CHARS);
      const back = decodeOk(text);
      expect(back.endpoint).toEqual(f.endpoint);
      expect(back.fingerprint).toBe(f.fingerprint);
      expect(back.network).toBe(f.network);
      expect(back.name).toBe(f.name);
      expect(back.prefix.family).toBe(f.prefix.family);
      expect(back.prefix.length).toBe(f.prefix.length);
      expect(Buffer.from(back.prefix.bytes).equals(Buffer.from(f.prefix.bytes))).toBe(true);
      expect(back.expiresAt).toBe(f.expiresAt);
      expect(Buffer.from(back.secret).equals(Buffer.from(f.secret))).toBe(true);
      expect(encodeShortInvite(back)).toBe(text);
    });
  }

  it('gives IPv6 back canonical, upper-case fingerprints lower-case, and a dialable address', () => {
    const back = decodeOk(encodeShortInvite(fields({ endpoint: { host: 'FD00:0:0::1', port: 443 }, fingerprint: FP.toUpperCase() })));
    expect(back.endpoint.host).toBe('fd00::1');
    expect(back.fingerprint).toBe(FP);
    expect(shortInviteAddress(back)).toBe('[fd00::1]:443');
  });

  it('forgives surrounding whitespace from a terminal or mail', () => {
    const text = encodeShortInvite(fields());
    expect(decodeOk(`  ${text}\n`).network).toBe('corp');
  });

  it('is short for a typical invite (IPv4 endpoint, /24, short names)', () => {
    // 56 fixed + 7 endpoint + 5 prefix + 5 network name + 6 admin name = 79 bytes → 106 base64url + 8 prefix.
    expect(encodeShortInvite(fields()).length).toBe(114);
  });
});

describe('the 200-character bound', () => {
  const host63 = `${'h'.repeat(51)}.example.com`;

  it('holds for the realistic worst case: a 63-byte hostname, an IPv6 /64 and 10 bytes of network and admin name', () => {
    expect(host63.length).toBe(63);
    const text = encodeShortInvite(fields({ endpoint: { host: host63, port: 65535 }, prefix: cidr('fd12:3456:789a:1::/64'), network: 'corp', name: 'hq-one' }));
    expect(text.length).toBe(MAX_SHORT_INVITE_CHARS);
    const back = decodeOk(text);
    expect([back.endpoint.host, back.network, back.name]).toEqual([host63, 'corp', 'hq-one']);
  });

  it('holds with 74 bytes of network and admin name beside an IPv4 endpoint and /24, and with a 63-byte admin name', () => {
    expect(encodeShortInvite(fields({ network: 'n'.repeat(69) })).length).toBe(MAX_SHORT_INVITE_CHARS);
    expect(encodeShortInvite(fields({ network: 'n'.repeat(11), name: 'a'.repeat(63) })).length).toBe(MAX_SHORT_INVITE_CHARS);
  });

  it('refuses one byte more, naming the network name, the admin name and the hostname to shorten', () => {
    const f = fields({ endpoint: { host: host63, port: 65535 }, prefix: cidr('fd12:3456:789a:1::/64'), network: 'corp', name: 'hq-one1' });
    expect(() => encodeShortInvite(f)).toThrow(ShortInviteError);
    expect(() => encodeShortInvite(f)).toThrow(/shorten the network name 'corp', the admin name 'hq-one1' or the hostname '.*' \(or give the admin's IP address\), or use the long invite/);
  });

  it('names only the two names when the endpoint is an IP address', () => {
    expect(() => encodeShortInvite(fields({ network: 'n'.repeat(70) }))).toThrow(
      /over the 200 .*\(1 byte too many\); shorten the network name 'n+' or the admin name 'alpha', or use the long invite$/,
    );
  });

  it('refuses a hostname over 63 bytes by itself', () => {
    expect(() => encodeShortInvite(fields({ endpoint: { host: `${'a'.repeat(52)}.example.com`, port: 1 } }))).toThrow(
      /hostname '.*' is 64 bytes, over the 63/,
    );
  });
});

describe('encode refusals', () => {
  const bad: Array<[string, Partial<ShortInviteFields>, RegExp]> = [
    ['empty host', { endpoint: { host: '', port: 1 } }, /no host/],
    ['port 0', { endpoint: { host: '198.51.100.20', port: 0 } }, /port must be/],
    ['port over 65535', { endpoint: { host: '198.51.100.20', port: 70000 } }, /port must be/],
    ['bracketed IPv6', { endpoint: { host: '[fd00::1]', port: 1 } }, /not an IPv6 address/],
    ['bad hostname', { endpoint: { host: 'vpn_example.org', port: 1 } }, /not an IP address or hostname/],
    ['not IPv4', { endpoint: { host: '999.1.1.1', port: 1 } }, /not an IPv4 address/],
    ['short fingerprint', { fingerprint: 'ab'.repeat(31) }, /not 64 hex/],
    ['bad network name', { network: 'my net' }, /not a valid network name/],
    ['empty network name', { network: '' }, /not a valid network name/],
    ['empty admin name', { name: '' }, /the admin name '' is not a valid peer name/],
    ['admin name with a space', { name: 'my laptop' }, /the admin name 'my laptop' is not a valid peer name/],
    ['admin name over 63', { name: 'a'.repeat(64) }, /admin name 'a+' is 64 characters, over the 63 a short invite carries; use the long invite/],
    ['admin name not text', { name: undefined as unknown as string }, /admin name must be text/],
    ['host bits set', { prefix: { family: 4, bytes: Uint8Array.of(10, 42, 0, 5), length: 24 } }, /host bits/],
    ['negative expiry', { expiresAt: -1 }, /expiry/],
    ['expiry past 2106', { expiresAt: 2 ** 32 }, /expiry/],
    ['fractional expiry', { expiresAt: 1.5 }, /expiry/],
    ['short secret', { secret: new Uint8Array(15) }, /16 random bytes/],
  ];
  for (const [what, over, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => encodeShortInvite(fields(over))).toThrow(ShortInviteError);
      expect(() => encodeShortInvite(fields(over))).toThrow(message);
    });
  }
});

describe('decode refusals', () => {
  const good = encodeShortInvite(fields());

  function refused(text: string, code = 'invite.invalid'): string {
    const r = decodeShortInvite(text, NOW);
    expect(r.ok).toBe(false);
    if (r.ok) throw new Error('accepted');
    expect(r.code).toBe(code);
    return r.message;
  }

  it('refuses other text, a long invite and an empty body', () => {
    expect(refused('hello')).toMatch(/^"hello" is not a short invite: one starts with 'vibepn2:'/);
    expect(refused('vibepn1:eyJwYXlsb2FkIjoi')).toMatch(/not a short invite/);
    expect(refused(SHORT_INVITE_PREFIX)).toMatch(/damaged or cut short .*copy it again whole/);
  });

  it('refuses an invite cut short at every length', () => {
    for (let n = SHORT_INVITE_PREFIX.length; n < good.length; n++) {
      expect(refused(good.slice(0, n))).toMatch(/damaged or cut short/);
    }
  });

  it('refuses two invites pasted together, and text past 200 characters', () => {
    expect(refused(good + good.slice(8, 60))).toMatch(/damaged or cut short/);
    expect(refused(good + good.slice(8))).toMatch(/longer than a short invite can be \(200\); paste only one invite/);
    expect(refused(SHORT_INVITE_PREFIX + 'A'.repeat(200))).toMatch(/longer than a short invite can be/);
  });

  it('refuses characters base64url never has, padding and non-canonical last characters', () => {
    expect(refused(good.slice(0, 20) + '+' + good.slice(21))).toMatch(/characters an invite never contains/);
    expect(refused(`${good}=`)).toMatch(/damaged/);
    expect(refused(`${good.slice(0, 30)} ${good.slice(30)}`)).toMatch(/damaged/);
    // 79 bytes → the last character carries 4 stray bits; setting one decodes to the same bytes.
    const last = good[good.length - 1]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    const text = good.slice(0, -1) + sibling;
    expect(Buffer.from(text.slice(8), 'base64url').equals(payloadOf(good))).toBe(true);
    expect(refused(text)).toMatch(/do not fit together/);
  });

  it('refuses every single-character change, to every other character (never decodes to other contents)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:';
    for (const invite of [good, encodeShortInvite(fields({ endpoint: { host: 'vpn.example.org', port: 443 }, prefix: cidr('fd00:42::/64') }))]) {
    for (let i = 0; i < invite.length; i++) {
      for (const ch of alphabet) {
        if (ch === invite[i]) continue;
        const r = decodeShortInvite(invite.slice(0, i) + ch + invite.slice(i + 1), NOW);
        if (r.ok || r.code !== 'invite.invalid') throw new Error(`change at ${i} to '${ch}' was not refused as invalid`);
      }
    }
    }
  });

  it('refuses an expired invite with its time, and accepts it the second before', () => {
    const text = encodeShortInvite(fields({ expiresAt: NOW_S }));
    expect(refused(text, 'invite.expired')).toBe('the invite expired at 2026-03-01T12:00:00.000Z; ask the admin for a new one (vpnctl invite)');
    expect(decodeOk(text, new Date(NOW.getTime() - 1000)).expiresAt).toBe(NOW_S);
  });

  it('refuses trailing bytes and layout errors even under a valid checksum', () => {
    const p = payloadOf(good);
    expect(refused(withChecksum(Buffer.concat([p, Buffer.of(0)])))).toMatch(/malformed \(1 bytes follow the admin name\)/);
    expect(refused(withChecksum(p.subarray(0, p.length - 1)))).toMatch(/malformed \(it ends inside the admin name\)/);
    // The payload ends: … 4 'corp' 5 'alpha'. Cut before the admin name's length, and inside the network name.
    expect(refused(withChecksum(p.subarray(0, p.length - 6)))).toMatch(/malformed \(it ends inside the admin name\)/);
    expect(refused(withChecksum(p.subarray(0, p.length - 7)))).toMatch(/malformed \(it ends inside the network name\)/);
    const tag = 56;
    const unknown = Buffer.from(p);
    unknown[tag] = 5;
    expect(refused(withChecksum(unknown))).toMatch(/unknown address kind 5/);
    const port0 = Buffer.from(p);
    port0.writeUInt16BE(0, tag + 5);
    expect(refused(withChecksum(port0))).toMatch(/port must be/);
    const family = Buffer.from(p);
    family[tag + 7] = 5;
    expect(refused(withChecksum(family))).toMatch(/unknown prefix family 5/);
    const length = Buffer.from(p);
    length[tag + 8] = 33;
    expect(refused(withChecksum(length))).toMatch(/prefix length 33 is over 32/);
    const odd = payloadOf(encodeShortInvite(fields({ prefix: cidr('10.40.0.0/13') })));
    odd[tag + 9 + 1] = odd[tag + 9 + 1]! | 0x01; // second prefix byte, past bit 13
    expect(refused(withChecksum(odd))).toMatch(/bits set past its length 13/);
    const nameLen0 = Buffer.concat([p.subarray(0, p.length - 11), Buffer.of(0), p.subarray(p.length - 6)]);
    expect(refused(withChecksum(nameLen0))).toMatch(/network name is not 1\.\.255 characters/);
    const badName = Buffer.from(p);
    badName[p.length - 7] = 0x20;
    expect(refused(withChecksum(badName))).toMatch(/network name is not 1\.\.255 characters/);
  });

  it('refuses an admin name that is empty, over 63 bytes or outside the peer-name rule, under a valid checksum', () => {
    const p = payloadOf(good);
    const head = p.subarray(0, p.length - 6);
    expect(refused(withChecksum(Buffer.concat([head, Buffer.of(0)])))).toMatch(/malformed \(the admin name is not 1\.\.63 characters from A-Z a-z 0-9 _ \. -\)/);
    const over = Buffer.concat([head, Buffer.of(64), Buffer.alloc(64, 0x61)]);
    expect(refused(withChecksum(over))).toMatch(/malformed \(the admin name length 64 is over 63\)/);
    for (const byte of [0x20, 0x00, 0x2f, 0xe9, 0x7f]) {
      const bad = Buffer.from(p);
      bad[p.length - 1] = byte;
      // One line, no raw byte: the message never quotes what it refuses.
      expect(refused(withChecksum(bad))).toBe(
        'the invite is malformed (the admin name is not 1..63 characters from A-Z a-z 0-9 _ . -); ask the admin for a new one',
      );
    }
  });

  it('refuses a hostname that is an IP address or not ASCII, under a valid checksum', () => {
    const p = payloadOf(encodeShortInvite(fields({ endpoint: { host: 'a.example', port: 1 } })));
    const asIp = Buffer.from(p);
    asIp.write('1.2.3.4.5', 57, 'ascii');
    expect(refused(withChecksum(asIp))).toMatch(/not an IPv4 address/);
    const v4 = Buffer.concat([p.subarray(0, 56), Buffer.of(0x80 + 7), Buffer.from('1.2.3.4'), p.subarray(57 + 9)]);
    expect(refused(withChecksum(v4))).toMatch(/is an IP address/);
    const high = Buffer.from(p);
    high[57] = 0xe9;
    expect(refused(withChecksum(high))).toMatch(/not plain ASCII/);
    const zeroLen = Buffer.concat([p.subarray(0, 56), Buffer.of(0x80), p.subarray(57 + 9)]);
    expect(refused(withChecksum(zeroLen))).toMatch(/unknown address kind 128/);
    const tooLong = Buffer.from(p);
    tooLong[56] = 0x80 + 64;
    expect(refused(withChecksum(tooLong))).toMatch(/unknown address kind 192/);
  });

  it('never throws on non-string input', () => {
    expect(decodeShortInvite(undefined as unknown as string, NOW).ok).toBe(false);
  });
});
