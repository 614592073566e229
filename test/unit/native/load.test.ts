// Which native addons are missing, and the one start-up warning about them (src/native/load.ts),
// with an injected loader standing in for require(): no build needs to be broken for the test.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AddonNotFoundError,
  TUN_ADDON,
  UDP_ADDON,
  addonProblems,
  loadAddon,
  missingAddonsWarning,
  type AddonLoader,
} from '../../../src/native/load.js';

const built: Record<string, unknown> = {
  'vibepn_udp.node': { UdpSender: class {}, UdpReceiver: class {} },
  'vibepn_tun.node': Object.fromEntries(TUN_ADDON.exports.map((name) => [name, () => undefined])),
};

function loaderWith(overrides: Record<string, () => unknown>): AddonLoader {
  return (file) => (overrides[file] ?? (() => built[file]))();
}

const notBuilt = (file: string) => () => {
  throw new AddonNotFoundError(file, '/somewhere');
};

describe('addonProblems', () => {
  it('finds nothing wrong with a complete build', () => {
    expect(addonProblems([UDP_ADDON, TUN_ADDON], loaderWith({}))).toEqual([]);
  });

  it('tells an addon never built from one that does not load and one built from older sources', () => {
    const problems = addonProblems(
      [UDP_ADDON, TUN_ADDON],
      loaderWith({
        'vibepn_udp.node': notBuilt('vibepn_udp.node'),
        'vibepn_tun.node': () => ({ Tun: class {} }),
      }),
    );
    expect(problems.map((p) => [p.addon.file, p.reason])).toEqual([
      ['vibepn_udp.node', 'not built'],
      ['vibepn_tun.node', expect.stringMatching(/^out of date \(no setMtu, /)],
    ]);
    const broken = addonProblems(
      [UDP_ADDON],
      loaderWith({
        'vibepn_udp.node': () => {
          throw new Error('The module was compiled against a different Node.js version using\nNODE_MODULE_VERSION 115.');
        },
      }),
    );
    // Node's multi-line reason becomes part of one line.
    expect(broken[0]!.reason).toBe('does not load: The module was compiled against a different Node.js version using NODE_MODULE_VERSION 115.');
  });
});

describe('missingAddonsWarning', () => {
  it('is null when every addon loads', () => {
    expect(missingAddonsWarning([UDP_ADDON, TUN_ADDON], loaderWith({}))).toBeNull();
  });

  it('is one line naming each missing addon, what the daemon does without it, and the build command', () => {
    const warning = missingAddonsWarning(
      [UDP_ADDON, TUN_ADDON],
      loaderWith({ 'vibepn_udp.node': notBuilt('vibepn_udp.node'), 'vibepn_tun.node': notBuilt('vibepn_tun.node') }),
    )!;
    expect(warning).not.toContain('\n');
    expect(warning).toContain('vibepn_udp.node not built');
    expect(warning).toContain('vibepn_tun.node not built');
    expect(warning).toContain(UDP_ADDON.without);
    expect(warning).toContain('npm run build:native');
    expect(warning).toMatch(/headers/);
  });

  it('names only what is missing', () => {
    const warning = missingAddonsWarning([UDP_ADDON, TUN_ADDON], loaderWith({ 'vibepn_udp.node': notBuilt('vibepn_udp.node') }))!;
    expect(warning).toContain('vibepn_udp.node');
    expect(warning).not.toContain('vibepn_tun.node');
  });
});

describe('loadAddon', () => {
  it('throws AddonNotFoundError naming the file and the build command when no build/Release holds it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vibepn-addon-'));
    try {
      mkdirSync(join(dir, 'a', 'b'), { recursive: true });
      const from = pathToFileURL(join(dir, 'a', 'b', 'caller.js')).href;
      expect(() => loadAddon('vibepn_nothing.node', from)).toThrow(AddonNotFoundError);
      expect(() => loadAddon('vibepn_nothing.node', from)).toThrow(/vibepn_nothing\.node.*npm run build:native/);
      // A file that is there but is no addon is a load error, not "not found".
      mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
      writeFileSync(join(dir, 'build', 'Release', 'vibepn_nothing.node'), 'not an ELF file\n');
      let caught: unknown;
      try {
        loadAddon('vibepn_nothing.node', from);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(Error);
      expect(caught).not.toBeInstanceOf(AddonNotFoundError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
