// Trust on first use (PROTOCOL.md section 2): the known-peers file remembers the first
// fingerprint each peer *name* presented, and a later different one is refused. A pin in the
// config always wins over the file.

import { dirname } from 'node:path';
import { defaultFs, ensureDir, errnoCode, errorText, writeFileAtomic, type AtomicFs } from './atomic-file.js';
import { isFingerprint } from './identity.js';

export class TrustStoreError extends Error {
  override name = 'TrustStoreError';
}

export type TrustDecision =
  | { ok: true; how: 'pinned' | 'known' | 'first-use' }
  | { ok: false; reason: 'pin-mismatch' | 'tofu-mismatch'; message: string };

export interface TrustStoreOptions {
  /** Replaces node:fs, so tests can make a write fail half-way. */
  fs?: AtomicFs;
}

export class TrustStore {
  private readonly fs: AtomicFs;

  constructor(
    readonly path: string,
    opts: TrustStoreOptions = {},
  ) {
    this.fs = opts.fs ?? defaultFs;
  }

  /**
   * Reads the file; a missing file is an empty store. Every operation reads afresh instead of
   * caching: the fix for a key change is to edit this file by hand, and that edit must take
   * effect without restarting the daemon. The file is a few hundred bytes, read once per handshake.
   */
  load(): Map<string, string> {
    let text: string;
    try {
      text = this.fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return new Map();
      throw new TrustStoreError(`cannot read known-peers file ${this.path}: ${errorText(err)}`);
    }
    // Never fall back to an empty store on a bad file: that would re-trust every peer on first use.
    const corrupt = (why: string): TrustStoreError =>
      new TrustStoreError(
        `known-peers file ${this.path} is corrupt (${why}); fix it by hand or delete it to re-learn every peer on first use`,
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw corrupt(errorText(err));
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw corrupt('expected a JSON object of "peer name": "fingerprint"');
    }
    const entries = new Map<string, string>();
    for (const [name, value] of Object.entries(parsed)) {
      if (typeof value !== 'string' || !isFingerprint(value)) {
        throw corrupt(`entry ${JSON.stringify(name)} is not a 64-hex fingerprint`);
      }
      entries.set(name, value.toLowerCase());
    }
    return entries;
  }

  get(name: string): string | undefined {
    return this.load().get(name);
  }

  entries(): Record<string, string> {
    return Object.fromEntries(this.load());
  }

  /** The name a fingerprint was learned under, for accepting inbound connections. */
  findName(fingerprint: string): string | undefined {
    const wanted = fingerprint.toLowerCase();
    for (const [name, fp] of this.load()) if (fp === wanted) return name;
    return undefined;
  }

  set(name: string, fingerprint: string): void {
    if (name === '') throw new TrustStoreError('peer name must not be empty');
    if (!isFingerprint(fingerprint)) {
      throw new TrustStoreError(`'${fingerprint}' is not a fingerprint (expected 64 hex characters)`);
    }
    const entries = this.load();
    entries.set(name, fingerprint.toLowerCase());
    this.save(entries);
  }

  /** Forgets a peer so its next fingerprint is learned on first use. Returns whether it was known. */
  remove(name: string): boolean {
    const entries = this.load();
    if (!entries.delete(name)) return false;
    this.save(entries);
    return true;
  }

  /**
   * Decides whether `name` presenting `fingerprint` is trusted. On first use the fingerprint is
   * persisted before the decision is returned; if that write fails this throws rather than
   * accepting, because an unrecorded first use would let a different key be "first" next time.
   */
  verify(name: string, fingerprint: string, pinned?: string): TrustDecision {
    const presented = fingerprint.toLowerCase();
    if (pinned !== undefined && pinned !== '') {
      if (presented === pinned.toLowerCase()) return { ok: true, how: 'pinned' };
      return {
        ok: false,
        reason: 'pin-mismatch',
        message:
          `peer ${name} presented certificate fingerprint ${presented}, but the config pins ${pinned.toLowerCase()}; ` +
          `if ${name} really has a new key, update its fingerprint in the [[peers]] entry`,
      };
    }
    const entries = this.load();
    const known = entries.get(name);
    if (known !== undefined) {
      if (known === presented) return { ok: true, how: 'known' };
      return {
        ok: false,
        reason: 'tofu-mismatch',
        message:
          `peer ${name} presented certificate fingerprint ${presented}, but ${this.path} remembers ${known} from first use; ` +
          `if ${name} really changed its key, remove its entry from ${this.path} (or pin the new fingerprint in the config)`,
      };
    }
    entries.set(name, presented);
    this.save(entries);
    return { ok: true, how: 'first-use' };
  }

  private save(entries: Map<string, string>): void {
    const sorted = Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    try {
      ensureDir(dirname(this.path), 0o700, this.fs);
      writeFileAtomic(this.path, JSON.stringify(sorted, null, 2) + '\n', 0o600, this.fs);
    } catch (err) {
      throw new TrustStoreError(`cannot write known-peers file ${this.path}: ${errorText(err)}`);
    }
  }
}
