// vpnctl doctor: checks a node's files the way the daemon will use them, one line per check,
// each failure and warning with its fix. Runs offline; never changes anything.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeNetworkAddress } from '../config/address.js';
import { ConfigError, findSelfPeers, loadConfig } from '../config/load.js';
import { DEFAULTS, type Config } from '../config/types.js';
import { PIN_SOURCE, formatOptionalEndpoint } from '../config/values.js';
import { checkValidity, fingerprintOfPem } from '../crypto/identity.js';
import { formatPrefix } from '../netgraph/addr.js';
import { repinCommand } from './add-peer.js';
import { optionalString, parseCommandFlags, stringFlags } from './args.js';
import { autoAddressClashes } from './auto-addresses.js';
import { checkMembership } from './doctor-membership.js';
import { shellWord, type Output } from './output.js';

export const DOCTOR_HELP = `usage: vpnctl doctor [--config P] [--json]

Checks the config, identity files, networks, peers and known-peers file; prints one line per check
with the fix for each failure or warning. Exit code 1 when any check fails; warnings (e.g. a peer
trusted on first use instead of pinned) do not change it.`;

/** warn: works, but weaker than it should be; the exit code stays 0. */
export type CheckLevel = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  /** false only for level 'fail'; kept for scripts written before levels existed. */
  ok: boolean;
  level: CheckLevel;
  detail: string;
  fix?: string;
}

const passed = (check: string, detail: string): Check => ({ check, ok: true, level: 'ok', detail });
const warned = (check: string, detail: string, fix = ''): Check => ({ check, ok: true, level: 'warn', detail, fix });
const failed = (check: string, detail: string, fix = ''): Check => ({ check, ok: false, level: 'fail', detail, fix });

const LABELS: Record<CheckLevel, string> = { ok: '[ ok ]', warn: '[warn]', fail: '[FAIL]' };

export async function runDoctor(argv: string[], out: Output): Promise<number> {
  const values = parseCommandFlags(argv, { ...stringFlags('config'), json: { type: 'boolean' } }, DOCTOR_HELP, out);
  if (values === undefined) return 0;
  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const checks = diagnose(configPath);
  const failures = checks.filter((c) => c.level === 'fail').length;
  const warnings = checks.filter((c) => c.level === 'warn').length;
  if (values.json) {
    out.stdout(JSON.stringify({ ok: failures === 0, config: configPath, checks }, null, 2));
  } else {
    for (const c of checks) {
      out.stdout(`${LABELS[c.level]} ${c.check}: ${c.detail}`);
      if (c.level !== 'ok' && c.fix) out.stdout(`       fix: ${c.fix}`);
    }
    const warningText = warnings === 0 ? '' : ` (${warnings} warning${warnings === 1 ? '' : 's'})`;
    out.stdout(failures === 0 ? `all ${checks.length} checks passed${warningText}` : `${failures} of ${checks.length} checks failed${warningText}`);
  }
  return failures === 0 ? 0 : 1;
}

export function diagnose(configPath: string): Check[] {
  const checks: Check[] = [];
  let config: Config;
  try {
    config = loadConfig(configPath);
    checks.push(passed('config', `${configPath} parses and validates`));
  } catch (error) {
    const errors = error instanceof ConfigError ? error.errors : [(error as Error).message];
    // A missing file's message already says how to create one; other errors are fixed in the file.
    const fix = existsSync(configPath) ? `edit ${configPath}` : `vpnctl init --config ${configPath}`;
    for (const message of errors) checks.push(failed('config', message, fix));
    return checks;
  }

  const certFingerprint = checkIdentity(config, configPath, checks);
  for (const net of config.networks.values()) {
    const routes = net.routes.length ? `, exports ${net.routes.map(formatPrefix).join(', ')}` : '';
    checks.push(passed(`network ${net.name}`, `prefix ${formatPrefix(net.prefix)}, address ${describeNetworkAddress(net, certFingerprint)}${routes}`));
  }
  const known = readKnownPeers(config.identity.knownPeers);
  checkAutoAddresses(config, certFingerprint, checks);
  checkPeers(config, configPath, certFingerprint ?? config.identity.fingerprint, known, checks);
  checkKnownPeers(config, configPath, known, checks);
  checkMembership(config, certFingerprint, { passed, warned, failed }, checks);
  return checks;
}

