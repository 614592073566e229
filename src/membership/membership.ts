// The signed rosters of one node (issue 12): the one owner of every membership record it holds,
// per network with admins. It verifies what arrives, merges it, keeps the file, pushes changes
// on (gossip.ts), and turns the rosters into the config the daemon runs (roster-peers.ts), so a
// member added or revoked anywhere is admitted, dialed or dropped here through the reload path.

import type { Clock } from '../clock/clock.js';
import { resolveNetworkAddress } from '../config/address.js';
import type { Config, NetworkConfig } from '../config/types.js';
import type { Identity } from '../crypto/identity.js';
import { printable, shortFingerprint, type Logger } from '../log/logger.js';
import type { MembershipCounters } from '../metrics/membership-counters.js';
import { formatIp } from '../netgraph/addr.js';
import { MAX_RECORD_MESSAGE_BYTES } from '../control/roster-messages.js';
import { decodeRecord, type RecordFields, type VerifiedRecord } from '../roster/record.js';
import { Roster, type MergeOutcome } from '../roster/roster.js';
import { signRecord, verifyRecord } from '../roster/signature.js';
import type { RosterFile } from './roster-file.js';
import { refusalKey, rosterPeers } from './roster-peers.js';

/** Records one network's roster holds at most (members and revocations); past it, new fingerprints are refused. */
export const MAX_ROSTER_RECORDS = 4096;

export interface MembershipDeps {
  identity: Pick<Identity, 'name' | 'fingerprint' | 'certDer' | 'privateKey'>;
  clock: Clock;
  logger: Logger;
  counters: MembershipCounters;
  file: RosterFile;
  /** Records that changed the roster, for the other peers (Gossip.push); `from` is who sent them. */
  push(records: readonly VerifiedRecord[], fromFingerprint: string | undefined): void;
  /**
   * Runs effective() as the node's config; the daemon serializes it with reloads and calls
   * effective() when its turn comes, so a reload in between is never undone.
   */
  apply(cause: string): Promise<void>;
  /** This node is now a signed member of `network` (a joiner's invite is spent). */
  joined?(network: string, record: VerifiedRecord): void;
}

export type OfferResult = MergeOutcome | 'malformed' | 'not_admin' | 'bad_signature' | 'expired' | 'no_roster' | 'full';

export class Membership {
  private fileConfig: Config;
  private readonly rosters = new Map<string, Roster>();
  /** Members the local config keeps from being peers, and why (for `vpnctl members`). */
  private refusedMembers = new Map<string, string>();
  private readonly log: Logger;
  private deferApply = false;
  /** The soonest expires_at among the members effective() last counted (Unix ms). */
  private nextExpiry = Infinity;

  constructor(
    fileConfig: Config,
    private readonly deps: MembershipDeps,
  ) {
    this.fileConfig = fileConfig;
    this.log = deps.logger.child('membership');
  }

  /** Loads the roster file (each record verified again) and signs this admin's own record if due. */
  async start(): Promise<Config> {
    const keepsRoster = [...this.fileConfig.networks.values()].some((net) => net.admins?.length);
    // A node without admins anywhere never reads (nor needs) a roster file.
    this.rebuild(keepsRoster ? await this.deps.file.load() : []);
    await this.signSelfDeferred();
    return this.effective();
  }

  /** A reload: admins may have changed, so every held record is judged again. */
  async configChanged(fileConfig: Config): Promise<Config> {
    const held = this.allRecords();
    this.fileConfig = fileConfig;
    this.rebuild(held);
    await this.signSelfDeferred();
    return this.effective();
  }

  /** The config file as loaded (the roster's peers not added). */
  get file(): Config {
    return this.fileConfig;
  }

  private async signSelfDeferred(): Promise<void> {
    this.deferApply = true;
    try {
      await this.signSelf();
    } finally {
      this.deferApply = false;
    }
  }

  /** The config the daemon runs: the file's, with every roster member it does not refuse as a peer. */
  effective(): Config {
    const members = this.rosterMembers();
    const derived = rosterPeers(this.fileConfig.peers, members, this.deps.identity.fingerprint);
    this.refusedMembers = derived.refused;
    this.nextExpiry = Math.min(Infinity, ...members.flatMap((r) => r.members.map((m) => m.expiresAt ?? Infinity)));
    return { ...this.fileConfig, peers: derived.peers };
  }

