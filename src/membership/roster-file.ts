// Every signed record a node holds, kept beside its config (config/state-files.ts rosterPath), so
// a restarted node admits and dials its members before any gossip: `{ version: 1, records: [
// base64, … ] }`, written 0600 and atomically. The records are signed, so the file is not a
// secret nor trusted: each one is verified again on load against the config's admins, and one
// that no longer verifies (an admin removed from the config) is dropped, not believed.

import { errorText, parseVersionedList, readTextIfExists, writeFileAtomicAsync } from '../crypto/atomic-file.js';

export const ROSTER_FILE_VERSION = 1;
export const ROSTER_FILE_MODE = 0o600;

/** How the roster reaches its file; injected so tests can fail a write. */
export interface RosterFileFs {
  read(path: string): Promise<string | undefined>;
  write(path: string, text: string): Promise<void>;
}

export const defaultRosterFileFs: RosterFileFs = {
  read: readTextIfExists,
  write: (path, text) => writeFileAtomicAsync(path, text, ROSTER_FILE_MODE),
};

export class RosterFileError extends Error {
  override name = 'RosterFileError';
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** The records in `text`, or what is wrong with the file. */
export function parseRosterFile(text: string): Uint8Array[] | string {
  const parsed = parseVersionedList(text, ROSTER_FILE_VERSION, 'records');
  if (typeof parsed === 'string') return parsed;
  const out: Uint8Array[] = [];
  for (const [i, item] of parsed.list.entries()) {
    if (typeof item !== 'string' || !BASE64_RE.test(item)) return `records[${i}] is not base64 text`;
    out.push(new Uint8Array(Buffer.from(item, 'base64')));
  }
  return out;
}

export function renderRosterFile(records: readonly Uint8Array[]): string {
  return `${JSON.stringify({ version: ROSTER_FILE_VERSION, records: records.map((r) => Buffer.from(r).toString('base64')) }, null, 1)}\n`;
}

/**
 * Serialized writes of the whole roster: the latest state always lands last, and a failed write
 * is reported (the caller logs it) without wedging the next one.
 */
export class RosterFile {
  private tail: Promise<unknown> = Promise.resolve();
  /** A write queued and not started yet: later saves join it (it reads the records when it starts). */
  private queued: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly fs: RosterFileFs = defaultRosterFileFs,
  ) {}

  async load(): Promise<Uint8Array[]> {
    let text: string | undefined;
    try {
      text = await this.fs.read(this.path);
    } catch (err) {
      throw new RosterFileError(`cannot read the roster ${this.path}: ${errorText(err)}`);
    }
    if (text === undefined) return [];
    const parsed = parseRosterFile(text);
    if (typeof parsed === 'string') {
      throw new RosterFileError(`the roster ${this.path} is damaged (${parsed}); delete it: the node fetches the records again from its peers`);
    }
    return parsed;
  }

  /** Writes `records()` as it is when the write starts (so a burst of changes costs one write each, latest last). */
  save(records: () => readonly Uint8Array[]): Promise<void> {
    if (this.queued) return this.queued;
    const result = this.tail.then(() => {
      this.queued = null;
      return this.fs.write(this.path, renderRosterFile(records()));
    });
    this.queued = result;
    this.tail = result.catch(() => undefined);
    return result;
  }
}
