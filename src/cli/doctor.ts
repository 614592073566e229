// vpnctl doctor: checks a node's files the way the daemon will use them, one line per check,
// each failure with its fix. Runs offline; never changes anything.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadConfig, ConfigError } from '../config/load.js';
import { resolveNetworkAddress } from '../config/address.js';
import type { Config } from '../config/types.js';
import { DEFAULTS } from '../config/types.js';
import { checkValidity, fingerprintOfPem } from '../crypto/identity.js';
import { optionalString, parseOptions } from './args.js';
import type { Output } from './output.js';

export const DOCTOR_HELP = `usage: vpnctl doctor [--config P] [--json]

Checks the config, identity files, networks, peers and known-peers file; prints one line per check
with the fix for each failure. Exit code 1 when any check fails.`;

export interface Check {
  check: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export async function runDoctor(argv: string[], out: Output): Promise<number> {
  const { values } = parseOptions(argv, { help: { type: 'boolean', short: 'h' }, config: { type: 'string' }, json: { type: 'boolean' } }, DOCTOR_HELP);
  if (values.help) {
    out.stdout(DOCTOR_HELP);
    return 0;
  }
  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const checks = diagnose(configPath);
  const ok = checks.every((c) => c.ok);
  if (values.json) {
    out.stdout(JSON.stringify({ ok, config: configPath, checks }, null, 2));
  } else {
    for (const c of checks) {
      out.stdout(`${c.ok ? '[ ok ]' : '[FAIL]'} ${c.check}: ${c.detail}`);
      if (!c.ok && c.fix) out.stdout(`       fix: ${c.fix}`);
    }
    const failed = checks.filter((c) => !c.ok).length;
    out.stdout(failed === 0 ? `all ${checks.length} checks passed` : `${failed} of ${checks.length} checks failed`);
  }
  return ok ? 0 : 1;
}

export function diagnose(configPath: string): Check[] {
  const checks: Check[] = [];
  let config: Config;
  try {
    config = loadConfig(configPath);
    checks.push({ check: 'config', ok: true, detail: `${configPath} parses and validates` });
  } catch (error) {
    const errors = error instanceof ConfigError ? error.errors : [(error as Error).message];
    // A missing file's message already says how to create one; other errors are fixed in the file.
    const fix = existsSync(configPath) ? `edit ${configPath}` : `vpnctl init --config ${configPath}`;
    for (const message of errors) checks.push({ check: 'config', ok: false, detail: message, fix });
    return checks;
  }

  const fingerprint = checkIdentity(config, checks);
  for (const net of config.networks.values()) {
    const address = fingerprint ? resolveNetworkAddress(net, fingerprint) : net.address;
    checks.push({
      check: `network ${net.name}`,
      ok: true,
      detail: `prefix ${net.prefix}, address ${address}${net.address === 'auto' ? ' (auto)' : ''}${net.routes.length ? `, exports ${net.routes.join(', ')}` : ''}`,
    });
  }
  for (const peer of config.peers) {
    checks.push({
      check: `peer ${peer.name}`,
      ok: true,
      detail: `${peer.address || 'inbound only'}, ${peer.fingerprint ? 'pinned' : 'trust on first use'}, networks ${peer.networks.join(', ')}`,
    });
  }
  checkKnownPeers(config, checks);
  return checks;
}

/** Returns the certificate's fingerprint when the identity is usable, for the address lines. */
function checkIdentity(config: Config, checks: Check[]): string | undefined {
  const { cert, key } = config.identity;
  const certPem = readFileCheck(cert, 'identity certificate', checks);
  const keyPem = readFileCheck(key, 'identity key', checks);
  if (keyPem !== undefined) {
    const mode = statSync(key).mode & 0o777;
    checks.push(
      (mode & 0o077) === 0
        ? { check: 'key permissions', ok: true, detail: `${key} is mode ${mode.toString(8).padStart(4, '0')}` }
        : {
            check: 'key permissions',
            ok: false,
            detail: `${key} is mode ${mode.toString(8).padStart(4, '0')}: readable by group or others`,
            fix: `chmod 600 ${key}`,
          },
    );
  }
  if (certPem === undefined || keyPem === undefined) return undefined;

  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (error) {
    checks.push({ check: 'certificate', ok: false, detail: `${cert} is not a PEM certificate (${(error as Error).message})`, fix: 'vpnctl init --force to create a new identity' });
    return undefined;
  }
  try {
    const privateKey = createPrivateKey(keyPem);
    const matches = x509.checkPrivateKey(privateKey);
    checks.push(
      matches
        ? { check: 'key matches certificate', ok: true, detail: 'the private key belongs to the certificate' }
        : { check: 'key matches certificate', ok: false, detail: `${key} is not the key of ${cert}`, fix: 'restore the matching key, or vpnctl init --force for a new identity' },
    );
  } catch (error) {
    checks.push({ check: 'key matches certificate', ok: false, detail: `${key} is not a PEM private key (${(error as Error).message})`, fix: 'restore the key file' });
  }
  const fingerprint = fingerprintOfPem(certPem);
  const pinned = config.identity.fingerprint;
  checks.push(
    !pinned || pinned === fingerprint
      ? { check: 'fingerprint', ok: true, detail: `${fingerprint}${pinned ? ' (matches identity.fingerprint)' : ''}` }
      : {
          check: 'fingerprint',
          ok: false,
          detail: `identity.fingerprint is ${pinned} but ${cert} hashes to ${fingerprint}`,
          fix: `set identity.fingerprint = "${fingerprint}" or restore the original certificate`,
        },
  );
  const invalid = checkValidity(new Date(x509.validFrom), new Date(x509.validTo));
  checks.push(
    invalid === null
      ? { check: 'certificate validity', ok: true, detail: `valid until ${new Date(x509.validTo).toISOString()}` }
      : { check: 'certificate validity', ok: false, detail: invalid, fix: 'vpnctl init --force for a new identity, then update peers\' pinned fingerprints' },
  );
  return fingerprint;
}

function readFileCheck(path: string, what: string, checks: Check[]): string | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    checks.push({ check: what, ok: true, detail: `${path} exists and is readable` });
    return text;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    checks.push({
      check: what,
      ok: false,
      detail: `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`,
      fix: code === 'EACCES' ? 'run as root (sudo)' : 'vpnctl init to create an identity, or fix identity.cert/identity.key in the config',
    });
    return undefined;
  }
}

