// An admin redeems a short invite (PROTOCOL.md#v-redeem): a stranger's connection opened with J,
// the secret of an invite this node issued. Checked in an order that spends a use only when the
// joiner will be admitted: the network and this node's role, the roster (revoked, already a
// member, name or address taken), then the ledger (known secret, expiry, uses left) in one
// serialized step, so two joiners racing for a single-use invite cannot both get it. Then the
// joiner's record is signed, kept and pushed; the daemon admits it as that member.

import { isIP } from 'node:net';
import type { Clock } from '../clock/clock.js';
import { resolveNetworkAddress } from '../config/address.js';
import { peerNameProblem } from '../config/peer-values.js';
import { nodeNameProblem } from '../crypto/identity.js';
import { LedgerError, type Ledger } from '../invite/ledger.js';
import { printable, shortFingerprint, type Logger } from '../log/logger.js';
import type { MembershipCounters, RedeemRefusalCode } from '../metrics/membership-counters.js';
import { bytesEqual, formatIp, hostPrefix, prefixCovers } from '../netgraph/addr.js';
import { formatHostPort } from '../netgraph/hostport.js';
import { isVirtualHost } from '../quic/virtual-path.js';
import type { Membership } from './membership.js';
import { normalizeHost } from '../peer/admission.js';
import type { InviteRedeemer, RedeemRequest } from '../peer/redemption.js';

export type RedeemDecision =
  | { ok: true; /** The member's name: the peer the daemon admits the connection as. */ name: string; repeated: boolean }
  | { ok: false; code: RedeemRefusalCode; message: string };

export interface RedeemerDeps {
  membership: Membership;
  ledger: Ledger;
  clock: Clock;
  logger: Logger;
  counters: MembershipCounters;
  /** This node's names for peers in its config file, by name → fingerprint (a member may not take one). */
  filePeerFingerprint(name: string): string | undefined | null;
}

export class Redeemer implements InviteRedeemer {
  private readonly log: Logger;
  /**
   * Redemptions one at a time, checks through signing: two joiners racing for one name or address
   * must not both pass the roster checks before either is signed.
   */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: RedeemerDeps) {
    this.log = deps.logger.child('membership/redeem');
  }

  /** Whether this node issues invites at all: a stranger's connection is then worth holding for a J. */
  get active(): boolean {
    return this.deps.membership.adminNetworks.length > 0;
  }

  /** Why a stranger's key is refused before any invite, or null: a revoked member is told so. */
  revoked(fingerprint: string): string | null {
    for (const [network, roster] of this.deps.membership.rosterMap) {
      if (roster.get(fingerprint)?.record.kind === 'revoked') return `member.revoked ${REVOKED(network)}`;
    }
    return null;
  }

  async redeem(request: RedeemRequest): Promise<RedeemDecision> {
    const decided = this.tail.then(() => this.decide(request));
    this.tail = decided.catch(() => undefined);
    const decision = await decided;
    const who = `${printable(request.name)} (${shortFingerprint(request.fingerprint)}) from ${formatHostPort(request.remote.host, request.remote.port)}`;
    if (decision.ok) {
      this.deps.counters.redemption(decision.repeated ? 'repeated' : 'admitted');
      this.log.info(`${who} redeemed an invite to ${request.body.network}${decision.repeated ? ' (again: already a member)' : ''}`);
    } else {
      this.deps.counters.redemption(decision.code);
      this.log.warn(`refused ${who}: ${decision.code}: ${decision.message}`);
    }
    return decision;
  }

  private async decide({ body, fingerprint, name, remote }: RedeemRequest): Promise<RedeemDecision> {
    const { membership } = this.deps;
    const network = body.network;
    const roster = membership.rosterMap.get(network);
    const net = membership.networkConfig(network);
    if (!roster || !net || !membership.isAdminOf(network)) {
      return refuse('invite.invalid', `${printable(network)} is not a network this node is an admin of; the invite is not from here`);
    }
    const held = roster.get(fingerprint)?.record;
    if (held?.kind === 'revoked') return refuse('member.revoked', REVOKED(network));
    if (held && roster.isMember(fingerprint, this.deps.clock.now())) return { ok: true, name: held.name, repeated: true };

    const nameProblem = nodeNameProblem(name) ?? peerNameProblem(name);
    if (nameProblem) return refuse('member.name_taken', `its certificate name is not usable: ${nameProblem}; run vpnctl rekey --name NAME`);
    const address = body.address;
    if (!prefixCovers(net.prefix, hostPrefix(address))) return refuse('member.address_taken', `its address ${formatIp(address)} is outside ${network}; set networks.${network}.address inside the network's prefix`);
    if (bytesEqual(address, resolveNetworkAddress(net, membership.selfFingerprint))) {
      return refuse('member.address_taken', `its address ${formatIp(address)} is the admin's own in ${network}; set a free static networks.${network}.address and restart`);
    }
    for (const member of roster.members(this.deps.clock.now())) {
      if (member.fingerprint === fingerprint) continue;
      if (member.name === name) return refuse('member.name_taken', `${name} is already a member of ${network} with another key; run vpnctl rekey --name <other name> on the joiner, or revoke the old ${name}`);
      if (member.address === formatIp(address)) return refuse('member.address_taken', `${formatIp(address)} is ${member.name}'s address in ${network}; set a free static networks.${network}.address on the joiner and restart`);
    }
    const filePin = this.deps.filePeerFingerprint(name);
    if (filePin !== undefined && filePin !== fingerprint) {
      return refuse('member.name_taken', `${name} is a [[peers]] entry in the admin's config with another key; rename the joiner (vpnctl rekey --name) or fix that entry`);
    }

    let spent;
    try {
      spent = await this.deps.ledger.redeem(body.secret, { name, fingerprint }, new Date(this.deps.clock.now()), network);
    } catch (error) {
      if (error instanceof LedgerError) return refuse('invite.error', error.message);
      throw error;
    }
    if (!spent.ok) return refuse(spent.code, spent.message);

    // Observed ip:port: what its peers will dial. A relay's virtual address means nothing to them.
    const host = normalizeHost(remote.host);
    const endpoints = isVirtualHost(host) || isIP(host) === 0 ? [] : [formatHostPort(host, remote.port)];
    await membership.sign(
      {
        kind: 'member',
        version: (held?.version ?? 0n) + 1n,
        network,
        name,
        fingerprint,
        address: formatIp(address),
        // What the invite grants (vpnctl invite --routes): the subnets this member may announce.
        routes: spent.routes,
        endpoints,
        issuedAt: this.deps.clock.now(),
      },
      `${name} joined`,
    );
    return { ok: true, name, repeated: spent.repeated };
  }
}

/** A revocation is of a key: the way back is a new one, with a new invite. */
const REVOKED = (network: string): string =>
  `this node's key was revoked from ${network}; to rejoin, ask an admin for a new invite and run vpnctl join --force with it (that makes a new key)`;

function refuse(code: RedeemRefusalCode, message: string): RedeemDecision {
  return { ok: false, code, message };
}
