// Trust on first use (PROTOCOL.md section 2): the known-peers file remembers the first
// fingerprint each peer *name* presented, and a later different one is refused. A pin in the
// config always wins over the file.
//
// The file is read once (first use of the store) and again on reload(): a handshake never
// touches the disk. A first use is written atomically and asynchronously, so learning one peer
// never stalls the traffic of the others; the caller admits the peer only once it is on disk.

import { readFileSync, promises as fsPromises } from 'node:fs';
import { defaultFsAsync, errnoCode, errorText, writeFileAtomicAsync, type AtomicFsAsync } from './atomic-file.js';
import { isFingerprint } from './identity.js';

export class TrustStoreError extends Error {
  override name = 'TrustStoreError';
}

export type TrustDecision =
  | { ok: true; how: 'pinned' | 'known' | 'first-use' }
  | { ok: false; reason: 'pin-mismatch' | 'tofu-mismatch'; message: string };

/** What admission reads; a TrustStore, or a fixed map in tests. */
export interface TrustView {
  readonly path: string;
  get(name: string): string | undefined;
  findName(fingerprint: string): string | undefined;
  check(name: string, fingerprint: string, pinned?: string): TrustDecision;
}

export interface TrustStoreOptions {
  /** Replaces node:fs/promises for writes, so tests can make one fail half-way. */
  fs?: AtomicFsAsync;
  /** Replaces the file read, for the same reason. */
  readFile?: (path: string) => Promise<string>;
}

export class TrustStore implements TrustView {
  private readonly fs: AtomicFsAsync;
  private readonly readFile: (path: string) => Promise<string>;
  private entries_: Map<string, string> | null = null;
  /** Writes go one after another, each with the whole map as it was when it was queued. */
  private writing: Promise<void> = Promise.resolve();
  /** First uses recorded while a reload reads the file, carried into what it read. */
  private readonly learning = new Set<Map<string, string>>();

  constructor(
    readonly path: string,
    opts: TrustStoreOptions = {},
  ) {
    this.fs = opts.fs ?? defaultFsAsync;
    this.readFile = opts.readFile ?? ((p) => fsPromises.readFile(p, 'utf8'));
  }

  /**
   * Reads the file (daemon start) or reads it again, e.g. after the user edited it by hand to
   * forget a changed key (`vpnctl reload`), without blocking the event loop. A missing file is an
   * empty store; a corrupt one rejects and the old entries stay.
   */
  async reload(): Promise<void> {
    // A first use being written must be in the file before the file is read back, and one learned
    // while it is read must not be lost when the read replaces the entries.
    await this.writing;
    const learnedMeanwhile = new Map<string, string>();
    this.learning.add(learnedMeanwhile);
    let text: string | null;
    try {
      try {
        text = await this.readFile(this.path);
      } catch (err) {
        text = this.readFailed(err);
      }
      const entries = this.parse(text);
      for (const [name, fingerprint] of learnedMeanwhile) entries.set(name, fingerprint);
      this.entries_ = entries;
    } finally {
      this.learning.delete(learnedMeanwhile);
    }
  }

  get(name: string): string | undefined {
    return this.map().get(name);
  }

  entries(): Record<string, string> {
    return Object.fromEntries(this.map());
  }

  /** The name a fingerprint was learned under, for accepting inbound connections. */
  findName(fingerprint: string): string | undefined {
    const wanted = fingerprint.toLowerCase();
    for (const [name, fp] of this.map()) if (fp === wanted) return name;
    return undefined;
  }

  /**
   * Whether `name` presenting `fingerprint` is trusted. 'first-use' means nothing is known for
   * the name yet: the caller decides whether this connection may teach it, then calls learn().
   */
  check(name: string, fingerprint: string, pinned?: string): TrustDecision {
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
    const known = this.map().get(name);
    if (known === undefined) return { ok: true, how: 'first-use' };
    if (known === presented) return { ok: true, how: 'known' };
    return {
      ok: false,
      reason: 'tofu-mismatch',
      message:
        `peer ${name} presented certificate fingerprint ${presented}, but ${this.path} remembers ${known} from first use; ` +
        `if ${name} really changed its key, remove its entry from ${this.path} and run vpnctl reload (or pin the new fingerprint in the config)`,
    };
  }

  /**
   * Records a first use. The entry counts at once (a second connection racing this one is judged
   * against it) and the returned promise settles when the file is written. If the write fails
   * the entry is taken back and the promise rejects: an unrecorded first use must not be
   * trusted, or a different key could be "first" after a restart.
   */
  learn(name: string, fingerprint: string): Promise<void> {
    if (name === '') return Promise.reject(new TrustStoreError('peer name must not be empty'));
    if (!isFingerprint(fingerprint)) {
      return Promise.reject(new TrustStoreError(`'${fingerprint}' is not a fingerprint (expected 64 hex characters)`));
    }
    const value = fingerprint.toLowerCase();
    const entries = this.map();
    const previous = entries.get(name);
    entries.set(name, value);
    for (const meanwhile of this.learning) meanwhile.set(name, value);
    return this.persist().catch((error: unknown) => {
      // Taken back wherever it went: the current entries (a reload may have replaced the map).
      const now = this.map();
      if (now.get(name) === value) {
        if (previous === undefined) now.delete(name);
        else now.set(name, previous);
      }
      for (const meanwhile of this.learning) if (meanwhile.get(name) === value) meanwhile.delete(name);
      throw error;
    });
  }

  /** Forgets a peer so its next fingerprint is learned on first use. Resolves to whether it was known. */
  async remove(name: string): Promise<boolean> {
    if (!this.map().delete(name)) return false;
    await this.persist();
    return true;
  }

  /** The entries; a store used before any reload() (tools, tests) reads the file once, synchronously. */
  private map(): Map<string, string> {
    if (this.entries_ === null) {
      let text: string | null;
      try {
        text = readFileSync(this.path, 'utf8');
      } catch (err) {
        text = this.readFailed(err);
      }
      this.entries_ = this.parse(text);
    }
    return this.entries_;
  }

  /** A missing file is an empty store (null); any other read error is refused. */
  private readFailed(err: unknown): null {
    if (errnoCode(err) === 'ENOENT') return null;
    throw new TrustStoreError(`cannot read known-peers file ${this.path}: ${errorText(err)}`);
  }

  private parse(text: string | null): Map<string, string> {
    if (text === null) return new Map();
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

  private persist(): Promise<void> {
    const sorted = Object.fromEntries([...this.map()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const text = JSON.stringify(sorted, null, 2) + '\n';
    const write = this.writing.then(() =>
      writeFileAtomicAsync(this.path, text, 0o600, this.fs).catch((err: unknown) => {
        throw new TrustStoreError(`cannot write known-peers file ${this.path}: ${errorText(err)}`);
      }),
    );
    // The chain continues after a failed write; each caller sees only its own outcome.
    this.writing = write.catch(() => undefined);
    return write;
  }
}
