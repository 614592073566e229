// The admin's redemption ledger for short invites (issue 12): which invites are outstanding, how
// many uses each has left, and who redeemed them. A JSON file beside the admin's config, written
// 0600 and atomically (src/crypto/atomic-file.ts), so a crash mid-write leaves the old ledger,
// never a torn one that would either lock every joiner out or hand out uses twice.
//
// It stores SHA-256(secret), never the secret: a leaked ledger (a backup, a support bundle) must
// not be a stack of working invites.
//
// Every operation reads the file, changes it and writes it back, one at a time per Ledger (a
// promise chain), so two joiners racing for a single-use invite cannot both see uses_left = 1.
// A redemption counts only once its write succeeded: if the write fails the file still holds the
// old state, the next operation reads that, and the joiner is told of the error, not admitted.
// Reading on every operation (rather than caching) also keeps the ledger right when vpnctl, another
// process, issued an invite meanwhile. Two processes (vpnctl issuing, the daemon redeeming) are
// kept from interleaving their read-change-write by a lock file beside the ledger, created
// exclusively (O_EXCL) for the length of one operation; one left by a crashed process is taken
// over once it is older than any operation can last.

import { createHash } from 'node:crypto';
import { open, stat, unlink } from 'node:fs/promises';
import { networkNameProblem } from '../config/names.js';
import { errnoCode, errorText, readTextIfExists, writeFileAtomicAsync } from '../crypto/atomic-file.js';
import { formatPrefix, parseCidr } from '../netgraph/addr.js';
import { SHORT_INVITE_SECRET_BYTES } from './short-invite.js';

export const LEDGER_MODE = 0o600;
export const LEDGER_VERSION = 1;
/** A ceiling on --uses: an invite for more joiners than this is a standing credential. */
export const MAX_INVITE_USES = 1000;

export interface Redemption {
  name: string;
  /** The joiner's certificate fingerprint, 64 lower-case hex characters. */
  fingerprint: string;
  /** Seconds since the Unix epoch. */
  at: number;
}

export interface LedgerEntry {
  /** SHA-256 of the invite's secret, 64 lower-case hex characters. */
  secret_sha256: string;
  network: string;
  uses_left: number;
  /** Seconds since the Unix epoch, as in the invite. */
  expires_at: number;
  redeemed: Redemption[];
  /** Subnet routes the admin lets members who join with it announce (canonical CIDR); absent: none. */
  routes?: string[];
}

export interface LedgerFile {
  version: typeof LEDGER_VERSION;
  invites: LedgerEntry[];
}

/** How the ledger reaches its file; injected so tests can fail or hold a write. */
export interface LedgerFs {
  /** The file's text, or undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /** Replaces the file atomically with mode 0600; rejects if it could not. */
  write(path: string, text: string): Promise<void>;
  /** Holds the ledger against other processes until the returned release runs; absent: no lock (tests). */
  lock?(path: string): Promise<() => Promise<void>>;
}

