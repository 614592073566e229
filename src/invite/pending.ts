// A joiner's invites still to redeem (issue 12): `vpnctl join` writes the invite's secret here,
// the daemon presents it to the admin on its first connection (J, PROTOCOL.md#v-redeem) and
// removes it once it holds its own signed membership record. A JSON file beside the config, 0600:
// until it is redeemed the secret is as good as the invite.

import { networkNameProblem } from '../config/names.js';
import { errorText, parseVersionedList, readTextIfExists, readTextIfExistsSync, writeFileAtomic, writeFileAtomicAsync } from '../crypto/atomic-file.js';
import { SHORT_INVITE_SECRET_BYTES } from './short-invite.js';

export const PENDING_VERSION = 1;
export const PENDING_MODE = 0o600;

export interface PendingInvite {
  network: string;
  /** The admin's fingerprint (lowercase hex): the secret is shown to this node only. */
  admin: string;
  secret: Uint8Array;
}

const HEX64_RE = /^[0-9a-f]{64}$/;
const SECRET_RE = new RegExp(`^[0-9a-f]{${SHORT_INVITE_SECRET_BYTES * 2}}$`);

export class PendingInviteError extends Error {
  override name = 'PendingInviteError';
}

/** The file's invites, or what is wrong with it. */
export function parsePendingInvites(text: string): PendingInvite[] | string {
  const parsed = parseVersionedList(text, PENDING_VERSION, 'invites');
  if (typeof parsed === 'string') return parsed;
  const out: PendingInvite[] = [];
  for (const [i, raw] of parsed.list.entries()) {
    const e = raw as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) return `invites[${i}] is not an object`;
    if (typeof e.network !== 'string' || networkNameProblem(e.network)) return `invites[${i}].network is not a network name`;
    if (typeof e.admin !== 'string' || !HEX64_RE.test(e.admin)) return `invites[${i}].admin is not 64 lowercase hex characters`;
    if (typeof e.secret !== 'string' || !SECRET_RE.test(e.secret)) return `invites[${i}].secret is not ${SHORT_INVITE_SECRET_BYTES * 2} lowercase hex characters`;
    out.push({ network: e.network, admin: e.admin, secret: new Uint8Array(Buffer.from(e.secret, 'hex')) });
  }
  return out;
}

export function renderPendingInvites(invites: readonly PendingInvite[]): string {
  const list = invites.map((p) => ({ network: p.network, admin: p.admin, secret: Buffer.from(p.secret).toString('hex') }));
  return `${JSON.stringify({ version: PENDING_VERSION, invites: list }, null, 2)}\n`;
}

function damaged(path: string, why: string): PendingInviteError {
  return new PendingInviteError(`${path} is damaged (${why}); run vpnctl join again with the invite, or delete the file if this node has joined`);
}

/** For vpnctl join: adds (or replaces, per network) an invite to redeem. */
export function addPendingInvite(path: string, invite: PendingInvite): void {
  let text: string | undefined;
  try {
    text = readTextIfExistsSync(path);
  } catch (err) {
    throw new PendingInviteError(`cannot read ${path}: ${errorText(err)}`);
  }
  const held = text === undefined ? [] : parsePendingInvites(text);
  if (typeof held === 'string') throw damaged(path, held);
  writeFileAtomic(path, renderPendingInvites([...held.filter((p) => p.network !== invite.network), invite]), PENDING_MODE);
}

/** The daemon's view: reads on demand, removes once redeemed. Never blocks the event loop. */
export class PendingInvites {
  constructor(readonly path: string) {}

  async read(): Promise<PendingInvite[]> {
    let text: string | undefined;
    try {
      text = await readTextIfExists(this.path);
    } catch (err) {
      throw new PendingInviteError(`cannot read ${this.path}: ${errorText(err)}`);
    }
    if (text === undefined) return [];
    const parsed = parsePendingInvites(text);
    if (typeof parsed === 'string') throw damaged(this.path, parsed);
    return parsed;
  }

  /** Drops the invite for `network` (this node is a member now). */
  async remove(network: string): Promise<void> {
    const held = await this.read();
    const rest = held.filter((p) => p.network !== network);
    if (rest.length === held.length) return;
    await writeFileAtomicAsync(this.path, renderPendingInvites(rest), PENDING_MODE);
  }
}
