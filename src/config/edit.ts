// Edits a config file as text, for the commands that change a file the user may have written by
// hand (add-peer, remove-peer, rekey). Only the lines of the [[peers]] table (or the one key) that
// changes are touched: comments, blank lines, key order and spelling everywhere else stay as
// written, which a render of the parsed Config (write.ts) cannot do. Where things are comes from
// the TOML line scanner the loader reports errors with (lines.ts), and where a value ends from
// smol-toml itself; every edit is then loaded back with the real loader and compared with the
// Config it means to produce before the file is replaced, so a text edit can never write
// something other than what was asked for.

import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'smol-toml';
import { ConfigError, loadConfig, parseConfig } from './load.js';
import { KeyLines, type KeyPath } from './lines.js';
import { isTable, type Table } from './toml.js';
import type { Config, NetworkConfig, PeerConfig } from './types.js';
import { PEER_KEY_ORDER, peerValues, renderNetwork, renderPeer, tomlString, withoutLocation, type PeerKey } from './write.js';

/** A config file as read for editing: its text and what the loader made of it. */
export interface ConfigText {
  /** The path as the user gave it, for messages. */
  path: string;
  text: string;
  config: Config;
}

/** Where a [[peers]] table sits, as 0-based line indexes into the file's lines. */
export interface PeerTable {
  index: number;
  name: string;
  /** The comment block that introduces the table, or `header` when there is none. */
  first: number;
  header: number;
  /** The table's last key or comment line (inclusive); blank lines after it separate it from what follows. */
  last: number;
}

// `[[peers]]`, spelled any way TOML allows, optionally followed by a comment.
const PEERS_HEADER_RE = /^\s*\[\[\s*(?:peers|"peers"|'peers')\s*\]\]\s*(?:#.*)?$/;

/** Reads and loads `path`; an unreadable or invalid file throws the loader's ConfigError. */
export function readConfigText(path: string): ConfigText {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    // The loader words read errors with their fix; let it read (and fail) again to say it.
    loadConfig(path);
    throw error;
  }
  return { path, text, config: parseConfig(text, path) };
}

/** "file:line" of a key of the file as it is on disk, or just "file" when the scanner has no line for it. */
export function locateKey(file: ConfigText, path: KeyPath): string {
  const line = KeyLines.scan(file.text).lineOf(path);
  return line === undefined ? file.path : `${file.path}:${line}`;
}

/** The [[peers]] tables of the file, one per configured peer, in order. */
export function peerTables(file: ConfigText): PeerTable[] {
  const doc = new Document(file.text);
  const keyLines = KeyLines.scan(file.text);
  const raw = parse(file.text, { integersAsBigInt: true }) as Table;
  const headers = tableLines(raw, [], keyLines).sort((a, b) => a - b);
  return file.config.peers.map((peer, index) => {
    const line = keyLines.lineOf(['peers', index]);
    if (line === undefined || !PEERS_HEADER_RE.test(doc.lines[line - 1] ?? '')) {
      throw new ConfigError([
        `${file.path}${line === undefined ? '' : `:${line}`}: peers: vpnctl edits peers written as [[peers]] tables only; ` +
          `rewrite this peers array as [[peers]] tables (as in examples/config.toml), or edit the file by hand`,
      ]);
    }
    const header = line - 1;
    const next = headers.find((h) => h > header) ?? doc.lines.length;
    return { index, name: peer.name, first: introOf(doc.lines, header), header, last: lastLineOf(doc.lines, header, next) };
  });
}

/** The text with `peer` as a new [[peers]] table after the last one, or at the end of the file. */
export function withPeerAdded(file: ConfigText, peer: PeerConfig): string {
  const doc = new Document(file.text);
  const tables = peerTables(file);
  const lines = renderPeer(peer).map((line) => doc.newLine(line));
  const after = tables.at(-1)?.last;
  if (after === undefined) {
    if (doc.lines.length > 0 && !isBlank(doc.lines.at(-1)!)) lines.unshift(doc.newLine(''));
    doc.append(lines);
  } else {
    const following = doc.lines[after + 1];
    if (following !== undefined && !isBlank(following)) lines.push(doc.newLine(''));
    doc.lines.splice(after + 1, 0, doc.newLine(''), ...lines);
  }
  return doc.text();
}

