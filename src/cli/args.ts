// Command-line parsing shared by `vpn` and `vpnctl`, on node:util parseArgs. Adds what the
// original's Go flag package accepted and users will type: single-dash long flags (`-config`),
// and global flags (`--json`, `--socket`) before or after the subcommand.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ValueResult } from '../config/values.js';
import type { Output } from './output.js';

/** A mistake in how the command was called: printed with a hint, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly help?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A command that ran and failed: printed as one line, exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

const HELP_FLAG: OptionSpec = { help: { type: 'boolean', short: 'h' } };

/** --force, which every command that writes files takes to overwrite what is there. */
export const FORCE_FLAG: OptionSpec = { force: { type: 'boolean' } };

/** Flags that each take a value, by name: most flags do, and a command lists many. */
export function stringFlags(...names: string[]): OptionSpec {
  const flags: OptionSpec = {};
  for (const name of names) flags[name] = { type: 'string' };
  return flags;
}

/** Prints `help` when -h was given; the command then does nothing else. */
function wantsHelp(values: Record<string, unknown>, help: string, out: Output): boolean {
  if (values.help) out.stdout(help);
  return Boolean(values.help);
}

/** `-config x` → `--config x`; leaves `-h` and `--x` alone. */
export function normalizeSingleDash(argv: readonly string[]): string[] {
  return argv.map((arg) => (/^-[a-zA-Z][\w-]+(=.*)?$/.test(arg) ? `-${arg}` : arg));
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parseOptions(argv: readonly string[], options: OptionSpec, help: string): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: normalizeSingleDash(argv),
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    // parseArgs messages are good ("Option '--name <value>' argument missing") but carry a code
    // prefix on some Node versions; keep only the sentence.
    const message = (error as Error).message.replace(/^\s*TypeError \[[A-Z_]+\]:\s*/, '');
    throw new UsageError(message, help);
  }
}

/**
 * A subcommand's flags (with -h/--help added), or undefined when -h printed `help` and the
 * command should do nothing else.
 */
export function parseCommandFlags(argv: readonly string[], options: OptionSpec, help: string, out: Output): Parsed['values'] | undefined {
  const { values } = parseOptions(argv, { ...HELP_FLAG, ...options }, help);
  return wantsHelp(values, help, out) ? undefined : values;
}

/**
 * Splits vpnctl's argv into the subcommand and the rest, skipping global flags and the value
 * of `--socket` wherever they stand.
 */
export function splitCommand(argv: readonly string[], valueFlags: readonly string[]): { command?: string; rest: string[] } {
  const args = normalizeSingleDash(argv);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      if (valueFlags.includes(arg)) i++;
      continue;
    }
    return { command: arg, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
  }
  return { rest: args };
}

export function requireString(values: Parsed['values'], name: string, help: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`missing required flag --${name}`, help);
  return value;
}

export function optionalString(values: Parsed['values'], name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function parseBoolFlag(values: Parsed['values'], name: string, fallback: boolean, help: string): boolean {
  const value = values[name];
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`--${name} must be true or false, got '${String(value)}'`, help);
}

/**
 * A flag's value parsed with the config's own rule for the key it fills, or a usage error naming
 * the flag, so a flag accepts exactly what the config file would.
 */
export function flagValue<T>(flag: string, result: ValueResult<T>, help: string): T {
  if (!result.ok) throw new UsageError(`--${flag} ${result.error}`, help);
  return result.value;
}

/** "a, b,,c" → ["a", "b", "c"]: comma-separated flag values. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Parses "24h", "90m", "30s", "7d" or plain seconds. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return n * unit;
}