/** A lock older than this was left by a crashed process: one operation takes milliseconds. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 20;

/** `<ledger>.lock`, created exclusively; waits for another holder, takes over a stale one. */
async function lockFile(path: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  const started = Date.now();
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', LEDGER_MODE);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => unlink(lockPath).catch(() => undefined);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const age = await stat(lockPath).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > STALE_LOCK_MS) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() - started > LOCK_WAIT_MS) {
      throw new Error(`${lockPath} has been held for over ${LOCK_WAIT_MS / 1000} s by another process; if none is running (vpnctl invite, the daemon), delete it`);
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

export const defaultLedgerFs: LedgerFs = {
  read: readTextIfExists,
  write: (path, text) => writeFileAtomicAsync(path, text, LEDGER_MODE),
  lock: lockFile,
};

export interface IssueRequest {
  /** The invite's 16-byte secret; only its hash is kept. */
  secret: Uint8Array;
  network: string;
  uses: number;
  /** Seconds since the Unix epoch. */
  expiresAt: number;
  /** Subnet routes (canonical CIDR) the joiners' signed records will carry. */
  routes?: readonly string[];
}

export interface Joiner {
  name: string;
  fingerprint: string;
}

export type RedeemCode = 'invite.invalid' | 'invite.expired' | 'invite.exhausted';

export type RedeemResult =
  | {
      ok: true;
      network: string;
      /** true when this fingerprint had redeemed it before: a retry, no use spent. */
      repeated: boolean;
      /** The subnet routes the invite grants (see IssueRequest.routes). */
      routes: string[];
    }
  | { ok: false; code: RedeemCode; message: string };

/** The ledger file cannot be read, is damaged, or could not be written; the message names the file. */
export class LedgerError extends Error {
  override name = 'LedgerError';
}

const HEX64_RE = /^[0-9a-f]{64}$/;
const FINGERPRINT_RE = /^[0-9a-fA-F]{64}$/;
const MAX_U32 = 0xffff_ffff;

export function secretHash(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** How vpnctl names an invite: the start of its secret's hash, which the ledger holds (never the secret). */
export function inviteId(entry: Pick<LedgerEntry, 'secret_sha256'>): string {
  return entry.secret_sha256.slice(0, 12);
}

export class Ledger {
  /** The tail of the operations queued so far; each starts when the one before settles. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly fs: LedgerFs = defaultLedgerFs,
  ) {}

  /** Records a new invite. Throws LedgerError (bad request, a damaged file, a failed write). */
  issue(request: IssueRequest): Promise<LedgerEntry> {
    return this.serialized(async () => {
      const problem = issueProblem(request);
      if (problem) throw new LedgerError(`cannot issue the invite: ${problem}`);
      const ledger = await this.load();
      const hash = secretHash(request.secret);
      if (ledger.invites.some((e) => e.secret_sha256 === hash)) {
        throw new LedgerError(`cannot issue the invite: its secret is already in ${this.path}; make a new random secret`);
      }
      const entry: LedgerEntry = { secret_sha256: hash, network: request.network, uses_left: request.uses, expires_at: request.expiresAt, redeemed: [] };
      if (request.routes?.length) entry.routes = [...request.routes];
      await this.save({ version: LEDGER_VERSION, invites: [...ledger.invites, entry] });
      return entry;
    });
  }

  /**
   * Spends one use of the invite with this secret for `joiner` (in `network`, when given). A joiner whose fingerprint already
   * redeemed it is admitted again without spending a use: its first answer may have been lost.
   * Resolves with a refusal for an unknown, expired or used-up invite; rejects with LedgerError
   * when the ledger cannot be read or the redemption could not be written (then it did not count).
   */
  redeem(secret: Uint8Array, joiner: Joiner, now: Date, network?: string): Promise<RedeemResult> {
    return this.serialized(async () => {
      if (!(secret instanceof Uint8Array) || secret.length !== SHORT_INVITE_SECRET_BYTES) {
        return refuse('invite.invalid', 'the invite is not known here; ask the admin for a new one');
      }
      if (!FINGERPRINT_RE.test(joiner.fingerprint)) {
        return refuse('invite.invalid', `the joiner's fingerprint '${joiner.fingerprint}' is not 64 hex characters`);
      }
      const fingerprint = joiner.fingerprint.toLowerCase();
      const ledger = await this.load();
      const hash = secretHash(secret);
      const index = ledger.invites.findIndex((e) => e.secret_sha256 === hash);
      const entry = ledger.invites[index];
      if (!entry) return refuse('invite.invalid', 'the invite is not known here (never issued, or removed); ask the admin for a new one');
      // Before anything is spent: a secret presented for another network is not that network's invite.
      if (network !== undefined && entry.network !== network) return refuse('invite.invalid', `the invite is for network ${entry.network}, not ${network}; join with the invite for ${network}`);
      // Before expiry and budget: the retry of an admitted joiner gets the answer it missed.
      if (entry.redeemed.some((r) => r.fingerprint === fingerprint)) return { ok: true, network: entry.network, repeated: true, routes: entry.routes ?? [] };
      if (now.getTime() >= entry.expires_at * 1000) {
        return refuse('invite.expired', `the invite expired at ${new Date(entry.expires_at * 1000).toISOString()}; ask the admin for a new one`);
      }
      if (entry.uses_left <= 0) return refuse('invite.exhausted', 'the invite has been used as many times as it allows; ask the admin for a new one');
      const updated: LedgerEntry = {
        ...entry,
        uses_left: entry.uses_left - 1,
        redeemed: [...entry.redeemed, { name: joiner.name, fingerprint, at: Math.floor(now.getTime() / 1000) }],
      };
      const invites = ledger.invites.slice();
      invites[index] = updated;
      await this.save({ version: LEDGER_VERSION, invites });
      return { ok: true, network: entry.network, repeated: false, routes: entry.routes ?? [] };
    });
  }

  /**
   * Cancels the invite whose secret hash starts with `id` (at least 8 hex characters, as `vpnctl
   * invites` shows it): it is removed, so the daemon refuses it as invite.invalid from now on.
   * Members who already redeemed it stay members (revoke them for that). Throws LedgerError.
   */
  cancel(id: string): Promise<LedgerEntry> {
    return this.serialized(async () => {
      const prefix = id.trim().toLowerCase();
      if (!/^[0-9a-f]{8,64}$/.test(prefix)) throw new LedgerError(`'${id}' is not an invite id (8 or more hex characters, as vpnctl invites lists them)`);
      const ledger = await this.load();
      const matches = ledger.invites.filter((e) => e.secret_sha256.startsWith(prefix));
      if (matches.length === 0) throw new LedgerError(`no invite with id ${prefix} in ${this.path} (vpnctl invites lists them)`);
      if (matches.length > 1) throw new LedgerError(`${matches.length} invites have ids starting ${prefix}; give more of the id`);
      await this.save({ version: LEDGER_VERSION, invites: ledger.invites.filter((e) => e !== matches[0]) });
      return matches[0]!;
    });
  }

  /** The ledger as the file holds it now (an empty one when there is no file). */
  read(): Promise<LedgerFile> {
    return this.serialized(() => this.load());
  }

  private serialized<T>(op: () => Promise<T>): Promise<T> {
    const locked = async (): Promise<T> => {
      let release: (() => Promise<void>) | undefined;
      try {
        release = await this.fs.lock?.(this.path);
      } catch (err) {
        throw new LedgerError(`cannot lock the invite ledger ${this.path}: ${errorText(err)}`);
      }
      try {
        return await op();
      } finally {
        await release?.();
      }
    };
    const result = this.tail.then(locked);
    // The chain goes on after a failure: one failed write must not wedge every later redemption.
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async load(): Promise<LedgerFile> {
    let text: string | undefined;
    try {
      text = await this.fs.read(this.path);
    } catch (err) {
      throw new LedgerError(`cannot read the invite ledger ${this.path}: ${errorText(err)}`);
    }
    if (text === undefined) return { version: LEDGER_VERSION, invites: [] };
    const parsed = parseLedger(text);
    if (typeof parsed === 'string') {
      throw new LedgerError(
        `the invite ledger ${this.path} is damaged (${parsed}); restore it from a backup, or delete it to cancel every outstanding short invite`,
      );
    }
    return parsed;
  }

  private async save(ledger: LedgerFile): Promise<void> {
    try {
      await this.fs.write(this.path, `${JSON.stringify(ledger, null, 2)}\n`);
    } catch (err) {
      throw new LedgerError(`cannot write the invite ledger ${this.path} (nothing was changed): ${errorText(err)}`);
    }
  }
}

function refuse(code: RedeemCode, message: string): RedeemResult {
  return { ok: false, code, message };
}

function issueProblem(r: IssueRequest): string | null {
  if (!(r.secret instanceof Uint8Array) || r.secret.length !== SHORT_INVITE_SECRET_BYTES) {
    return `the secret must be ${SHORT_INVITE_SECRET_BYTES} random bytes`;
  }
  const nameProblem = networkNameProblem(r.network);
  if (nameProblem) return nameProblem;
  if (!Number.isInteger(r.uses) || r.uses < 1 || r.uses > MAX_INVITE_USES) return `--uses ${r.uses} must be a whole number 1..${MAX_INVITE_USES}`;
  if (!isU32(r.expiresAt)) return `the expiry ${r.expiresAt} is not whole seconds since 1970 that fit in 32 bits`;
  for (const route of r.routes ?? []) if (routeProblem(route)) return `--routes ${routeProblem(route)}`;
  if ((r.routes?.length ?? 0) > MAX_INVITE_ROUTES) return `--routes lists ${r.routes!.length} prefixes; a membership record holds at most ${MAX_INVITE_ROUTES}`;
  return null;
}

function isU32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_U32;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Exactly the keys `keys` (and any of `optional`), or which one is wrong: a typo'd key would
 * otherwise be silently dropped on the next write.
 */
function keysProblem(obj: Record<string, unknown>, keys: readonly string[], where: string, optional: readonly string[] = []): string | null {
  for (const key of Object.keys(obj)) if (!keys.includes(key) && !optional.includes(key)) return `${where} has an unknown key '${key}'`;
  for (const key of keys) if (!(key in obj)) return `${where} has no '${key}'`;
  return null;
}

/** A membership record holds at most this many subnet routes (src/roster/record.ts MAX_ROUTES). */
export const MAX_INVITE_ROUTES = 64;

/** Why `text` is not a canonical CIDR with host bits zero, or null. */
function routeProblem(text: unknown): string | null {
  if (typeof text !== 'string') return 'a route is not a string';
  const parsed = parseCidr(text);
  if (!parsed.ok) return parsed.error;
  return formatPrefix(parsed.prefix) === text ? null : `'${text}' is not in canonical form (write ${formatPrefix(parsed.prefix)})`;
}

/** The ledger in `text`, or what is wrong with it, naming the entry and field. */
export function parseLedger(text: string): LedgerFile | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${errorText(err)}`;
  }
  if (!isObject(value)) return 'expected a JSON object';
  const top = keysProblem(value, ['version', 'invites'], 'the file');
  if (top) return top;
  if (value.version !== LEDGER_VERSION) return `version ${JSON.stringify(value.version)} is not ${LEDGER_VERSION}`;
  if (!Array.isArray(value.invites)) return 'invites is not a list';
  const invites: LedgerEntry[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of value.invites.entries()) {
    const where = `invites[${i}]`;
    if (!isObject(raw)) return `${where} is not an object`;
    const keys = keysProblem(raw, ['secret_sha256', 'network', 'uses_left', 'expires_at', 'redeemed'], where, ['routes']);
    if (keys) return keys;
    if (typeof raw.secret_sha256 !== 'string' || !HEX64_RE.test(raw.secret_sha256)) return `${where}.secret_sha256 is not 64 lower-case hex characters`;
    if (seen.has(raw.secret_sha256)) return `${where}.secret_sha256 appears twice`;
    seen.add(raw.secret_sha256);
    if (typeof raw.network !== 'string' || networkNameProblem(raw.network)) return `${where}.network is not a valid network name`;
    if (!isU32(raw.uses_left) || raw.uses_left > MAX_INVITE_USES) return `${where}.uses_left is not a whole number 0..${MAX_INVITE_USES}`;
    if (!isU32(raw.expires_at)) return `${where}.expires_at is not whole seconds since 1970`;
    if (!Array.isArray(raw.redeemed)) return `${where}.redeemed is not a list`;
    const redeemed: Redemption[] = [];
    for (const [j, r] of raw.redeemed.entries()) {
      const rWhere = `${where}.redeemed[${j}]`;
      if (!isObject(r)) return `${rWhere} is not an object`;
      const rKeys = keysProblem(r, ['name', 'fingerprint', 'at'], rWhere);
      if (rKeys) return rKeys;
      if (typeof r.name !== 'string') return `${rWhere}.name is not a string`;
      if (typeof r.fingerprint !== 'string' || !HEX64_RE.test(r.fingerprint)) return `${rWhere}.fingerprint is not 64 lower-case hex characters`;
      if (!isU32(r.at)) return `${rWhere}.at is not whole seconds since 1970`;
      redeemed.push({ name: r.name, fingerprint: r.fingerprint, at: r.at });
    }
    const entry: LedgerEntry = { secret_sha256: raw.secret_sha256, network: raw.network, uses_left: raw.uses_left, expires_at: raw.expires_at, redeemed };
    if (raw.routes !== undefined) {
      if (!Array.isArray(raw.routes) || raw.routes.length > MAX_INVITE_ROUTES) return `${where}.routes is not a list of at most ${MAX_INVITE_ROUTES} prefixes`;
      for (const route of raw.routes) {
        const problem = routeProblem(route);
        if (problem) return `${where}.routes: ${problem}`;
      }
      entry.routes = [...(raw.routes as string[])];
    }
    invites.push(entry);
  }
  return { version: LEDGER_VERSION, invites };
}
