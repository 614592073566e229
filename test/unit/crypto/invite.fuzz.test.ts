// Fuzzing the invite reader (parseInvite) with fast-check: an invite is pasted from chat or
// mail, so every byte of it is untrusted. parseInvite documents "throws InviteError and nothing
// else"; it also wraps anything unexpected into an InviteError, so the real check is that the
// wrapper ("unexpected …") never fires, and that a changed signed invite never reads as valid
// with other contents. Budget and seeds: test/helpers/fuzz.ts; FUZZ_RUNS inputs over its properties.

import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { networkNameProblem } from '../../../src/config/names.js';
import { parseDialAddress } from '../../../src/config/values.js';
import { generateIdentity, loadIdentity, nodeNameProblem, writeIdentityFiles, type Identity } from '../../../src/crypto/identity.js';
import { INVITE_PREFIX, InviteError, createInvite, parseInvite, type Invite, type ParsedInvite } from '../../../src/crypto/invite.js';
import { formatIp, formatPrefix, maskBytes, parseCidr } from '../../../src/netgraph/addr.js';
import { FUZZ_TIMEOUT_MS, editsArb, fuzz, mutateText } from '../../helpers/fuzz.js';

const NOW = new Date('2026-03-01T12:00:00Z');
/** parseInvite refuses longer text up front (invite.ts MAX_INVITE_CHARS), so its messages, which may quote fields, stay under this. */
const MAX_ERROR_CHARS = 16 * 1024 + 1024;

let dir: string;
let alice: Identity;
/** Signed invites made in beforeAll, for the mutation properties: signing per run would dominate them. */
const signed: { text: string; invite: Invite }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-invite-fuzz-'));
  const gen = await generateIdentity('alice', { now: new Date('2026-01-01T00:00:00Z') });
  writeIdentityFiles(join(dir, 'alice.crt'), join(dir, 'alice.key'), gen);
  alice = loadIdentity(join(dir, 'alice.crt'), join(dir, 'alice.key'));
  const samples = [
    { network: 'corp', prefix: '10.42.0.0/24', address: '198.51.100.20:51820' },
    { network: 'n', prefix: 'fd00:42::/64', address: '[fd00::1]:1', name: 'bob the builder' },
    { network: 'lab.x-1_2', prefix: '0.0.0.0/0', address: 'vpn.example.org:65535', name: 'é网😀' },
  ];
  for (const fields of samples) {
    const text = createInvite(alice, fields, { now: NOW, ttlSeconds: 3600 });
    signed.push({ text, invite: parseInvite(text, { now: NOW }).invite });
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** parseInvite's contract on any text: a ParsedInvite whose fields pass the loader's rules, or an InviteError from the expected paths. */
function readInvite(text: string): ParsedInvite | InviteError {
  let parsed: ParsedInvite;
  try {
    parsed = parseInvite(text, { now: NOW });
  } catch (err) {
    if (!(err instanceof InviteError)) throw new Error(`parseInvite threw ${String(err)}, not an InviteError`);
    if (err.message.startsWith('invite could not be read (unexpected')) throw new Error(`an unexpected error slipped through: ${err.message}`);
    if (err.message.length === 0 || err.message.length > MAX_ERROR_CHARS) throw new Error(`InviteError of ${err.message.length} characters`);
    return err;
  }
  const { invite } = parsed;
  const problems = [
    networkNameProblem(invite.network),
    parseCidr(invite.prefix).ok ? null : 'prefix',
    nodeNameProblem(invite.inviter.name),
    parseDialAddress(invite.inviter.address).ok ? null : 'address',
    /^[0-9a-f]{64}$/.test(invite.inviter.fingerprint) ? null : 'fingerprint',
  ].filter((p) => p !== null);
  if (problems.length > 0) throw new Error(`accepted an invite with bad fields: ${problems.join('; ')}`);
  return parsed;
}

// ---- valid fields ----

const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-'.split('');
const networkArb = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constant('n'.repeat(255)) },
);

const prefixArb = fc
  .oneof(
    fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 })),
    fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 })),
  )
  .map(([bytes, length]) => `${formatIp(maskBytes(bytes, length))}/${length}`);

const hostnameArb = fc
  .array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/), { minLength: 1, maxLength: 4 })
  .map((labels) => labels.join('.'));
const addressArb = fc
  .tuple(
    fc.oneof(
      fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIp(b)),
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => `[${formatIp(b)}]`),
      hostnameArb,
    ),
    fc.integer({ min: 1, max: 65535 }),
  )
  .map(([host, port]) => `${host}:${port}`)
  .filter((address) => parseDialAddress(address).ok);

/** Node names: 1..64 UTF-16 units, no control characters; no surrounding blanks (the unsigned forms trim). */
const nodeNameArb = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 40 })
  .filter((name) => nodeNameProblem(name) === null && name.trim() === name);

const fingerprintArb = fc
  .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean())
  .map(([bytes, upper]) => (upper ? Buffer.from(bytes).toString('hex').toUpperCase() : Buffer.from(bytes).toString('hex')));

