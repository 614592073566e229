// One network's roster (issue 12): the newest verified membership record per member
// fingerprint, revocations included. Pure: no clock, no I/O; time is passed in where it matters.
//
// Rules, in the order merge applies them:
//   - a record of another network is refused ('wrong_network');
//   - a record whose version is not higher than the one held for its fingerprint is ignored
//     ('stale'), so replaying an old record, or the same one, changes nothing;
//   - a revocation replaces whatever was held ('revoked'). It is kept, not deleted: it is what
//     makes a replayed older member record stale, and only a higher version re-admits;
//   - a member record whose name a *different* fingerprint holds with a non-revoked record is
//     refused ('conflict'): the earlier holder keeps the name. An expired holder still holds it,
//     so that merge stays independent of the local clock; an admin frees a name by revoking.
//
// Known limit: conflict refusal depends on arrival order, so two nodes that receive two
// conflicting records in opposite orders disagree until an admin revokes one. Admins are
// expected not to issue conflicting names (the ledger's job); this only keeps a mistake from
// letting one node take over another's name.

import type { MembershipRecord, VerifiedRecord } from './record.js';
import { recordExpired } from './signature.js';

export type MergeOutcome = 'added' | 'updated' | 'revoked' | 'stale' | 'conflict' | 'wrong_network';

export interface DigestEntry {
  fingerprint: string;
  version: bigint;
}

export class Roster {
  /** Newest verified record per member fingerprint, revoked ones included. */
  private readonly records = new Map<string, VerifiedRecord>();

  constructor(readonly network: string) {}

  /**
   * Takes a record verifyRecord accepted (for this network's admins). 'added' when the
   * fingerprint becomes a member (new, or re-admitted after a revocation), 'updated' when a
   * member's record is replaced by a newer one.
   */
  merge(verified: VerifiedRecord): MergeOutcome {
    const record = verified.record;
    if (record.network !== this.network) return 'wrong_network';
    const held = this.records.get(record.fingerprint);
    if (held && record.version <= held.record.version) return 'stale';
    if (record.kind === 'revoked') {
      this.records.set(record.fingerprint, verified);
      return 'revoked';
    }
    const holder = this.nameHolder(record.name);
    if (holder && holder.fingerprint !== record.fingerprint) return 'conflict';
    this.records.set(record.fingerprint, verified);
    return held && held.record.kind === 'member' ? 'updated' : 'added';
  }

  /** The non-revoked record holding `name`, expired or not. */
  private nameHolder(name: string): MembershipRecord | undefined {
    for (const { record } of this.records.values()) {
      if (record.kind === 'member' && record.name === name) return record;
    }
    return undefined;
  }

  /** The held record for a fingerprint, revoked or expired included (what a sync passes on). */
  get(fingerprint: string): VerifiedRecord | undefined {
    return this.records.get(fingerprint);
  }

  /** Members at `now` (Unix ms): not revoked, not expired; sorted by name. */
  members(now: number): MembershipRecord[] {
    const out: MembershipRecord[] = [];
    for (const { record } of this.records.values()) {
      if (record.kind === 'member' && !recordExpired(record, now)) out.push(record);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Whether `fingerprint` is a member at `now` (Unix ms). */
  isMember(fingerprint: string, now: number): boolean {
    const held = this.records.get(fingerprint);
    return held !== undefined && held.record.kind === 'member' && !recordExpired(held.record, now);
  }

  /**
   * (fingerprint, version) of every held record, revocations and expired records included (a
   * peer must learn of a revocation too), sorted by fingerprint so equal rosters give equal
   * digests.
   */
  digest(): DigestEntry[] {
    return [...this.records.values()]
      .map(({ record }) => ({ fingerprint: record.fingerprint, version: record.version }))
      .sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
  }

  /**
   * Fingerprints whose record the other side (by its digest) lacks or holds an older version
   * of: what to send it. Sorted. A digest listing a fingerprint twice counts its highest version.
   */
  diff(other: readonly DigestEntry[]): string[] {
    const theirs = new Map<string, bigint>();
    for (const { fingerprint, version } of other) {
      const seen = theirs.get(fingerprint);
      if (seen === undefined || version > seen) theirs.set(fingerprint, version);
    }
    const out: string[] = [];
    for (const { fingerprint, version } of this.digest()) {
      const seen = theirs.get(fingerprint);
      if (seen === undefined || seen < version) out.push(fingerprint);
    }
    return out;
  }
}
