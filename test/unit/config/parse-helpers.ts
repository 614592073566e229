// Shared by the loader tests: a fixed file name and home, and helpers that parse text or return its errors.
import { expect } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';

export const FILE = '/etc/vibepn/config.toml';
export const HOME = '/home/tester';
export const FP1 = '1f3a'.repeat(16);
export const FP2 = 'b0b0'.repeat(16);
export const IDENTITY = '[identity]\ncert = "/etc/vibepn/certs/node.crt"\nkey = "/etc/vibepn/certs/node.key"\n';
export const INBOUND_ONLY_NEEDS_PIN =
  'required when address is "" (an inbound-only peer is never dialed, so its key cannot be learned on first use; ' +
  'add fingerprint = "<64 hex>" as printed by vpnctl status on that node)';

// The shared literals helpers, re-exported for the config tests that import them from here.
export { cidr, ip } from '../../helpers/addresses.js';

export function parse(text: string): Config {
  return parseConfig(text, FILE, { homeDir: HOME });
}

/** The ConfigError lines for `text`; fails the test if it parses. */
export function errorsOf(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const configError = err as ConfigError;
    expect(configError.message).toBe(configError.errors.join('\n'));
    return configError.errors;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

/** `[identity]` (lines 1-3) followed by `body` starting on line 4. */
export function withIdentity(body: string): string {
  return IDENTITY + body;
}
