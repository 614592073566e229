// Typed access to the tables smol-toml returns, for the loader. A wrong type, an unknown key or
// a bad value is recorded as a problem at its key path instead of thrown, so one pass over a file
// finds every mistake, and each message can name the file and line (lines.ts).

import { parseCidr, type Prefix } from '../netgraph/addr.js';
import { ConfigError } from './errors.js';
import type { KeyLines, KeyPath } from './lines.js';
import { singleLine } from '../log/logger.js';

export type Table = Record<string, unknown>;

export function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The TOML name of a value's type, for "expected X, got Y". */
export function tomlType(value: unknown): string {
  if (typeof value === 'bigint') return 'integer';
  if (typeof value === 'number') return 'float';
  if (typeof value === 'string' || typeof value === 'boolean') return typeof value;
  if (value instanceof Date) return 'datetime';
  if (Array.isArray(value)) return 'array';
  return 'table';
}

export class Section {
  constructor(
    private readonly table: Table,
    private readonly path: KeyPath,
    private readonly problems: Problems,
    known: readonly string[],
  ) {
    for (const key of Object.keys(table)) {
      if (!known.includes(key)) problems.unknownKey([...path, key], known);
    }
  }

  problem(key: string | number, text: string): void {
    this.problems.add([...this.path, key], text);
  }

  has(key: string): boolean {
    return this.table[key] !== undefined;
  }

  /** A nested table; an empty one when absent, so its defaults apply. */
  subsection(key: string, known: readonly string[]): Section {
    const value = this.table[key];
    if (value !== undefined && !isTable(value)) this.problem(key, `expected a table ([${key}] section), got ${tomlType(value)}`);
    return new Section(isTable(value) ? value : {}, [...this.path, key], this.problems, known);
  }

  string(key: string): string | undefined {
    return this.typed(key, 'a string', (v): v is string => typeof v === 'string');
  }

  nonEmptyString(key: string): string | undefined {
    const value = this.string(key);
    if (value === '') this.problem(key, 'must not be empty (remove the line to use the default)');
    return value || undefined;
  }

  requiredString(key: string, example: string): string | undefined {
    if (!this.has(key)) {
      this.problem(key, `required key is missing (${example})`);
      return undefined;
    }
    const value = this.string(key);
    if (value === '') this.problem(key, `must not be empty (${example})`);
    return value;
  }

  boolean(key: string): boolean | undefined {
    return this.typed(key, 'a boolean', (v): v is boolean => typeof v === 'boolean');
  }

  integer(key: string): number | undefined {
    const value = this.typed(key, 'an integer', (v): v is bigint => typeof v === 'bigint');
    return value === undefined ? undefined : Number(value);
  }

  stringList(key: string): string[] | undefined {
    const value = this.typed(key, 'an array of strings', (v): v is unknown[] => Array.isArray(v));
    if (value === undefined) return undefined;
    const bad = value.findIndex((item) => typeof item !== 'string');
    if (bad >= 0) {
      this.problems.add([...this.path, key, bad], `expected a string, got ${tomlType(value[bad])}`);
      return undefined;
    }
    return value as string[];
  }

  /** An optional list of CIDRs; [] when absent. Each bad entry is reported at its index. */
  cidrList(key: string): Prefix[] {
    const out: Prefix[] = [];
    (this.stringList(key) ?? []).forEach((text, index) => {
      const parsed = parseCidr(text);
      if (parsed.ok) out.push(parsed.prefix);
      else this.problems.add([...this.path, key, index], parsed.error);
    });
    return out;
  }

  private typed<T>(key: string, expected: string, test: (value: unknown) => value is T): T | undefined {
    const value = this.table[key];
    if (value === undefined) return undefined;
    if (test(value)) return value;
    this.problem(key, `expected ${expected}, got ${tomlType(value)}`);
    return undefined;
  }
}

export class Problems {
  private readonly found: { line: number; text: string }[] = [];

  constructor(
    private readonly file: string,
    private readonly lines: KeyLines,
  ) {}

  add(path: KeyPath, problem: string): void {
    this.push(path, (where) => `${where}: ${displayPath(path)}: ${problem}`);
  }

  unknownKey(path: KeyPath, known: readonly string[]): void {
    const key = String(path[path.length - 1]);
    const suggestion = closestKey(key, known);
    const hint = suggestion ? `did you mean '${suggestion}'?` : `known keys: ${known.join(', ')}`;
    this.push(path, (where) => `${where}: unknown key '${displayPath(path)}' (${hint})`);
  }

  throwIfAny(): void {
    if (this.found.length === 0) return;
    // In file order, as an editor would walk them; Array.prototype.sort is stable.
    this.found.sort((a, b) => a.line - b.line);
    throw new ConfigError(this.found.map((p) => p.text));
  }

  private push(path: KeyPath, render: (where: string) => string): void {
    const line = this.lines.lineOf(path);
    // One line per problem, whatever the quoted values hold: they come from the file.
    this.found.push({ line: line ?? Number.MAX_SAFE_INTEGER, text: singleLine(render(locate(this.file, line))) });
  }
}

/** "file:line", or just "file" for a key the file does not spell out (a missing required key). */
export function locate(file: string, line: number | undefined): string {
  return line === undefined ? file : `${file}:${line}`;
}

/** "networks.corp.prefix", "peers[1].name", 'networks."a b".mtu' */
export function displayPath(path: KeyPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = /^[A-Za-z0-9_-]+$/.test(segment) ? segment : JSON.stringify(segment);
      out += out === '' ? key : `.${key}`;
    }
  }
  return out;
}

function closestKey(key: string, known: readonly string[]): string | undefined {
  const normalized = key.toLowerCase().replaceAll('-', '_');
  const limit = key.length <= 3 ? 1 : key.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const distance = editDistance(normalized, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
