#!/usr/bin/env node
// vpn: the daemon. Runs in the foreground, logs one line per event to stderr.
// SIGINT/SIGTERM (or `vpnctl goodbye`): Goodbye to every peer, remove interfaces and socket, exit 0.
// SIGHUP: reload the config (same as `vpnctl reload`); a bad new config is refused and logged.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { DEFAULTS } from '../src/config/types.js';
import { UsageError, normalizeSingleDash, parseOptions, type OptionSpec, type Parsed } from '../src/cli/args.js';
import { refuseExposedPrivateKey } from '../src/crypto/key-permissions.js';
import { Daemon } from '../src/daemon/daemon.js';
import { Logger, streamSink } from '../src/log/logger.js';
import { TUN_ADDON, UDP_ADDON, missingAddonsWarning } from '../src/native/load.js';
import { tunDeviceFactory } from '../src/tun/device.js';

const HELP = `usage: vpn [-config PATH | PATH] [--no-tun]
       vpn -v | --version
       vpn -h | --help

Runs the vibepn daemon in the foreground.
  -config, --config PATH   config file (default ${DEFAULTS.configPath}); PATH alone means the same
  --no-tun                 control plane only: sessions and routes, no interfaces (no root needed)
  -v, --version            print the version
  -h, --help               print this help
Signals: SIGINT/SIGTERM shut down cleanly, SIGHUP reloads the config.`;

const OPTIONS = {
  config: { type: 'string' },
  'no-tun': { type: 'boolean' },
  version: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} satisfies OptionSpec;

/** After a shutdown request the process exits within this long, Goodbyes sent or not. */
const SHUTDOWN_DEADLINE_MS = 3000;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

type Invocation = { run: 'help' } | { run: 'version' } | { run: 'daemon'; configPath: string; tun: boolean };

/** What the command line asks for; a UsageError (exit 2) for anything it cannot mean. */
function parseCommandLine(argv: string[]): Invocation {
  refuseUnknownFlags(argv);
  let parsed: Parsed;
  try {
    parsed = parseOptions(argv, OPTIONS, HELP);
  } catch (error) {
    // Some parseArgs messages run over several lines ("argument is ambiguous ... Did you forget
    // ..."); the usage follows on its own lines, so the reason has to stay on one.
    if (error instanceof UsageError) throw new UsageError(error.message.replace(/\s*\n\s*/g, ' '), HELP);
    throw error;
  }
  const { values, positionals } = parsed;
  if (values.help) return { run: 'help' };
  if (values.version) return { run: 'version' };
  const flag = typeof values.config === 'string' ? values.config : undefined;
  return { run: 'daemon', configPath: configPathOf(flag, positionals), tun: !values['no-tun'] };
}

/**
 * parseArgs' own message for an unknown flag is a paragraph about `--` with an unbalanced quote,
 * and names `-foo` as `--foo` (normalizeSingleDash). Unknown flags are found here first, from a
 * lenient parse that keeps each token's place in argv, and named as the user typed them.
 */
function refuseUnknownFlags(argv: string[]): void {
  const { tokens } = parseArgs({ args: normalizeSingleDash(argv), options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'option' && !Object.hasOwn(OPTIONS, token.name)) {
      const typed = (argv[token.index] ?? token.rawName).replace(/=.*$/s, '');
      throw new UsageError(`unknown flag '${typed}'`, HELP);
    }
  }
}

/**
 * The config file: the one argument, or -config, or the default. Both given is fine when they
 * name the same file; two different files are refused rather than one of them silently chosen.
 */
function configPathOf(flag: string | undefined, positionals: string[]): string {
  if (positionals.length > 2) {
    const list = positionals.map((p) => `'${p}'`).join(', ');
    throw new UsageError(`unexpected arguments ${list}: vpn takes one config file, as its only argument or with -config PATH`, HELP);
  }
  const [first, second] = positionals;
  if (second !== undefined && resolve(first!) !== resolve(second)) {
    throw new UsageError(`two config files given, '${first}' and '${second}': give one`, HELP);
  }
  if (first !== undefined && flag !== undefined && resolve(first) !== resolve(flag)) {
    throw new UsageError(`two config files given, '${first}' and -config '${flag}': give one`, HELP);
  }
  return first ?? flag ?? DEFAULTS.configPath;
}

async function main(argv: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`vpn: ${(error as Error).message}\n${(error as UsageError).help ?? ''}\n`);
    return 2;
  }
  if (invocation.run === 'help') {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (invocation.run === 'version') {
    process.stdout.write(`vibepn ${version()}\n`);
    return 0;
  }

  // Lines logged during start-up are held back: if start-up fails, its one-line reason is all
  // the user should have to read (VIBEPN_DEBUG shows the held lines too).
  const startupLines: string[] = [];
  let started = false;
  const stderr = streamSink(process.stderr);
  const logger = new Logger('daemon', { sink: (line) => (started ? stderr(line) : startupLines.push(line)) });
  let daemon: Daemon;
  try {
    const config = loadConfig(invocation.configPath);
    // Before the daemon exists: a key others can read must not serve even for a moment.
    refuseExposedPrivateKey(config.identity.key);
    daemon = new Daemon({
      config,
      logger,
      tunFactory: invocation.tun ? tunDeviceFactory(logger.child('tun')) : undefined,
      onShutdownRequested: () => shutdown('vpnctl goodbye'),
    });
    // After the Daemon applied log_level. Held back with the other start-up lines: if start-up
    // fails, its reason already names a missing TUN addon.
    // socket_group asks the TUN addon who connected, even with --no-tun.
    const addonWarning = missingAddonsWarning(invocation.tun || config.daemon.socketGroup ? [UDP_ADDON, TUN_ADDON] : [UDP_ADDON]);
    if (addonWarning !== null) logger.child('native').warn(addonWarning);
    await daemon.start();
  } catch (error) {
    if (process.env.VIBEPN_DEBUG) for (const line of startupLines) process.stderr.write(line + '\n');
    // One clear line: the messages already name the file, key or device and the fix.
    const message = (error as Error).message;
    process.stderr.write(`vpn: ${message}\n`);
    if (process.env.VIBEPN_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    return 1;
  }
  for (const line of startupLines) process.stderr.write(line + '\n');
  started = true;

  let stopping = false;
  function shutdown(reason: string): void {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      logger.error(`shutdown took longer than ${SHUTDOWN_DEADLINE_MS / 1000}s; exiting anyway`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    daemon.stop(reason).then(
      () => process.exit(0),
      (error: Error) => {
        logger.error(`shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  }
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => {
    // A refused reload is logged by the daemon itself, the same way for SIGHUP and `vpnctl reload`.
    daemon.reload().catch(() => undefined);
  });
  return -1; // keep running
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
