// vpnctl rekey: a new identity for this node, and nothing else. A damaged or expired certificate
// used to be fixed with `init --force`, which rewrote the config without its peers; this keeps
// every byte of the config but a pinned identity.fingerprint, and says what the peers must do.

import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolveNetworkAddress } from '../config/address.js';
import { checkConfigText, readConfigText, withIdentityFingerprint, writeConfigText } from '../config/edit.js';
import { DEFAULTS, type Config } from '../config/types.js';
import { certificateInfo, generateIdentity, writeIdentityFiles } from '../crypto/identity.js';
import { formatIp } from '../netgraph/addr.js';
import { addPeerCommand } from './add-peer.js';
import { CommandError, FORCE_FLAG, optionalString, parseCommandFlags, stringFlags } from './args.js';
import { JSON_FLAG, nodeNameFlag, printJson } from './onboard.js';
import { shellWord, type Output } from './output.js';

export const REKEY_HELP = `usage: vpnctl rekey [--config P] [--name N] [--force] [--json]

Replaces this node's identity (certificate and key, at the paths the config names) with a new
one, and nothing else: peers, networks and daemon settings stay as written (identity.fingerprint
is updated where the config pins it). The fingerprint changes, and with it every auto address,
so peers refuse this node until they pin the new fingerprint: rekey prints the command to run
on them.
  --name N   the new certificate's name (default: the old certificate's, else this host's name)
  --force    replace existing identity files (needed whenever there are any)
  --json     print the result as one JSON object
Restart vpn afterwards: it reads the identity at start.`;

/** What can still be read of the identity being replaced: its fingerprint and CN, if the certificate parses. */
function oldIdentity(certPath: string): { fingerprint?: string; name?: string } {
  try {
    const info = certificateInfo(new Uint8Array(new X509Certificate(readFileSync(certPath)).raw));
    return { fingerprint: info.fingerprint, name: info.commonName || undefined };
  } catch {
    // Missing or damaged: the reason to rekey, usually.
    return {};
  }
}

export async function runRekey(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, { ...stringFlags('config', 'name'), ...FORCE_FLAG, ...JSON_FLAG }, REKEY_HELP, out);
  if (values === undefined) return;
  const configPath = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const file = readConfigText(configPath);
  const { config } = file;
  const { cert, key } = config.identity;
  const old = oldIdentity(cert);
  const fallback = old.name ? { name: old.name, what: `the old certificate's name (CN of ${cert})` } : { name: hostname(), what: "this host's name" };
  const name = nodeNameFlag(values, REKEY_HELP, fallback);
  const existing = [cert, key].filter((path) => existsSync(path));
  if (existing.length > 0 && values.force !== true) {
    const pinned = old.fingerprint ? `fingerprint ${old.fingerprint.slice(0, 16)}…` : 'the old fingerprint';
    throw new CommandError(
      `${existing.join(' and ')} ${existing.length === 1 ? 'exists' : 'exist'}; rekey replaces the identity, and peers that pinned ${pinned} ` +
        `then refuse this node until they pin the new one: pass --force to go ahead`,
    );
  }

  const warnings =
    old.name === undefined && optionalString(values, 'name') === undefined
      ? [`${cert} could not be read, so the new certificate is named '${name}' after this host; if peers know this node by another name, run again with --name NAME`]
      : [];
  const identity = await generateIdentity(name);
  // A roster admin is known by its fingerprint on every member: a new key signs nothing they believe.
  const adminOf = old.fingerprint === undefined ? [] : [...config.networks.values()].filter((net) => net.admins?.includes(old.fingerprint!)).map((net) => net.name);
  if (adminOf.length > 0) {
    warnings.push(
      `this node is an admin of ${adminOf.join(', ')} under its old fingerprint: members believe records and invites only from fingerprints in networks.NAME.admins, ` +
        `so add ${identity.fingerprint} to admins here and on every member, then vpnctl reload there (records the old key signed stay valid while it is listed)`,
    );
  }
  // The config changes only where it pins the certificate: everything else stays byte for byte.
  const text = withIdentityFingerprint(file, identity.fingerprint);
  const expected: Config = config.identity.fingerprint === undefined ? config : { ...config, identity: { ...config.identity, fingerprint: identity.fingerprint } };
  const configChanged = text !== file.text;
  // Checked before the identity is written, so a config that cannot follow leaves both as they were.
  if (configChanged) checkConfigText(file, text, expected);
  writeIdentityFiles(cert, key, identity, { force: true });
  if (configChanged) writeConfigText(file, text, expected);

  const addresses = [...config.networks.values()]
    .filter((net) => net.address === 'auto')
    .map((net) => ({
      network: net.name,
      address: formatIp(resolveNetworkAddress(net, identity.fingerprint)),
      previous: old.fingerprint === undefined ? null : formatIp(resolveNetworkAddress(net, old.fingerprint)),
    }));
  const exported = [...config.networks.values()].filter((net) => net.export);
  const addPeer = addPeerCommand({
    name,
    address: `<this-host>:${config.daemon.listen.port}`,
    fingerprint: identity.fingerprint,
    networks: [...config.networks.keys()],
    allowedRoutes: exported.flatMap((net) => net.routes),
    force: true,
  });
  const forget = `vpnctl forget ${shellWord(name)}`;
  for (const warning of warnings) out.stderr(`warning: ${warning}`);

  if (values.json === true) {
    printJson(out, {
      name,
      fingerprint: identity.fingerprint,
      previous_fingerprint: old.fingerprint ?? null,
      cert,
      key,
      config: configPath,
      config_changed: configChanged,
      addresses,
      add_peer_command: addPeer,
      forget_command: forget,
      warnings,
      next: 'restart vpn',
    });
    return;
  }
  out.stdout(`new identity ${name}${old.fingerprint ? ` (replaces ${old.fingerprint.slice(0, 16)}…)` : ''}`);
  out.stdout(`  fingerprint ${identity.fingerprint}`);
  out.stdout(`  cert        ${cert}`);
  out.stdout(`  key         ${key} (mode 0600)`);
  for (const a of addresses) out.stdout(`  address     ${a.address} in ${a.network} (auto${a.previous ? `; was ${a.previous}` : ''})`);
  out.stdout(configChanged ? `updated identity.fingerprint in ${configPath}; nothing else changed` : `${configPath} is unchanged`);
  out.stdout('peers know this node by its old fingerprint and refuse the new one until they are told; on each peer:');
  out.stdout(`  where it is pinned (list only the networks you share):`);
  out.stdout(`    ${addPeer}`);
  out.stdout(`  where it was trusted on first use:`);
  out.stdout(`    ${forget}`);
  out.stdout('  then vpnctl reload there; here, restart vpn (it reads the identity at start)');
}
