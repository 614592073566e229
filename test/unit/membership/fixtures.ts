// Shared by the membership unit tests: admin identities that really sign, records built from a
// few fields, a config with a roster network, an in-memory roster file, and a Membership wired
// to recording fakes. Nothing touches the disk, a socket or a real timer.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { Registry } from 'prom-client';
import { FakeClock } from '../../../src/clock/fake.js';
import type { Config, PeerConfig } from '../../../src/config/types.js';
import { newConfig, newNetwork } from '../../../src/config/write.js';
import { generateIdentity, type Identity } from '../../../src/crypto/identity.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { MembershipCounters } from '../../../src/metrics/membership-counters.js';
import { Membership } from '../../../src/membership/membership.js';
import { RosterFile, type RosterFileFs } from '../../../src/membership/roster-file.js';
import type { RecordFields, VerifiedRecord } from '../../../src/roster/record.js';
import { signRecord, verifyRecord } from '../../../src/roster/signature.js';

export const NOW = Date.parse('2026-03-01T12:00:00Z');

export type Signer = Pick<Identity, 'name' | 'fingerprint' | 'certDer' | 'privateKey'>;

export async function signer(name: string): Promise<Signer> {
  const id = await generateIdentity(name, { now: new Date('2026-01-01T00:00:00Z') });
  return { name, fingerprint: id.fingerprint, certDer: new Uint8Array(new X509Certificate(id.certPem).raw), privateKey: createPrivateKey(id.keyPem) };
}

/** A fake fingerprint for a member that never signs anything: only its hash is in records. */
export const fp = (hexByte: string): string => hexByte.repeat(32);

export function fields(over: Partial<RecordFields> & Pick<RecordFields, 'fingerprint' | 'name'>): RecordFields {
  return { kind: 'member', version: 1n, network: 'corp', address: '10.42.0.7', routes: [], endpoints: [], issuedAt: NOW - 1000, ...over };
}

export function signed(by: Signer, over: Partial<RecordFields> & Pick<RecordFields, 'fingerprint' | 'name'>): Uint8Array {
  return signRecord(fields(over), by.certDer, by.privateKey);
}

export function verified(by: Signer, over: Partial<RecordFields> & Pick<RecordFields, 'fingerprint' | 'name'>): VerifiedRecord {
  const result = verifyRecord(signed(by, over), [by.fingerprint], NOW);
  if (!result.ok) throw new Error(result.error);
  return result.verified;
}

/**
 * A config with network corp (10.42.0.0/24) whose admins are `admins`, and these file peers. This
 * node's address there is static (10.42.0.1 by default): an auto one would be a hash, and could
 * land on an address a test gives a member.
 */
export function corpConfig(admins: readonly string[], peers: PeerConfig[] = [], address = '10.42.0.1'): Config {
  return newConfig('/etc/vibepn/config.toml', {
    homeDir: '/home/test',
    peers,
    networks: [newNetwork('corp', '10.42.0.0/24', { admins: [...admins], address })],
  });
}

/** An in-memory file; writes can be held back or made to fail. */
export class MemoryFs implements RosterFileFs {
  text: string | undefined;
  readonly writes: string[] = [];
  failNext: Error | undefined;
  hold: Promise<void> | undefined;

  async read(): Promise<string | undefined> {
    return this.text;
  }

  async write(_path: string, text: string): Promise<void> {
    this.writes.push(text);
    if (this.hold) await this.hold;
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    this.text = text;
  }
}

export interface Harness {
  membership: Membership;
  fs: MemoryFs;
  clock: FakeClock;
  counters: MembershipCounters;
  pushes: Array<{ records: readonly VerifiedRecord[]; from: string | undefined }>;
  applies: string[];
  joined: string[];
  lines: string[];
}

/** A Membership for `self` on `config`, with its file in `fs` (a fresh one by default). */
export function harness(self: Signer, config: Config, fs = new MemoryFs()): Harness {
  const clock = new FakeClock(NOW);
  const counters = new MembershipCounters();
  const { logger, lines } = memoryLogger();
  const pushes: Harness['pushes'] = [];
  const applies: string[] = [];
  const joined: string[] = [];
  const membership = new Membership(config, {
    identity: self,
    clock,
    logger,
    counters,
    file: new RosterFile('/etc/vibepn/roster.json', fs),
    push: (records, from) => pushes.push({ records, from }),
    apply: async (cause) => {
      applies.push(cause);
    },
    joined: (network) => joined.push(network),
  });
  return { membership, fs, clock, counters, pushes, applies, joined, lines };
}

/** What vibepn_roster_records_total holds for a network and result, read the way a scrape reads it. */
export async function counted(counters: MembershipCounters, network: string, result: string): Promise<number> {
  const registry = new Registry();
  counters.register([registry]);
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'vibepn_roster_records_total');
  const values = (metric as { values?: Array<{ labels: Record<string, unknown>; value: number }> } | undefined)?.values ?? [];
  return values.find((v) => v.labels.network === network && v.labels.result === result)?.value ?? 0;
}