/**
 * The text with peers[index] changed into `peer`, line by line: a key whose value stays keeps its
 * line as written (comment included), a changed one is rewritten in place keeping its comment, a
 * key now at its default is dropped and a new one goes after the keys that precede it in the
 * documented order. The header, comment lines and anything outside the table stay.
 */
export function withPeerReplaced(file: ConfigText, index: number, peer: PeerConfig): string {
  const doc = new Document(file.text);
  const table = peerTable(file, index);
  const keyLines = KeyLines.scan(file.text);
  const raw = (parse(file.text, { integersAsBigInt: true }) as { peers: Table[] }).peers[index]!;
  const statements = new Map<PeerKey, { start: number; end: number }>();
  for (const key of Object.keys(raw) as PeerKey[]) {
    const start = (keyLines.lineOf(['peers', index, key]) ?? 0) - 1;
    const statement = start > table.header && start <= table.last ? keyStatement(doc.lines, start, table.last, key) : null;
    if (!statement) throw editFailed(file, `cannot find the line of peers[${index}].${key}`);
    statements.set(key, statement);
  }
  const before = peerValues(file.config.peers[index]!);
  const after = peerValues(peer);
  const replaced = new Map<number, { end: number; lines: string[] }>();
  const inserted = new Map<number, string[]>();
  const indent = /^\s*/.exec(doc.lines[[...statements.values()][0]?.start ?? table.header]!)![0].replace(/\r$/, '');
  PEER_KEY_ORDER.forEach((key, order) => {
    const value = after.get(key);
    if (before.get(key) === value) return;
    const statement = statements.get(key);
    if (statement) {
      replaced.set(statement.start, { end: statement.end, lines: value === undefined ? [] : [doc.newLine(withValue(doc.lines, statement, value))] });
      return;
    }
    if (value === undefined) return;
    // After the nearest key that comes before it in the documented order, else right after the header.
    const anchor = PEER_KEY_ORDER.slice(0, order).reduce((at, k) => statements.get(k)?.end ?? at, table.header);
    inserted.set(anchor, [...(inserted.get(anchor) ?? []), doc.newLine(`${indent}${key} = ${value}`)]);
  });
  const out: string[] = [];
  for (let i = table.header; i <= table.last; i++) {
    const replacement = replaced.get(i);
    if (replacement) {
      out.push(...replacement.lines);
      i = replacement.end;
    } else {
      out.push(doc.lines[i]!);
    }
    out.push(...(inserted.get(i) ?? []));
  }
  doc.lines.splice(table.header, table.last - table.header + 1, ...out);
  return doc.text();
}

/** The text without peers[index]: its table, the comment block that introduces it, and one blank separator. */
export function withPeerRemoved(file: ConfigText, index: number): string {
  const doc = new Document(file.text);
  const table = peerTable(file, index);
  let from = table.first;
  let to = table.last + 1;
  if (from === 0 || isBlank(doc.lines[from - 1]!)) while (to < doc.lines.length && isBlank(doc.lines[to]!)) to++;
  if (to === doc.lines.length) while (from > 0 && isBlank(doc.lines[from - 1]!)) from--;
  doc.lines.splice(from, to - from);
  return doc.text();
}

/**
 * The text with identity.fingerprint set to `fingerprint` where the file pins one (a new
 * certificate would otherwise not start), its line kept but for the value. Unchanged when the
 * file pins none: then nothing in it depends on the certificate.
 */
export function withIdentityFingerprint(file: ConfigText, fingerprint: string): string {
  if (file.config.identity.fingerprint === undefined) return file.text;
  const doc = new Document(file.text);
  const line = KeyLines.scan(file.text).lineOf(['identity', 'fingerprint']);
  const statement = line === undefined ? null : keyStatement(doc.lines, line - 1, doc.lines.length - 1, 'fingerprint');
  if (!statement) throw editFailed(file, 'cannot find the line of identity.fingerprint');
  doc.lines.splice(statement.start, statement.end - statement.start + 1, doc.newLine(withValue(doc.lines, statement, tomlString(fingerprint))));
  return doc.text();
}