  /**
   * Once a tick: a member whose record expired since the config was last derived stops being a
   * peer now, not at the next roster change. The soonest expiry is kept, so this costs a compare.
   */
  async expire(): Promise<void> {
    if (this.deps.clock.now() <= this.nextExpiry) return;
    this.nextExpiry = Infinity;
    await this.deps.apply('roster: a membership record expired');
  }

  get rosterMap(): ReadonlyMap<string, Roster> {
    return this.rosters;
  }

  get selfFingerprint(): string {
    return this.deps.identity.fingerprint;
  }

  /**
   * An admin removes a member: a revocation with the next version, pushed to every peer in the
   * network (each drops the member's sessions on receipt). Throws with the fix in the message.
   */
  async revoke(name: string, network: string | undefined): Promise<VerifiedRecord> {
    const candidates = [...this.rosters.entries()].filter(([n]) => network === undefined || n === network);
    if (network !== undefined && candidates.length === 0) throw new Error(`no roster for network '${network}' here (networks with admins: ${[...this.rosters.keys()].join(', ') || 'none'})`);
    const now = this.deps.clock.now();
    const found = candidates.flatMap(([n, roster]) => roster.members(now).filter((m) => m.name === name).map((m) => ({ network: n, record: m })));
    if (found.length === 0) throw new Error(`no member named ${name}${network ? ` in ${network}` : ''} (see vpnctl members)`);
    if (found.length > 1) throw new Error(`${name} is a member of ${found.map((f) => f.network).join(' and ')}; say which with --network`);
    const { record } = found[0]!;
    if (!this.isAdminOf(record.network)) throw new Error(`this node is not an admin of ${record.network}; run vpnctl revoke on an admin (${this.admins(record.network).map((a) => shortFingerprint(a)).join(', ')})`);
    if (record.fingerprint === this.deps.identity.fingerprint) throw new Error(`${name} is this node; an admin cannot revoke itself (remove it from networks.${record.network}.admins instead)`);
    // No expiry: a revocation must outlive the record it replaces.
    const { network: net, fingerprint, address, routes, endpoints, version } = record;
    return await this.sign({ kind: 'revoked', version: version + 1n, network: net, name, fingerprint, address, routes, endpoints, issuedAt: now }, `revoked ${name}`);
  }

  admins(network: string): readonly string[] {
    return this.fileConfig.networks.get(network)?.admins ?? [];
  }

  isAdminOf(network: string): boolean {
    return this.admins(network).includes(this.deps.identity.fingerprint);
  }

  /** Networks this node signs for: it may redeem invites. */
  get adminNetworks(): string[] {
    return [...this.rosters.keys()].filter((n) => this.isAdminOf(n));
  }

  networkConfig(network: string): NetworkConfig | undefined {
    return this.fileConfig.networks.get(network);
  }

  refusal(network: string, fingerprint: string): string | null {
    return this.refusedMembers.get(refusalKey(network, fingerprint)) ?? null;
  }

  /** A record from a peer: verified against the network's admins, merged, and on change kept, pushed and applied. */
  async offer(bytes: Uint8Array, fromFingerprint: string | undefined): Promise<OfferResult> {
    const result = this.merge(bytes);
    if (result.outcome === 'added' || result.outcome === 'updated' || result.outcome === 'revoked') {
      await this.changed([result.verified!], fromFingerprint, `${result.outcome} ${printable(result.verified!.record.name)}`);
    }
    return result.outcome;
  }

  /** Signs a record as this admin and takes it like one that arrived. Throws when it cannot be signed or kept. */
  async sign(fields: RecordFields, cause: string): Promise<VerifiedRecord> {
    const bytes = signRecord(fields, this.deps.identity.certDer, this.deps.identity.privateKey);
    if (bytes.length > MAX_RECORD_MESSAGE_BYTES) throw new Error(`the record for ${fields.name} is ${bytes.length} bytes, more than one control message carries; give it fewer routes or endpoints`);
    const result = this.merge(bytes);
    if (!result.verified || (result.outcome !== 'added' && result.outcome !== 'updated' && result.outcome !== 'revoked')) {
      throw new Error(`the signed record for ${fields.name} in ${fields.network} was not taken (${result.outcome})`);
    }
    await this.changed([result.verified], undefined, cause);
    return result.verified;
  }

