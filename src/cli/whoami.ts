// vpnctl whoami | version: what a user asks first, answered offline. whoami reads the config and
// this node's certificate (not its key, so no root is needed where the files are readable).

import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { resolveNetworkAddress } from '../config/address.js';
import { loadConfig } from '../config/load.js';
import { DEFAULTS, type Config } from '../config/types.js';
import { certificateInfo, type CertificateInfo } from '../crypto/identity.js';
import { formatIp, formatPrefix } from '../netgraph/addr.js';
import { CommandError, optionalString, parseCommandFlags, stringFlags } from './args.js';
import type { Output } from './output.js';

export const WHOAMI_HELP = `usage: vpnctl whoami [--config FILE] [--json]

This node's name, fingerprint and overlay address in each network, from its config
(default ${DEFAULTS.configPath}) and certificate. Works without a running daemon.`;

export const VERSION_HELP = 'usage: vpnctl version [--json]\n\nPrints the version of vibepn this vpnctl belongs to.';

/** The version in the package.json above this file (dist/src/cli in an install, src/cli in tests). */
export function vibepnVersion(): string {
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'vibepn' && pkg.version) return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

export function runVersion(argv: string[], out: Output): number {
  const values = parseCommandFlags(argv, { json: { type: 'boolean' } }, VERSION_HELP, out);
  if (!values) return 0;
  out.stdout(values.json ? JSON.stringify({ version: vibepnVersion() }) : `vibepn ${vibepnVersion()}`);
  return 0;
}

/**
 * This node's name and fingerprint from its certificate (not its key: no root needed where the
 * file is readable), or a CommandError that names the fix.
 */
export function nodeCertificate(config: Config, configPath: string): CertificateInfo {
  let certPem: string;
  try {
    certPem = readFileSync(config.identity.cert, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CommandError(`cannot read this node's certificate ${config.identity.cert}: ${code === 'ENOENT' ? 'no such file (vpnctl rekey --force creates one and keeps the config)' : (error as Error).message}`);
  }
  try {
    return certificateInfo(new Uint8Array(new X509Certificate(certPem).raw));
  } catch (error) {
    throw new CommandError(`${config.identity.cert} is not a readable certificate (${(error as Error).message}); vpnctl doctor --config ${configPath} says what to do`);
  }
}

export function runWhoami(argv: string[], out: Output): number {
  const values = parseCommandFlags(argv, { ...stringFlags('config'), json: { type: 'boolean' } }, WHOAMI_HELP, out);
  if (!values) return 0;
  const path = optionalString(values, 'config') ?? DEFAULTS.configPath;
  const config = loadConfig(path);
  const info = nodeCertificate(config, path);
  const networks = [...config.networks.values()].map((net) => ({
    name: net.name,
    address: formatIp(resolveNetworkAddress(net, info.fingerprint)),
    prefix: formatPrefix(net.prefix),
  }));
  if (values.json) {
    out.stdout(JSON.stringify({ name: info.commonName, fingerprint: info.fingerprint, config: path, networks }, null, 2));
    return 0;
  }
  out.stdout(`name         ${info.commonName || '-'}`);
  out.stdout(`fingerprint  ${info.fingerprint}`);
  for (const net of networks) out.stdout(`${'address'.padEnd(12)} ${net.address} in ${net.name} (${net.prefix})`);
  if (networks.length === 0) out.stdout('address      - (no networks)');
  return 0;
}

