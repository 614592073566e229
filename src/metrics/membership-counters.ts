// Membership (issue 12): what became of each signed record this node was handed, each invite
// redemption it decided as an admin, and each refusal it heard as a joiner. Plain numbers bumped
// by src/membership/, exported at scrape time.

import { Counter, Gauge, type Registry } from 'prom-client';

export const RECORD_RESULTS = [
  // From Roster.merge:
  'added',
  'updated',
  'revoked',
  'stale',
  'conflict',
  'wrong_network',
  // From verifyRecord:
  'malformed',
  'not_admin',
  'bad_signature',
  'expired',
  // Before either: a network this node keeps no roster for, or a roster at its size limit.
  'no_roster',
  'full',
] as const;
export type RecordResult = (typeof RECORD_RESULTS)[number];

/** Stable codes: what a joiner's `vpnctl peers` and logs show (docs/PROTOCOL.md#v-redeem). */
export const REDEEM_RESULTS = [
  'admitted',
  'repeated',
  'invite.invalid',
  'invite.expired',
  'invite.exhausted',
  'member.revoked',
  'member.name_taken',
  'member.address_taken',
  'invite.error',
] as const;
export type RedeemResultCode = (typeof REDEEM_RESULTS)[number];
export type RedeemRefusalCode = Exclude<RedeemResultCode, 'admitted' | 'repeated'>;

export class MembershipCounters {
  /** Per network, per result. */
  private readonly records = new Map<string, Map<RecordResult, number>>();
  readonly redemptions: Record<RedeemResultCode, number> = Object.fromEntries(REDEEM_RESULTS.map((r) => [r, 0])) as Record<RedeemResultCode, number>;
  /** Refusals this node heard from an admin when redeeming its own invite. */
  readonly refusalsHeard = new Map<string, number>();
  private members: () => Map<string, number> = () => new Map();

  record(network: string, result: RecordResult): void {
    let byResult = this.records.get(network);
    if (!byResult) this.records.set(network, (byResult = new Map()));
    byResult.set(result, (byResult.get(result) ?? 0) + 1);
  }

  redemption(result: RedeemResultCode): void {
    this.redemptions[result]++;
  }

  /** Codes come from the admin's close reason: one this version does not know is counted as 'other', so series stay few. */
  refusalHeard(code: string): void {
    const known = (REDEEM_RESULTS as readonly string[]).includes(code) && code !== 'admitted' && code !== 'repeated' ? code : 'other';
    this.refusalsHeard.set(known, (this.refusalsHeard.get(known) ?? 0) + 1);
  }

  /** Members per network, read at scrape time. */
  observeMembers(read: () => Map<string, number>): void {
    this.members = read;
  }

  register(registers: Registry[]): void {
    const records = this.records;
    const redemptions = this.redemptions;
    const heard = this.refusalsHeard;
    const members = (): Map<string, number> => this.members();
    new Counter<'network' | 'result'>({
      name: 'vibepn_roster_records_total',
      help: 'Membership records received or made, by network and what became of them (added, revoked, stale, not_admin, bad_signature, …).',
      labelNames: ['network', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [network, byResult] of records) for (const [result, n] of byResult) this.inc({ network, result }, n);
      },
    });
    new Counter<'result'>({
      name: 'vibepn_invite_redemptions_total',
      help: 'Invite redemptions this node decided as an admin, by result (admitted, repeated, or a refusal code).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        for (const result of REDEEM_RESULTS) this.inc({ result }, redemptions[result]);
      },
    });
    new Counter<'code'>({
      name: 'vibepn_invite_refused_total',
      help: "Refusals this node heard from an admin when presenting its own invite, by code.",
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of heard) this.inc({ code }, n);
      },
    });
    new Gauge<'network'>({
      name: 'vibepn_roster_members',
      help: 'Current members (signed, not revoked, not expired) in each network roster this node keeps.',
      labelNames: ['network'],
      registers,
      collect() {
        this.reset();
        for (const [network, n] of members()) this.set({ network }, n);
      },
    });
  }
}
