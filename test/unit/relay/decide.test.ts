import { describe, expect, it } from 'vitest';
import { decideRelay, type RelayDecision, type RelayParty } from '../../../src/relay/decide.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);

function party(fingerprint: string, overrides: Partial<RelayParty> = {}): RelayParty {
  return { fingerprint, open: true, natTraversal: true, ...overrides };
}

const source = party(FP_A);
const target = party(FP_B);

describe('decideRelay', () => {
  // Each row changes one thing from the forwarding case, so it shows which check refuses it.
  const rows: Array<[string, boolean, RelayParty, RelayParty | null, RelayDecision]> = [
    ['forwards between two open, capable peers', true, source, target, { forward: true }],
    ['relay = false refuses everything', false, source, target, { forward: false, reason: 'relay_off' }],
    ['the source session is not open', true, party(FP_A, { open: false }), target, { forward: false, reason: 'no_session' }],
    ['the source never offered NAT traversal', true, party(FP_A, { natTraversal: false }), target, { forward: false, reason: 'not_capable' }],
    ['the target is not a peer with a session', true, source, null, { forward: false, reason: 'no_session' }],
    ['the target session is not open', true, source, party(FP_B, { open: false }), { forward: false, reason: 'no_session' }],
    ['the target is the source itself', true, source, party(FP_A), { forward: false, reason: 'malformed' }],
    ['the target never offered NAT traversal', true, source, party(FP_B, { natTraversal: false }), { forward: false, reason: 'not_capable' }],
  ];
  for (const [label, enabled, from, to, decision] of rows) {
    it(label, () => expect(decideRelay(enabled, from, to)).toEqual(decision));
  }

  // The order matters for the counters: an operator who turned relaying off sees relay_off, not
  // whatever else is wrong; a sender without a session is counted as such before its target is looked at.
  const precedence: Array<[string, boolean, RelayParty, RelayParty | null, string]> = [
    ['relay off before everything else', false, party(FP_A, { open: false, natTraversal: false }), null, 'relay_off'],
    ['a closed source before an incapable one', true, party(FP_A, { open: false, natTraversal: false }), null, 'no_session'],
    ['an incapable source before a missing target', true, party(FP_A, { natTraversal: false }), null, 'not_capable'],
    ['a closed target before an incapable one', true, source, party(FP_B, { open: false, natTraversal: false }), 'no_session'],
    ['the source as target before the capability check', true, source, party(FP_A, { natTraversal: false }), 'malformed'],
  ];
  for (const [label, enabled, from, to, reason] of precedence) {
    it(`reports ${label}`, () => expect(decideRelay(enabled, from, to)).toEqual({ forward: false, reason }));
  }
});