function checkPeers(config: Config, configPath: string, ownFingerprint: string | undefined, known: KnownPeers, checks: Check[]): void {
  const selfPeers = new Map(ownFingerprint ? findSelfPeers(config, ownFingerprint).map((s) => [s.index, s]) : []);
  config.peers.forEach((peer, index) => {
    const check = `peer ${peer.name}`;
    const address = formatOptionalEndpoint(peer.address) || 'inbound only';
    const self = selfPeers.get(index);
    if (self) {
      checks.push(failed(check, self.message, `remove that [[peers]] entry from ${config.path}; this node never needs to peer with itself`));
    } else if (peer.fingerprint) {
      checks.push(passed(check, `${address}, pinned, networks ${peer.networks.join(', ')}`));
    } else {
      const learned = 'entries' in known ? known.entries[peer.name] : undefined;
      const learnedText = typeof learned === 'string' ? `learned ${learned} so far` : 'nothing learned yet';
      checks.push(
        warned(
          check,
          `${address}, networks ${peer.networks.join(', ')}: not pinned, so trusted on first use — whatever key answers ` +
            `the first connection to ${address} is believed (${learnedText})`,
          `${repinCommand(peer, configPath, '<fp>')} with <fp> ${PIN_SOURCE} (or pin fingerprint = "<fp>" in its [[peers]] entry)`,
        ),
      );
    }
  });
}

function checkAutoAddresses(config: Config, ownFingerprint: string | undefined, checks: Check[]): void {
  for (const clash of autoAddressClashes(config, ownFingerprint)) checks.push(warned(`auto addresses in ${clash.network}`, clash.problem, clash.fix));
}


/** `vpnctl <command> [--config P]` for a fix, the flag left out for the default config. */
function vpnctlCommand(command: string, configPath: string, ...rest: string[]): string {
  const config = configPath === DEFAULTS.configPath ? [] : ['--config', shellWord(configPath)];
  return ['vpnctl', command, ...config, ...rest].join(' ');
}

/**
 * The fix for an identity that cannot be used: a new one at the same paths. Never `init --force`,
 * which would write a new config without this node's peers and daemon settings.
 */
function newIdentityFix(configPath: string): string {
  return `${vpnctlCommand('rekey', configPath, '--force')} for a new identity at the same paths (the config stays as it is; it prints the new fingerprint, which peers must then pin)`;
}

/** Returns the certificate's fingerprint when the identity is usable, for the address lines. */
function checkIdentity(config: Config, configPath: string, checks: Check[]): string | undefined {
  const { cert, key } = config.identity;
  const certPem = readFileCheck(cert, 'identity certificate', configPath, checks);
  const keyPem = readFileCheck(key, 'identity key', configPath, checks);
  if (keyPem !== undefined) {
    const mode = statSync(key).mode & 0o777;
    const modeText = mode.toString(8).padStart(4, '0');
    checks.push(
      (mode & 0o077) === 0
        ? passed('key permissions', `${key} is mode ${modeText}`)
        : failed('key permissions', `${key} is mode ${modeText}: readable by group or others`, `chmod 600 ${key}`),
    );
  }
  if (certPem === undefined || keyPem === undefined) return undefined;

  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (error) {
    checks.push(failed('certificate', `${cert} is not a PEM certificate (${(error as Error).message})`, `restore it, or ${newIdentityFix(configPath)}`));
    return undefined;
  }
  try {
    const privateKey = createPrivateKey(keyPem);
    checks.push(
      x509.checkPrivateKey(privateKey)
        ? passed('key matches certificate', 'the private key belongs to the certificate')
        : failed(
            'key matches certificate',
            `${key} is not the key of ${cert}`,
            existsSync(`${cert}.pending`)
              ? `a replaced identity was interrupted; starting vpn finishes it (or: mv ${cert}.pending ${cert})`
              : `restore the matching key, or ${newIdentityFix(configPath)}`,
          ),
    );
  } catch (error) {
    checks.push(failed('key matches certificate', `${key} is not a PEM private key (${(error as Error).message})`, `restore the key file, or ${newIdentityFix(configPath)}`));
  }
  const fingerprint = fingerprintOfPem(certPem);
  const pinned = config.identity.fingerprint;
  checks.push(
    !pinned || pinned === fingerprint
      ? passed('fingerprint', `${fingerprint}${pinned ? ' (matches identity.fingerprint)' : ''}`)
      : failed(
          'fingerprint',
          `identity.fingerprint is ${pinned} but ${cert} hashes to ${fingerprint}`,
          `set identity.fingerprint = "${fingerprint}" or restore the original certificate`,
        ),
  );
  const invalid = checkValidity(new Date(x509.validFrom), new Date(x509.validTo));
  checks.push(
    invalid === null
      ? passed('certificate validity', `valid until ${new Date(x509.validTo).toISOString()}`)
      : failed('certificate validity', invalid, newIdentityFix(configPath)),
  );
  return fingerprint;
}