  /** Every record held, revocations included, as received. */
  allRecords(): Uint8Array[] {
    return [...this.rosters.values()].flatMap((roster) => roster.digest().map((e) => roster.get(e.fingerprint)!.bytes));
  }

  private rebuild(records: readonly Uint8Array[]): void {
    this.rosters.clear();
    for (const [name, net] of this.fileConfig.networks) if (net.admins?.length) this.rosters.set(name, new Roster(name));
    let dropped = 0;
    for (const bytes of records) {
      const { outcome } = this.merge(bytes, false);
      if (outcome !== 'added' && outcome !== 'updated' && outcome !== 'revoked') dropped++;
    }
    if (dropped > 0) this.log.warn(`dropped ${dropped} held membership record(s) that no longer verify against the config's admins (or were superseded)`);
  }

  private merge(bytes: Uint8Array, count = true): { outcome: OfferResult; verified?: VerifiedRecord } {
    const tally = (network: string, outcome: OfferResult): { outcome: OfferResult } => {
      if (count) this.deps.counters.record(network, outcome);
      return { outcome };
    };
    const decoded = decodeRecord(bytes);
    if (!decoded.ok) return tally('', 'malformed');
    // Read, not believed: the network only says which admins must have signed it.
    const network = decoded.record.network;
    const roster = this.rosters.get(network);
    // Unlabelled: a peer could otherwise mint a metric series per made-up network name.
    if (!roster) return tally('', 'no_roster');
    const verdict = verifyRecord(bytes, this.admins(network), this.deps.clock.now());
    if (!verdict.ok) {
      if (count) this.log.warn(`refused a membership record: ${verdict.error}`);
      return tally(network, verdict.reason);
    }
    if (!roster.get(verdict.record.fingerprint) && roster.digest().length >= MAX_ROSTER_RECORDS) return tally(network, 'full');
    const outcome = roster.merge(verdict.verified);
    if (count) this.deps.counters.record(network, outcome);
    if (outcome === 'conflict' && count) {
      this.log.warn(`refused the record of ${printable(verdict.record.name)} (${shortFingerprint(verdict.record.fingerprint)}) in ${network}: another member holds that name`);
    }
    return { outcome, verified: verdict.verified };
  }

  private async changed(records: VerifiedRecord[], fromFingerprint: string | undefined, cause: string): Promise<void> {
    for (const verified of records) {
      const { record } = verified;
      if (record.fingerprint === this.deps.identity.fingerprint && record.kind === 'member') this.deps.joined?.(record.network, verified);
      if (record.fingerprint === this.deps.identity.fingerprint && record.kind === 'revoked') {
        this.log.error(`this node was revoked from ${record.network} by ${shortFingerprint(record.signerFingerprint)}; its members are no longer peers (ask an admin for a new invite)`);
      }
    }
    this.deps.push(records, fromFingerprint);
    try {
      await this.deps.file.save(() => this.allRecords());
    } catch (error) {
      this.log.error(`cannot write the roster ${this.deps.file.path} (the change holds until restart): ${(error as Error).message}`);
    }
    // start() and configChanged() hand their caller the effective config to apply themselves.
    if (!this.deferApply) await this.deps.apply(`roster: ${cause}`);
  }

  /** An admin's own record: its name and overlay address, signed again when either changed. */
  private async signSelf(): Promise<void> {
    const { identity } = this.deps;
    for (const network of this.adminNetworks) {
      const net = this.fileConfig.networks.get(network)!;
      const address = formatIp(resolveNetworkAddress(net, identity.fingerprint));
      const held = this.rosters.get(network)!.get(identity.fingerprint)?.record;
      if (held && held.kind === 'member' && held.address === address && held.name === identity.name) continue;
      await this.sign(
        {
          kind: 'member',
          version: (held?.version ?? 0n) + 1n,
          network,
          name: identity.name,
          fingerprint: identity.fingerprint,
          address,
          routes: [],
          endpoints: [],
          issuedAt: this.deps.clock.now(),
        },
        `${identity.name} signed its own record`,
      );
    }
  }

  private rosterMembers() {
    const now = this.deps.clock.now();
    return [...this.rosters.entries()].map(([network, roster]) => ({
      network,
      members: roster.members(now),
      selfRevoked: roster.get(this.deps.identity.fingerprint)?.record.kind === 'revoked',
    }));
  }
}