function checkKnownPeers(config: Config, checks: Check[]): void {
  const path = config.identity.knownPeers;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      checks.push({ check: 'known peers', ok: true, detail: `${path} does not exist yet (created on first connection)` });
    } else {
      checks.push({ check: 'known peers', ok: false, detail: `${path}: ${(error as Error).message}`, fix: 'run as root (sudo)' });
    }
    return;
  }
  let known: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    known = parsed as Record<string, unknown>;
  } catch (error) {
    checks.push({ check: 'known peers', ok: false, detail: `${path} is not a JSON object of name → fingerprint (${(error as Error).message})`, fix: `repair or remove ${path} (removing it re-trusts peers on first use)` });
    return;
  }
  const fileMode = statSync(path).mode & 0o777;
  const dirMode = statSync(dirname(path)).mode & 0o777;
  checks.push(
    (fileMode & 0o077) === 0 && (dirMode & 0o077) === 0
      ? { check: 'known peers permissions', ok: true, detail: `${path} 0${fileMode.toString(8)}, directory 0${dirMode.toString(8)}` }
      : { check: 'known peers permissions', ok: false, detail: `${path} is 0${fileMode.toString(8)} in a 0${dirMode.toString(8)} directory; others could read or replace trust decisions`, fix: `chmod 600 ${path} && chmod 700 ${dirname(path)}` },
  );
  let consistent = true;
  for (const peer of config.peers) {
    const stored = known[peer.name];
    if (peer.fingerprint && typeof stored === 'string' && stored !== peer.fingerprint) {
      consistent = false;
      checks.push({
        check: `known peer ${peer.name}`,
        ok: false,
        detail: `pinned fingerprint ${peer.fingerprint} differs from the one learned earlier, ${stored}`,
        fix: `confirm the peer's new certificate, then remove "${peer.name}" from ${path}`,
      });
    }
  }
  if (consistent) checks.push({ check: 'known peers', ok: true, detail: `${Object.keys(known).length} entries, consistent with pinned fingerprints` });
}