/** The text with `net` as a new [networks.NAME] section at the end of the file. */
export function withNetworkAdded(file: ConfigText, net: NetworkConfig): string {
  const doc = new Document(file.text);
  const lines = renderNetwork(net).map((line) => doc.newLine(line));
  if (doc.lines.length > 0 && !isBlank(doc.lines.at(-1)!)) lines.unshift(doc.newLine(''));
  doc.append(lines);
  return doc.text();
}

/**
 * Loads `text` as `file` with the real loader and checks it is exactly `expected`. Problems are
 * reported without line numbers: they would be lines of text that is not on disk.
 */
export function checkConfigText(file: ConfigText, text: string, expected: Config): Config {
  let loaded: Config;
  try {
    loaded = parseConfig(text, file.path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.errors.map((problem) => `cannot change ${file.path}: it would be refused: ${withoutLocation(problem, file.path)}`));
  }
  if (!isDeepStrictEqual(loaded, expected)) throw editFailed(file, 'the edited text does not load as the intended config');
  return loaded;
}

/**
 * Checks `text` (checkConfigText) and puts it in place of the file: atomically (a reader, the
 * daemon reloading, sees the old file or the new one), with the file's mode and owner, through
 * a symlink to the file it points at. Refuses when the file changed since it was read, rather
 * than drop whatever changed it.
 */
export function writeConfigText(file: ConfigText, text: string, expected: Config): void {
  checkConfigText(file, text, expected);
  const target = realpathSync(file.path);
  const stat = statSync(target);
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined = openSync(temp, 'wx', stat.mode & 0o7777);
  try {
    fchmodSync(fd, stat.mode & 0o7777);
    if (process.getuid?.() === 0) fchownSync(fd, stat.uid, stat.gid);
    const bytes = Buffer.from(text, 'utf8');
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (readFileSync(target, 'utf8') !== file.text) {
      throw new ConfigError([`${file.path}: changed while vpnctl was editing it (by another command or an editor); nothing was written, run the command again`]);
    }
    renameSync(temp, target);
    syncDirectory(dirname(target));
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // Already renamed into place, or never created.
    }
    throw error;
  }
}

/** Makes the rename durable; best effort, as some filesystems refuse fsync on a directory. */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // The file's content is synced already.
  }
}

// ---- lines ----

/** A file's lines, each with its own "\r" if it had one, so untouched lines are written back byte for byte. */
class Document {
  readonly lines: string[];
  private finalNewline: boolean;
  private readonly crlf: boolean;

  constructor(text: string) {
    this.finalNewline = text.endsWith('\n');
    const body = this.finalNewline ? text.slice(0, -1) : text;
    this.lines = body === '' ? [] : body.split('\n');
    this.crlf = text.includes('\r\n');
  }

  /** A line written by vpnctl, in the file's line-ending style. */
  newLine(line: string): string {
    return this.crlf ? `${line}\r` : line;
  }

  append(lines: string[]): void {
    const last = this.lines.length - 1;
    if (!this.finalNewline && last >= 0 && this.crlf && !this.lines[last]!.endsWith('\r')) this.lines[last] += '\r';
    this.lines.push(...lines);
    this.finalNewline = true;
  }

  text(): string {
    return this.lines.join('\n') + (this.finalNewline && this.lines.length > 0 ? '\n' : '');
  }
}

function isBlank(line: string): boolean {
  return line.trim() === '';
}

function isComment(line: string): boolean {
  return line.trimStart().startsWith('#');
}

/**
 * The last line of the table whose header is at `header`, the next header being at `next`: trailing
 * blank lines are not the table's, nor is a comment block set off from it by a blank line (that
 * introduces what follows, or stands alone). A comment right after the table's keys is its own.
 */