const fieldsArb = fc.record({ network: networkArb, prefix: prefixArb, address: addressArb, name: nodeNameArb, fingerprint: fingerprintArb });
type Fields = typeof fieldsArb extends fc.Arbitrary<infer T> ? T : never;

/** The original VibePN's unsigned forms: nested or flat JSON (with its key aliases), base64 of it, or the vibepn:// token. */
function unsignedForm(fields: Fields, form: number, alias: number): string {
  const pick = <T>(options: readonly T[]): T => options[alias % options.length]!;
  switch (form % 5) {
    case 0:
      return JSON.stringify({
        version: 1,
        network: fields.network,
        prefix: fields.prefix,
        inviter: { name: fields.name, address: fields.address, fingerprint: fields.fingerprint },
      });
    case 1:
      return JSON.stringify({
        [pick(['network', 'network_name'])]: fields.network,
        [pick(['prefix', 'cidr', 'network_prefix', 'subnet'])]: fields.prefix,
        [pick(['name', 'peer_name', 'node', 'node_name', 'inviter_name'])]: fields.name,
        [pick(['address', 'peer_address', 'endpoint', 'addr', 'inviter_address'])]: fields.address,
        [pick(['fingerprint', 'peer_fingerprint', 'fp', 'inviter_fingerprint'])]: fields.fingerprint,
      });
    case 2:
      return Buffer.from(unsignedForm(fields, 0, alias)).toString('base64');
    case 3:
      return Buffer.from(unsignedForm(fields, 1, alias)).toString('base64url');
    default:
      return (
        `vibepn://${fields.network}@${fields.address}#${fields.fingerprint}` +
        `?name=${encodeURIComponent(fields.name)}&prefix=${encodeURIComponent(fields.prefix)}`
      );
  }
}

// ---- arbitrary input ----

const INVITE_KEYS = [
  'version', 'network', 'network_name', 'prefix', 'cidr', 'network_prefix', 'subnet', 'inviter', 'peer', 'name', 'peer_name', 'node',
  'node_name', 'inviter_name', 'address', 'peer_address', 'endpoint', 'addr', 'inviter_address', 'fingerprint', 'peer_fingerprint',
  'fp', 'inviter_fingerprint', 'cert', 'issued_at', 'expires_at', 'payload', 'sig',
];
/** Values that are sometimes right for some key: the decoder's checks run on each. */
const looseValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(1, 2, 0, null, true, '', ' ', 'corp', '10.42.0.0/24', '198.51.100.20:51820', 'a'.repeat(64), '2026-03-01T12:00:00Z', []),
  fingerprintArb,
  networkArb,
  prefixArb,
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.jsonValue({ maxDepth: 1 }),
);
const looseObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(fc.constantFrom(...INVITE_KEYS), looseValue, { maxKeys: 8 });
const nestedObject = fc
  .tuple(looseObject, fc.constantFrom('inviter', 'peer', 'payload'), looseObject)
  .map(([outer, key, inner]) => ({ ...outer, [key]: key === 'payload' ? JSON.stringify(inner) : inner }));

