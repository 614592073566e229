// Loads one of the project's native addons (binding.gyp) from build/Release. Compiled code runs
// from dist/src/... and vitest runs src/... directly, so search upwards from the caller instead of
// assuming a fixed depth.
//
// The batched UDP addon is optional at run time: batch-send.ts and batch-receive.ts fall back to
// node's dgram without a word, since a daemon that forwards slowly still beats one that refuses to
// run. That fallback costs a large share of throughput, so `vpn` asks addonProblems() at start-up
// and says once what is missing (missingAddonsWarning).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** No build/Release above the caller holds the addon: it was never built (or built elsewhere). */
export class AddonNotFoundError extends Error {
  override name = 'AddonNotFoundError';

  constructor(
    readonly file: string,
    start: string,
  ) {
    super(`native addon ${join('build', 'Release', file)} not found in any directory above ${start} (build it with \`npm run build:native\` in the vibepn package directory)`);
  }
}

/** The first build/Release/`file` in the directories from the caller's up to the root, or null. */
export function findAddon(file: string, fromUrl: string = import.meta.url): string | null {
  const relative = join('build', 'Release', file);
  for (let dir = dirname(fileURLToPath(fromUrl)); ; dir = dirname(dir)) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return null;
  }
}

/**
 * The addon's exports. Throws AddonNotFoundError when it was never built, and require()'s own
 * error when the file is there but does not load (built for another Node, not an addon at all).
 */
export function loadAddon(file: string, fromUrl: string = import.meta.url): unknown {
  const path = findAddon(file, fromUrl);
  if (path === null) throw new AddonNotFoundError(file, dirname(fileURLToPath(fromUrl)));
  return createRequire(fromUrl)(path);
}

/** What the daemon needs of one addon, and what it does without it (for the start-up warning). */
export interface AddonNeed {
  readonly file: string;
  /** Exports the daemon calls: an addon built from older sources lacks some. */
  readonly exports: readonly string[];
  /** What the daemon does without it, as the warning says it. */
  readonly without: string;
}

/** src/quic/native/udp.c, used by batch-send.ts and batch-receive.ts. */
export const UDP_ADDON: AddonNeed = Object.freeze({
  file: 'vibepn_udp.node',
  exports: Object.freeze(['UdpSender', 'UdpReceiver']),
  without: 'UDP falls back to one dgram call per datagram, without GSO/GRO batching: much lower throughput',
});

/** src/tun/native/tun.c and netlink.c, used by src/tun/device.ts. */
export const TUN_ADDON: AddonNeed = Object.freeze({
  file: 'vibepn_tun.node',
  exports: Object.freeze(['Tun', 'setMtu', 'setAddrGenModeNone', 'addAddress', 'setUp', 'replaceRoute', 'deleteRoute', 'peerCredentials']),
  without: 'no TUN interface can be opened, and daemon.socket_group cannot tell root from its members (they may then only read)',
});

export type AddonLoader = (file: string) => unknown;

export interface AddonProblem {
  addon: AddonNeed;
  /** "not built", "does not load: <why>" or "out of date (no X, Y)". */
  reason: string;
}

/** The addons in `needs` that the daemon cannot use, each with why; empty when all load. */
export function addonProblems(needs: readonly AddonNeed[], load: AddonLoader = (file) => loadAddon(file)): AddonProblem[] {
  const problems: AddonProblem[] = [];
  for (const addon of needs) {
    let loaded: unknown;
    try {
      loaded = load(addon.file);
    } catch (error) {
      const reason = error instanceof AddonNotFoundError ? 'not built' : `does not load: ${oneLine((error as Error).message ?? String(error))}`;
      problems.push({ addon, reason });
      continue;
    }
    const exports = (typeof loaded === 'object' || typeof loaded === 'function') && loaded !== null ? (loaded as Record<string, unknown>) : {};
    const absent = addon.exports.filter((name) => exports[name] === undefined);
    if (absent.length > 0) problems.push({ addon, reason: `out of date (no ${absent.join(', ')})` });
  }
  return problems;
}

/**
 * One line for the start-up log when some addon in `needs` cannot be used: what is missing, what
 * the daemon does without it, and how to build it; null when every addon loads.
 */
export function missingAddonsWarning(needs: readonly AddonNeed[], load?: AddonLoader): string | null {
  const problems = addonProblems(needs, load);
  if (problems.length === 0) return null;
  const what = problems.map((p) => `${p.addon.file} ${p.reason} (${p.addon.without})`).join('; ');
  return `${problems.length === 1 ? 'native addon' : 'native addons'} ${what}; ${buildHint()}`;
}

/**
 * How to build the addons here: in the package directory (the one holding binding.gyp), with a C
 * toolchain and Node's headers, which build-native.mjs takes from this Node's prefix when they are
 * installed and node-gyp downloads otherwise.
 */
function buildHint(): string {
  const packageDir = findUp('binding.gyp');
  const where = packageDir === null ? 'in the vibepn package directory' : `in ${packageDir}`;
  const headers = join(resolve(dirname(process.execPath), '..'), 'include', 'node');
  const headerNote = existsSync(join(headers, 'node_api.h'))
    ? `Node's headers are in ${headers}`
    : `Node's headers are not in ${headers}, so node-gyp downloads them (or install your distribution's Node development package)`;
  return `build with \`npm run build:native\` ${where} (needs python3, make and a C compiler; ${headerNote}), then restart vpn`;
}

function findUp(name: string): string | null {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, name))) return dir;
    if (dirname(dir) === dir) return null;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