function lastLineOf(lines: string[], header: number, next: number): number {
  let last = next - 1;
  for (;;) {
    while (last > header && isBlank(lines[last]!)) last--;
    let top = last;
    while (top > header && isComment(lines[top]!)) top--;
    if (top === last || top === header || !isBlank(lines[top]!)) return last;
    last = top;
  }
}

/**
 * The first line of the comment block that introduces the table at `header`: comment lines right
 * above it, set off by a blank line from whatever precedes them (else they are the end of the
 * table above, lastLineOf's rule seen from below). The file's opening comment is never one.
 */
function introOf(lines: string[], header: number): number {
  let top = header;
  while (top > 0 && isComment(lines[top - 1]!)) top--;
  return top < header && top > 0 && isBlank(lines[top - 1]!) ? top : header;
}

/** The (0-based) line of every table header in the document: where one table's text ends. */
function tableLines(value: Table, path: (string | number)[], keyLines: KeyLines): number[] {
  const out: number[] = [];
  const add = (at: (string | number)[], table: Table): void => {
    const line = keyLines.lineOf(at);
    if (line !== undefined) out.push(line - 1);
    out.push(...tableLines(table, at, keyLines));
  };
  for (const [key, child] of Object.entries(value)) {
    if (isTable(child)) add([...path, key], child);
    else if (Array.isArray(child)) {
      child.forEach((element, i) => {
        if (isTable(element)) add([...path, key, i], element);
      });
    }
  }
  return out;
}

function peerTable(file: ConfigText, index: number): PeerTable {
  const table = peerTables(file)[index];
  if (!table) throw new Error(`config edit bug: no peers[${index}] in ${file.path}`);
  return table;
}

function parsed(text: string): Table | null {
  try {
    return parse(text) as Table;
  } catch {
    return null;
  }
}

function parses(text: string): boolean {
  return parsed(text) !== null;
}

/**
 * The key = value statement at line `start` (0-based) that assigns `key` (dotted keys ending in it
 * count), or null if that line is no such statement. It ends at the first line where the text
 * from `start` parses as TOML: a value spans lines only inside brackets or triple quotes.
 */
function keyStatement(lines: string[], start: number, limit: number, key: string): { start: number; end: number } | null {
  for (let end = start; end <= limit; end++) {
    let value: unknown = parsed(lines.slice(start, end + 1).join('\n'));
    if (value === null) continue;
    // A statement parses to one path of single-key tables down to its value.
    for (;;) {
      const keys = isTable(value) ? Object.keys(value) : [];
      if (keys.length !== 1) return null;
      const child: unknown = (value as Table)[keys[0]!];
      if (!isTable(child)) return keys[0] === key ? { start, end } : null;
      value = child;
    }
  }
  return null;
}

/**
 * The statement's line with `value` in place of the old value: same indentation and key spelling,
 * and the comment after a one-line value kept at its column. A value over several lines becomes one.
 */
function withValue(lines: string[], statement: { start: number; end: number }, value: string): string {
  const line = lines[statement.start]!.replace(/\r$/, '');
  const equals = line.indexOf('=');
  const head = `${line.slice(0, equals).trimEnd()} = ${value}`;
  if (statement.end !== statement.start) return head;
  // The comment starts at the first '#' before which the line is a complete statement ('#' in a string is not one).
  for (let at = line.indexOf('#', equals); at >= 0; at = line.indexOf('#', at + 1)) {
    if (!parses(line.slice(0, at))) continue;
    // Past the comment's column: as close as the original was, and at most two blanks.
    const gap = /\s*$/.exec(line.slice(0, at))![0].slice(0, 2) || ' ';
    return head.length < at ? `${head.padEnd(at)}${line.slice(at)}` : `${head}${gap}${line.slice(at)}`;
  }
  return head;
}

function editFailed(file: ConfigText, why: string): ConfigError {
  return new ConfigError([`${file.path}: cannot edit this file in place (${why}); make the change by hand, then check it with vpnctl doctor`]);
}