function readFileCheck(path: string, what: string, configPath: string, checks: Check[]): string | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    checks.push(passed(what, `${path} exists and is readable`));
    return text;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    checks.push(
      failed(
        what,
        `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`,
        code === 'EACCES' ? 'run as root (sudo)' : `restore it, fix identity.cert/identity.key in ${configPath}, or ${newIdentityFix(configPath)}`,
      ),
    );
    return undefined;
  }
}

/** The known-peers file as read once for every check that needs it, or the check saying why it could not be. */
type KnownPeers = { entries: Record<string, unknown> } | { missing: true } | { problem: Check };

function readKnownPeers(path: string): KnownPeers {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { problem: failed('known peers', `${path}: ${(error as Error).message}`, 'run as root (sudo)') };
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return { entries: parsed as Record<string, unknown> };
  } catch (error) {
    return {
      problem: failed(
        'known peers',
        `${path} is not a JSON object of name → fingerprint (${(error as Error).message})`,
        `repair or remove ${path} (removing it re-trusts peers on first use)`,
      ),
    };
  }
}

function checkKnownPeers(config: Config, configPath: string, known: KnownPeers, checks: Check[]): void {
  const path = config.identity.knownPeers;
  if ('missing' in known) {
    checks.push(passed('known peers', `${path} does not exist yet (created on first connection)`));
    return;
  }
  if ('problem' in known) {
    checks.push(known.problem);
    return;
  }
  const fileMode = statSync(path).mode & 0o777;
  const dirMode = statSync(dirname(path)).mode & 0o777;
  checks.push(
    (fileMode & 0o077) === 0 && (dirMode & 0o077) === 0
      ? passed('known peers permissions', `${path} 0${fileMode.toString(8)}, directory 0${dirMode.toString(8)}`)
      : failed(
          'known peers permissions',
          `${path} is 0${fileMode.toString(8)} in a 0${dirMode.toString(8)} directory; others could read or replace trust decisions`,
          `chmod 600 ${path} && chmod 700 ${dirname(path)}`,
        ),
  );
  let consistent = true;
  for (const peer of config.peers) {
    const stored = known.entries[peer.name];
    if (peer.fingerprint && typeof stored === 'string' && stored !== peer.fingerprint) {
      consistent = false;
      checks.push(
        failed(
          `known peer ${peer.name}`,
          `pinned fingerprint ${peer.fingerprint} differs from the one learned earlier, ${stored}`,
          `confirm that ${peer.name} really has the pinned certificate, then drop the old key: ${vpnctlCommand('forget', configPath, shellWord(peer.name))}`,
        ),
      );
    }
  }
  if (consistent) checks.push(passed('known peers', `${Object.keys(known.entries).length} entries, consistent with pinned fingerprints`));
}
