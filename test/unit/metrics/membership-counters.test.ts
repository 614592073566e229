// The membership metrics as a scrape reads them: series per network and result, redemption
// results from the start (0), refusal codes a joiner heard bounded to the known ones.
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { MembershipCounters, REDEEM_RESULTS } from '../../../src/metrics/membership-counters.js';

async function scrape(counters: MembershipCounters): Promise<string> {
  const registry = new Registry();
  counters.register([registry]);
  return registry.metrics();
}

describe('MembershipCounters', () => {
  it('exports records by network and result, every redemption result from zero, and members per network', async () => {
    const counters = new MembershipCounters();
    counters.record('corp', 'added');
    counters.record('corp', 'added');
    counters.record('', 'no_roster');
    counters.redemption('invite.exhausted');
    counters.observeMembers(() => new Map([['corp', 3]]));
    const text = await scrape(counters);
    expect(text).toContain('vibepn_roster_records_total{network="corp",result="added"} 2');
    expect(text).toContain('vibepn_roster_records_total{network="",result="no_roster"} 1');
    for (const result of REDEEM_RESULTS) expect(text).toContain(`vibepn_invite_redemptions_total{result="${result}"} ${result === 'invite.exhausted' ? 1 : 0}`);
    expect(text).toContain('vibepn_roster_members{network="corp"} 3');
  });

  it('counts a refusal code it does not know as other: an admin cannot mint series on the joiner', async () => {
    const counters = new MembershipCounters();
    counters.refusalHeard('invite.exhausted');
    for (let i = 0; i < 100; i++) counters.refusalHeard(`invite.made_up_${i}`);
    counters.refusalHeard('admitted');
    const text = await scrape(counters);
    expect(text).toContain('vibepn_invite_refused_total{code="invite.exhausted"} 1');
    expect(text).toContain('vibepn_invite_refused_total{code="other"} 101');
    expect(text.split('\n').filter((l) => l.startsWith('vibepn_invite_refused_total{'))).toHaveLength(2);
  });
});
