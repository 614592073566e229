#!/usr/bin/env node
// vpn: the daemon. Runs in the foreground, logs one line per event to stderr.
// SIGINT/SIGTERM (or `vpnctl goodbye`): Goodbye to every peer, remove interfaces and socket, exit 0.
// SIGHUP: reload the config (same as `vpnctl reload`); a bad new config is refused and logged.

import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config/load.js';
import { DEFAULTS } from '../src/config/types.js';
import { UsageError, parseOptions } from '../src/cli/args.js';
import { Daemon } from '../src/daemon/daemon.js';
import { Logger, streamSink } from '../src/log/logger.js';
import { tunDeviceFactory } from '../src/tun/device.js';

const HELP = `usage: vpn [-config PATH] [--no-tun]
       vpn --version | vpn -h

Runs the vibepn daemon in the foreground.
  -config, --config PATH   config file (default ${DEFAULTS.configPath})
  --no-tun                 control plane only: sessions and routes, no interfaces (no root needed)
  --version                print the version
Signals: SIGINT/SIGTERM shut down cleanly, SIGHUP reloads the config.`;

/** After a shutdown request the process exits within this long, Goodbyes sent or not. */
const SHUTDOWN_DEADLINE_MS = 3000;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseOptions(
      argv,
      { config: { type: 'string' }, 'no-tun': { type: 'boolean' }, version: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      HELP,
    ));
  } catch (error) {
    process.stderr.write(`vpn: ${(error as Error).message}\n${(error as UsageError).help ?? ''}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (values.version) {
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
    const config = loadConfig(typeof values.config === 'string' ? values.config : DEFAULTS.configPath);
    daemon = new Daemon({
      config,
      logger,
      tunFactory: values['no-tun'] ? undefined : tunDeviceFactory(logger.child('tun')),
      onShutdownRequested: () => shutdown('vpnctl goodbye'),
    });
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
