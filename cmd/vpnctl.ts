#!/usr/bin/env node
// vpnctl: onboarding on files (init, invite, join, add-peer, doctor) and queries to a running
// daemon (status, peers, routes, reload, goodbye, ping, members, revoke). Exit codes: 0 success,
// 1 failure, 2 usage.

import { existsSync } from 'node:fs';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { resolveDaemonSocket } from '../src/cli/daemon-socket.js';
import { runVersion, runWhoami } from '../src/cli/whoami.js';
import { CommandError, UsageError, parseOptions, splitCommand } from '../src/cli/args.js';
import { runDoctor } from '../src/cli/doctor.js';
import { ONLINE_COMMANDS, ONLINE_HELP, runOnline, type OnlineCommand } from '../src/cli/online.js';
import { runAddPeer } from '../src/cli/add-peer.js';
import { runInit, runInvite, runJoin } from '../src/cli/onboard.js';
import { runRekey } from '../src/cli/rekey.js';
import { runInvites } from '../src/cli/invites.js';
import { runForget } from '../src/cli/forget.js';
import { runRemovePeer } from '../src/cli/remove-peer.js';
import { processOutput, type Output } from '../src/cli/output.js';
import { DEFAULTS } from '../src/config/types.js';

const HELP = `usage: vpnctl [--socket PATH | --config FILE] [--json] <command> [flags]

Files (offline):
  init         create this node's identity and config
  invite       print a short invite another machine joins with (--long: a signed one)
  invites      the invites this admin issued, and --cancel ID
  join         create identity and config from an invite
  add-peer     add a peer to the config (--force: replace it)
  remove-peer  remove a peer from the config
  forget       drop a peer's key learned on first use
  rekey        a new identity for this node, keeping the config
  doctor       check config, identity and trust files
  whoami       this node's name, fingerprint and overlay addresses
  version      vpnctl's version (also --version, -v)

Daemon (over its control socket: --socket PATH, or --config FILE's daemon.control_socket,
or $VIBEPN_SOCKET, or ${DEFAULTS.configPath}'s, or ${DEFAULTS.controlSocket}):
  status       uptime, fingerprint, networks, peers, routes, what needs attention
  peers        configured and connected peers; peers NAME for one
  routes       route table
  reload       re-read the config (same as SIGHUP)
  goodbye      shut the daemon down cleanly
  ping         round trips to a peer, and the path each took (direct or via a relay)
  members      each network's signed roster: members, who signed them, who is reachable
  revoke       on an admin: remove a member from a network's roster, and tell the others

Run 'vpnctl <command> -h' for a command's flags.`;

export async function main(argv: string[], out: Output): Promise<number> {
  try {
    const { command, rest } = splitCommand(argv, ['--socket', '--config', '--cert', '--key', '--name', '--network', '--prefix', '--address', '--ttl', '--uses', '--routes', '--cancel', '--out', '--invite', '--invite-file', '--fingerprint', '--networks', '--listen', '--metrics-listen', '--known-peers', '--export', '--allowed-routes', '--count', '-c']);
    if (!command) {
      if (rest.includes('-h') || rest.includes('--help')) {
        out.stdout(HELP);
        return 0;
      }
      if (rest.includes('-v') || rest.includes('--version')) return runVersion(rest.filter((a) => a !== '-v' && a !== '--version'), out);
      throw new UsageError('missing command', HELP);
    }
    switch (command) {
      case 'init':
        await runInit(rest, out);
        return 0;
      case 'invite':
        await runInvite(rest, out);
        return 0;
      case 'invites':
        await runInvites(rest, out);
        return 0;
      case 'join':
        await runJoin(rest, out);
        return 0;
      case 'add-peer':
        await runAddPeer(rest, out);
        return 0;
      case 'remove-peer':
        await runRemovePeer(rest, out);
        return 0;
      case 'forget':
        await runForget(rest, out);
        return 0;
      case 'rekey':
        await runRekey(rest, out);
        return 0;
      case 'doctor':
        return await runDoctor(rest, out);
      case 'help':
        out.stdout(HELP);
        return 0;
      case 'version':
        return runVersion(rest, out);
      case 'whoami':
        return runWhoami(rest, out);
    }
    if ((ONLINE_COMMANDS as readonly string[]).includes(command)) {
      const name = command as OnlineCommand;
      const { values, positionals } = parseOptions(
        rest,
        { help: { type: 'boolean', short: 'h' }, socket: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string' }, ...(name === 'ping' ? { count: { type: 'string', short: 'c' } } : {}), ...(name === 'members' || name === 'revoke' ? { network: { type: 'string' } } : {}) },
        ONLINE_HELP[name],
      );
      if (values.help) {
        out.stdout(ONLINE_HELP[name]);
        return 0;
      }
      const socket = resolveDaemonSocket({
        socketFlag: typeof values.socket === 'string' ? values.socket : undefined,
        configFlag: typeof values.config === 'string' ? values.config : undefined,
        env: process.env,
        controlSocketOf: (path) => loadConfig(path).daemon.controlSocket,
        exists: existsSync,
      });
      const count = typeof values.count === 'string' ? Number(values.count) : undefined;
      if (count !== undefined && !(Number.isInteger(count) && count >= 1 && count <= 100)) throw new UsageError(`-c must be a whole number 1..100, not '${String(values.count)}'`, ONLINE_HELP[name]);
      const network = typeof values.network === 'string' ? values.network : undefined;
      await runOnline(name, socket.path, { json: values.json === true, args: positionals, count, network }, out);
      return 0;
    }
    throw new UsageError(`unknown command '${command}'`, HELP);
  } catch (error) {
    if (error instanceof UsageError) {
      out.stderr(`vpnctl: ${error.message}`);
      if (error.help) out.stderr(`\n${error.help}`);
      return 2;
    }
    if (error instanceof CommandError || error instanceof ConfigError) {
      out.stderr(`vpnctl: ${error.message}`);
      return 1;
    }
    // Identity, invite and trust errors carry complete messages; anything else is a bug, but the
    // user still deserves one line rather than a stack trace.
    const e = error as Error;
    out.stderr(`vpnctl: ${e.message}`);
    if (process.env.VIBEPN_DEBUG) out.stderr(e.stack ?? '');
    return 1;
  }
}

// A reader that stops early (`vpnctl peers | head -1`) is a normal end, as for every Unix tool.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
const code = await main(process.argv.slice(2), processOutput);
process.exitCode = code;