const arbitraryInvite = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 60 }).map((rest) => INVITE_PREFIX + rest),
  fc.uint8Array({ maxLength: 90 }).map((bytes) => INVITE_PREFIX + Buffer.from(bytes).toString('base64url')),
  fc.oneof(looseObject, nestedObject).map((obj) => JSON.stringify(obj)),
  fc.oneof(looseObject, nestedObject).map((obj) => Buffer.from(JSON.stringify(obj)).toString('base64')),
  // A signed envelope around any payload: every field check before the signature is reached.
  fc
    .tuple(fc.oneof(looseObject, nestedObject), fc.oneof(fc.string({ maxLength: 20 }), fc.base64String({ maxLength: 96 })))
    .map(([payload, sig]) => INVITE_PREFIX + Buffer.from(JSON.stringify({ payload: JSON.stringify({ version: 1, ...payload }), sig })).toString('base64url')),
  // Valid unsigned invites with one key replaced: the checks after the JSON layer.
  fc
    .tuple(fieldsArb, fc.constantFrom(...INVITE_KEYS), looseValue)
    .map(([fields, key, value]) => JSON.stringify({ ...(JSON.parse(unsignedForm(fields, 0, 0)) as object), [key]: value })),
  // Signed payloads with alice's real certificate and one key replaced, under a made-up signature:
  // they get as far as the certificate and signature checks.
  fc
    .tuple(fieldsArb, fc.constantFrom('version', 'network', 'prefix', 'inviter', 'issued_at', 'expires_at', 'extra'), looseValue, fc.base64String({ maxLength: 96 }))
    .map(([fields, key, value, sig]) => {
      const payload = {
        version: 1,
        network: fields.network,
        prefix: fields.prefix,
        inviter: { name: fields.name, address: fields.address, fingerprint: alice.fingerprint, cert: alice.certPem },
        issued_at: '2026-03-01T11:00:00Z',
        expires_at: '2026-03-02T11:00:00Z',
        [key]: value,
      };
      return INVITE_PREFIX + Buffer.from(JSON.stringify({ payload: JSON.stringify(payload), sig: sig.replace(/\+/g, '-').replace(/\//g, '_') })).toString('base64url');
    }),
  fc.string({ unit: fc.constantFrom(...'@#?&=%/:.[]az09'.split('')), maxLength: 40 }).map((rest) => `vibepn://${rest}`),
  fc.stringMatching(/^vibepn\d{1,3}:.{0,10}$/),
);

function sameInvite(a: Invite, b: Invite): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

describe('parseInvite fuzz (fast-check)', () => {
  it(
    'arbitrary text, JSON, base64 and envelopes: an InviteError from an expected path, or an invite with valid fields',
    () =>
      fuzz('invite: arbitrary', 0.3, arbitraryInvite, (text) => {
        const result = readInvite(text);
        // Without alice's key nothing here can carry a valid signature.
        if (!(result instanceof InviteError) && result.signed) throw new Error('a made-up invite passed as signed');
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'round trip: a signed invite with random valid fields reads back with exactly those fields',
    () =>
      fuzz('invite: signed round trip', 0.05, fieldsArb, fc.integer({ min: 60, max: 365 * 86400 }), (fields, ttlSeconds) => {
        const text = createInvite(alice, fields, { now: NOW, ttlSeconds });
        const result = readInvite(text);
        if (result instanceof InviteError) throw result;
        expect(result.signed).toBe(true);
        expect(result.invite).toMatchObject({
          network: fields.network,
          prefix: fields.prefix,
          inviter: { name: fields.name, address: fields.address, fingerprint: alice.fingerprint, cert: alice.certPem },
        });
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    "round trip: the original's unsigned forms (JSON, base64, token) read back with the same fields",
    () =>
      fuzz('invite: unsigned round trip', 0.15, fieldsArb, fc.nat(4), fc.nat(20), (fields, form, alias) => {
        const result = readInvite(unsignedForm(fields, form, alias));
        if (result instanceof InviteError) throw result;
        expect(result.signed).toBe(false);
        expect(result.invite).toEqual({
          version: 1,
          network: fields.network,
          prefix: fields.prefix,
          inviter: { name: fields.name, address: fields.address, fingerprint: fields.fingerprint.toLowerCase(), cert: '' },
          issued_at: '',
          expires_at: '',
        });
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated signed invites: an InviteError, or (whitespace, base64 slack) the very same invite',
    () =>
      fuzz('invite: mutation of signed', 0.3, fc.nat(2), editsArb, (index, edits) => {
        const original = signed[index % signed.length]!;
        const result = readInvite(mutateText(original.text, edits));
        if (!(result instanceof InviteError) && !(result.signed && sameInvite(result.invite, original.invite))) {
          throw new Error('a changed signed invite was accepted with other contents');
        }
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated unsigned invites: an InviteError or an unsigned invite with valid fields',
    () =>
      fuzz('invite: mutation of unsigned', 0.1, fieldsArb, fc.nat(4), fc.nat(20), editsArb, (fields, form, alias, edits) => {
        const result = readInvite(mutateText(unsignedForm(fields, form, alias), edits));
        if (!(result instanceof InviteError) && result.signed) throw new Error('a mutated unsigned invite passed as signed');
      }),
    FUZZ_TIMEOUT_MS,
  );

  it(
    'tampered envelope: any change to the signed payload or the signature is refused',
    () =>
      fuzz('invite: tampered envelope', 0.1, fc.nat(2), editsArb, fc.boolean(), (index, edits, onSig) => {
        const original = signed[index % signed.length]!;
        const envelope = JSON.parse(Buffer.from(original.text.slice(INVITE_PREFIX.length), 'base64url').toString('utf8')) as { payload: string; sig: string };
        const changed = onSig ? { ...envelope, sig: mutateText(envelope.sig, edits) } : { ...envelope, payload: mutateText(envelope.payload, edits) };
        const result = readInvite(INVITE_PREFIX + Buffer.from(JSON.stringify(changed)).toString('base64url'));
        const unchanged = onSig
          ? Buffer.from(changed.sig, 'base64url').equals(Buffer.from(envelope.sig, 'base64url')) && /^[A-Za-z0-9_-]+={0,2}$/.test(changed.sig)
          : changed.payload === envelope.payload;
        if (unchanged) {
          if (result instanceof InviteError || !sameInvite(result.invite, original.invite)) throw new Error('an unchanged envelope was refused');
        } else if (!(result instanceof InviteError)) {
          throw new Error('a tampered envelope was accepted');
        }
      }),
    FUZZ_TIMEOUT_MS,
  );

  it('prefixes generated for the round trips are canonical CIDRs', () => {
    for (const text of fc.sample(prefixArb, { numRuns: 200, seed: 1 })) {
      const parsed = parseCidr(text);
      expect(parsed.ok && formatPrefix(parsed.prefix) === text).toBe(true);
    }
  });
});
