// vpnctl init / invite / join: offline onboarding on config and identity files. init is here;
// invite is in invite.ts, join in join.ts, what they share in new-node.ts (add-peer is in
// add-peer.ts, rekey in rekey.ts). None of these talk to a daemon; they write files a daemon
// reads on (re)load. The re-exports keep this the one module cmd/vpnctl.ts and rekey import.

import { DEFAULTS } from '../config/types.js';
import { networkNameProblem } from '../config/names.js';
import { formatEndpoint } from '../config/values.js';
import { formatPrefix, parseCidr } from '../netgraph/addr.js';
import { UsageError, optionalString, parseCommandFlags, stringFlags } from './args.js';
import { NEW_NODE_FLAGS, createNewNode, describeAddress, networkJson, printJson } from './new-node.js';
import { shellWord, type Output } from './output.js';

export { INVITE_HELP, runInvite } from './invite.js';
export { JOIN_HELP, runJoin } from './join.js';
export { JSON_FLAG, nodeNameFlag, printJson } from './new-node.js';

export const INIT_HELP = `usage: vpnctl init [--config P] [--cert P] [--key P] [--name N] [--network N] [--prefix CIDR]
                  [--address auto|IP] [--export=true|false] [--listen HOST:PORT] [--socket P]
                  [--metrics-listen ADDR] [--known-peers P] [--force] [--json]

Creates this node's identity (ECDSA P-256 certificate and key) and a config with one network,
with this node as its admin (admins = ["<its fingerprint>"]): it can then issue short invites.
  --config P          config file to write (default ${DEFAULTS.configPath})
  --cert P, --key P   identity files to write (default ${DEFAULTS.cert}, ${DEFAULTS.key})
  --name N            node name, the certificate's CN and the name peers list it by
                      (default: this host's name; A-Z a-z 0-9 _ . -)
  --network N         network name (default ${DEFAULTS.network})
  --prefix CIDR       network prefix, IPv4 or IPv6 (default ${DEFAULTS.prefix})
  --address A         overlay address: auto (derived from the fingerprint) or an IP in the prefix
  --export=BOOL       announce this node's routes (default true)
  --listen, --socket, --metrics-listen, --known-peers
                      daemon settings written into [daemon]/[identity] (defaults as in the docs)
  --force             overwrite existing files (the config too: for a new identity alone,
                      use vpnctl rekey)
  --json              print the result as one JSON object`;

export async function runInit(argv: string[], out: Output): Promise<void> {
  const values = parseCommandFlags(argv, { ...NEW_NODE_FLAGS, ...stringFlags('network', 'prefix') }, INIT_HELP, out);
  if (values === undefined) return;
  const networkName = optionalString(values, 'network') ?? DEFAULTS.network;
  const networkProblem = networkNameProblem(networkName);
  if (networkProblem) throw new UsageError(`--network ${networkProblem}`, INIT_HELP);
  const prefix = parseCidr(optionalString(values, 'prefix') ?? DEFAULTS.prefix);
  if (!prefix.ok) throw new UsageError(`--prefix ${prefix.error}`, INIT_HELP);
  // The creator administers the network: it signs the roster and redeems the short invites.
  const node = await createNewNode(values, { name: networkName, prefix: prefix.prefix, admins: 'self' }, [], INIT_HELP);
  const next = `vpnctl invite --config ${shellWord(node.configPath)} --network ${shellWord(networkName)} --address <this-host>:${node.config.daemon.listen.port}`;

  if (values.json === true) {
    printJson(out, {
      name: node.name,
      fingerprint: node.identity.fingerprint,
      cert: node.certPath,
      key: node.keyPath,
      config: node.configPath,
      network: networkJson(node.config.networks.get(networkName)!, node.identity.fingerprint),
      listen: formatEndpoint(node.config.daemon.listen),
      admin: true,
      next,
    });
    return;
  }
  out.stdout(`created identity ${node.name}`);
  out.stdout(`  fingerprint ${node.identity.fingerprint}`);
  out.stdout(`  cert        ${node.certPath}`);
  out.stdout(`  key         ${node.keyPath} (mode 0600)`);
  out.stdout(`wrote ${node.configPath}`);
  out.stdout(`  network ${networkName} ${formatPrefix(prefix.prefix)}, address ${describeAddress(node, networkName)}`);
  out.stdout(`  admin   this node (admins = ["${node.identity.fingerprint.slice(0, 16)}…"]): it issues ${networkName}'s invites`);
  out.stdout(`next: ${next}`);
}
