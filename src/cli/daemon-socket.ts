// Which daemon a vpnctl query goes to. Most users run one daemon with one config file, and
// should not have to repeat its socket path: the first of these that is given wins.
//   --socket PATH          the socket itself
//   --config FILE          that config's daemon.control_socket (the file must load)
//   VIBEPN_SOCKET=PATH     the environment, for a shell that always talks to one daemon
//   /etc/vibepn/config.toml's daemon.control_socket, when that file exists and loads
//   /var/run/vibepn.sock   the built-in default
// Pure but for reading the config file, which the caller passes in as a loader.

import { DEFAULTS } from '../config/types.js';

export interface SocketSources {
  socketFlag?: string;
  configFlag?: string;
  env: Readonly<Record<string, string | undefined>>;
  /** The config's daemon.control_socket; throws (ConfigError) when the file does not load. */
  controlSocketOf(path: string): string;
  /** Whether the default config file exists (it is read only then). */
  exists(path: string): boolean;
}

export interface ResolvedSocket {
  path: string;
  /** Where it came from, for error messages ("from --config /etc/x.toml"). */
  from: string;
}

export function resolveDaemonSocket(sources: SocketSources): ResolvedSocket {
  if (sources.socketFlag) return { path: sources.socketFlag, from: '--socket' };
  if (sources.configFlag) return { path: sources.controlSocketOf(sources.configFlag), from: `daemon.control_socket in ${sources.configFlag}` };
  const env = sources.env.VIBEPN_SOCKET;
  if (env) return { path: env, from: 'VIBEPN_SOCKET' };
  if (sources.exists(DEFAULTS.configPath)) {
    try {
      return { path: sources.controlSocketOf(DEFAULTS.configPath), from: `daemon.control_socket in ${DEFAULTS.configPath}` };
    } catch {
      // A broken default config is the daemon's problem, reported when it starts; the query
      // still tries the default socket.
    }
  }
  return { path: DEFAULTS.controlSocket, from: 'the default' };
}
