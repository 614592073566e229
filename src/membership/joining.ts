// The joiner's side of an invite (PROTOCOL.md#v-redeem): `vpnctl join` left the secret in the
// pending-invites file; on every connection this node dials to that admin it sends J first,
// until its own signed record arrives. Then the invite is spent and the file forgets it.

import { encodeControlMessage } from '../control/messages.js';
import type { PendingInvite, PendingInvites } from '../invite/pending.js';
import type { Logger } from '../log/logger.js';
import type { VerifiedRecord } from '../roster/record.js';

export interface JoiningDeps {
  store: PendingInvites;
  /** This node's overlay address in a network it has, the one it asks to be signed for. */
  addressIn(network: string): Uint8Array | undefined;
  logger: Logger;
}

export class Joining {
  private pending: PendingInvite[] = [];
  private readonly log: Logger;

  constructor(private readonly deps: JoiningDeps) {
    this.log = deps.logger.child('membership/join');
  }

  /** Reads the file (start-up and reload). A damaged file is logged, not fatal: the node still runs. */
  async load(): Promise<void> {
    try {
      this.pending = await this.deps.store.read();
    } catch (error) {
      this.log.error((error as Error).message);
      this.pending = [];
    }
    for (const p of this.pending) this.log.info(`holding an invite to ${p.network}: it is presented to the admin (${p.admin.slice(0, 16)}…) on the first connection`);
  }

  /** The J for a connection this node dialed to `peerFingerprint`, or null. */
  preamble(peerFingerprint: string | null): Uint8Array | null {
    if (!peerFingerprint) return null;
    for (const invite of this.pending) {
      if (invite.admin !== peerFingerprint) continue;
      const address = this.deps.addressIn(invite.network);
      if (!address) continue;
      return encodeControlMessage({ type: 'redeem', network: invite.network, secret: invite.secret, address });
    }
    return null;
  }

  /** This node's own member record arrived: the invite for that network is spent. */
  joined(network: string, record: VerifiedRecord): void {
    if (!this.pending.some((p) => p.network === network)) return;
    this.pending = this.pending.filter((p) => p.network !== network);
    this.log.info(`joined ${network} as ${record.record.name} (${record.record.address}), signed by ${record.record.signerFingerprint.slice(0, 16)}…`);
    this.deps.store.remove(network).catch((error: Error) => this.log.warn(`cannot update ${this.deps.store.path}: ${error.message}`));
  }
}
