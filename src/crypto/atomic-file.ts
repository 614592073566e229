// Crash-safe file replacement for keys and the known-peers file: write a temp file in the same
// directory, fsync it, then rename over the target. rename(2) within one filesystem is atomic, so
// a reader (or a crash) sees either the old file or the new one, never a torn write — losing the
// known-peers file would silently turn every pinned-by-TOFU peer back into a "first use".

import * as nodeFs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** The fs calls this module makes; injectable so tests can make one of them fail. */
export type AtomicFs = Pick<
  typeof nodeFs,
  | 'openSync'
  | 'writeSync'
  | 'fsyncSync'
  | 'fchmodSync'
  | 'closeSync'
  | 'renameSync'
  | 'unlinkSync'
  | 'mkdirSync'
  | 'existsSync'
  | 'readFileSync'
>;

export const defaultFs: AtomicFs = nodeFs;

/**
 * Creates `dir` and missing parents with `mode` (only the directories it creates get the mode;
 * an existing directory is left alone — it may be shared, like /etc).
 */
export function ensureDir(dir: string, mode: number, fs: AtomicFs = defaultFs): void {
  fs.mkdirSync(dir, { recursive: true, mode });
}

export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number, fs: AtomicFs = defaultFs): void {
  const dir = dirname(path);
  // Random suffix: two writers (daemon and vpnctl) must never share a temp file.
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', mode);
    // fchmod because the open() mode is filtered by the umask; a key must end up 0600 regardless.
    fs.fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // The original error is the one worth reporting.
      }
    }
    try {
      fs.unlinkSync(temp);
    } catch {
      // Temp file may never have been created.
    }
    throw err;
  }
  syncDir(dir, fs);
}

/** Makes the rename itself durable. Best effort: some filesystems refuse fsync on a directory. */
function syncDir(dir: string, fs: AtomicFs): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Durability of the directory entry is a bonus; the file content is already synced.
  }
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The promise-based fs calls writeFileAtomicAsync makes; injectable like AtomicFs. */
export interface AtomicFsAsync {
  open(path: string, flags: string, mode: number): Promise<Pick<FileHandle, 'chmod' | 'write' | 'sync' | 'close'>>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<unknown>;
}

export const defaultFsAsync: AtomicFsAsync = nodeFs.promises;

/**
 * writeFileAtomic without blocking the event loop: the daemon learns a peer on first use while
 * other peers' traffic flows, and an fsync can take tens of milliseconds.
 */
export async function writeFileAtomicAsync(path: string, data: string, mode: number, fs: AtomicFsAsync = defaultFsAsync): Promise<void> {
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: Awaited<ReturnType<AtomicFsAsync['open']>> | undefined;
  try {
    handle = await fs.open(temp, 'wx', mode);
    await handle.chmod(mode);
    await handle.write(data, null, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDirAsync(dir, fs);
}

async function syncDirAsync(dir: string, fs: AtomicFsAsync): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r', 0);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // As in syncDir: best effort.
  }
}

/** readTextIfExists for the offline commands, which may block (vpnctl, not the daemon). */
export function readTextIfExistsSync(path: string, fs: Pick<AtomicFs, 'readFileSync'> = defaultFs): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** A state file's text, or undefined when it does not exist; other errors are the caller's. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await nodeFs.promises.readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * A versioned JSON state file's top object (`{ "version": N, <list>: [...] }`) and its list, or
 * what is wrong with it, for the files vibepn writes beside its config.
 */
export function parseVersionedList(text: string, version: number, listKey: string): { top: Record<string, unknown>; list: unknown[] } | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${errorText(err)}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  const top = value as Record<string, unknown>;
  if (top.version !== version) return `version ${JSON.stringify(top.version)} is not ${version}`;
  const list = top[listKey];
  if (!Array.isArray(list)) return `${listKey} is not a list`;
  return { top, list };
}
