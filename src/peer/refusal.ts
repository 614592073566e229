// Why a peer refused our certificate, in words for the person at this node. The refusing side
// closes with APP_UNTRUSTED and its reason code (PROTOCOL.md#v-app-errors); read on the dialing
// side, "untrusted certificate (unknown_fingerprint)" sounds as if *its* certificate were bad, so
// the message says who refused whom, and what to run on which machine.

export interface RefusedIdentity {
  name: string;
  fingerprint: string;
}

/** The invite or membership code an admin refused us with (`invite.exhausted`, …), or null. */
export function inviteRefusalCode(reason: string): string | null {
  const code = reason.split(' ')[0] ?? '';
  return /^(invite|member)\.[a-z_]{1,32}$/.test(code) ? code : null;
}

/** The message for a dial `peer` closed with APP_UNTRUSTED and `reason`; `networks` the ones we share with it. */
export function describeRefusal(peer: string, reason: string, self: RefusedIdentity, networks: readonly string[]): string {
  const refused = `${peer} refused our certificate`;
  const code = reason.split(' ')[0] ?? '';
  // An admin refusing our invite (PROTOCOL.md#v-redeem): the code, stable for scripts, then its words.
  if (inviteRefusalCode(reason)) {
    const why = reason.slice(code.length + 1) || 'no reason given';
    // The admin's words already name the fix, except for its own failure.
    const fix = code === 'invite.error' ? `; look at ${peer}'s log` : '';
    return `${peer} refused ${code.startsWith('invite.') ? 'our invite' : 'us as a member'}: ${code}: ${why}${fix}`;
  }
  switch (code) {
    case 'unknown_fingerprint':
      return `${refused}: ${peer} has no peer entry for this node (on ${peer}: vpnctl add-peer --name ${self.name} --fingerprint ${self.fingerprint} --networks ${networks.join(',') || '<networks>'})`;
    case 'pin_mismatch':
      return `${refused}: ${peer} has another fingerprint pinned for ${self.name}; ours is ${self.fingerprint} (fix the pin in ${peer}'s config)`;
    case 'tofu_mismatch':
      return `${refused}: ${peer} learned another fingerprint for ${self.name} on first use; ours is ${self.fingerprint} (on ${peer}: vpnctl forget ${self.name}, if this node's identity was replaced on purpose)`;
    case 'cert_expired':
      return `${refused}: ${peer} finds it expired or not yet valid (check this machine's clock and ${peer}'s)`;
    case 'cert_invalid':
      return `${refused}: ${peer} cannot read it (regenerate this node's identity)`;
    default:
      return `${refused}${reason ? ` (${reason})` : ''}`;
  }
}
