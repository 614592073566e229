// Whether a relay forwards one packet (PROTOCOL.md#v-relay): pure, so every refusal is a table row
// in a unit test. The relay forwards only between two peers it has open sessions with, both of
// which said they take relayed packets, and never back to the sender.

import type { RelayDropReason } from '../metrics/relay-counters.js';

export interface RelayParty {
  fingerprint: string;
  /** Its session with this node is past Hello and not closed, on the connection the packet used. */
  open: boolean;
  /** Its C message offered CAPABILITY_NAT_TRAVERSAL. */
  natTraversal: boolean;
}

export type RelayDecision = { forward: true } | { forward: false; reason: RelayDropReason };

export function decideRelay(relayEnabled: boolean, source: RelayParty, target: RelayParty | null): RelayDecision {
  if (!relayEnabled) return { forward: false, reason: 'relay_off' };
  if (!source.open) return { forward: false, reason: 'no_session' };
  if (!source.natTraversal) return { forward: false, reason: 'not_capable' };
  if (target === null || !target.open) return { forward: false, reason: 'no_session' };
  if (target.fingerprint === source.fingerprint) return { forward: false, reason: 'malformed' };
  if (!target.natTraversal) return { forward: false, reason: 'not_capable' };
  return { forward: true };
}
