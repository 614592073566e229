// `auto` addresses are a hash into the network prefix, so in a /24 two of twenty nodes share one
// about half the time (and any two, 1 in 254); the daemon then refuses the second one's route as
// a conflict. Known here for this node and every pinned peer, as if all of them used `auto`.

import { deriveAutoAddress } from '../config/address.js';
import type { Config } from '../config/types.js';
import { formatIp, formatPrefix } from '../netgraph/addr.js';

export interface AutoAddressClash {
  network: string;
  /** 'this node' or 'peer <name>'. */
  first: string;
  second: string;
  address: string;
  /** The sentence that says what happens. */
  problem: string;
  fix: string;
}

export function autoAddressClashes(config: Config, ownFingerprint: string | undefined): AutoAddressClash[] {
  const clashes: AutoAddressClash[] = [];
  for (const net of config.networks.values()) {
    const nodes: Array<{ name: string; fingerprint: string }> = [];
    if (ownFingerprint && net.address === 'auto') nodes.push({ name: 'this node', fingerprint: ownFingerprint });
    for (const peer of config.peers) if (peer.fingerprint && peer.networks.includes(net.name)) nodes.push({ name: `peer ${peer.name}`, fingerprint: peer.fingerprint });
    const byAddress = new Map<string, string>();
    for (const node of nodes) {
      const address = formatIp(deriveAutoAddress(net.name, net.prefix, node.fingerprint));
      const first = byAddress.get(address);
      if (first === undefined) {
        byAddress.set(address, node.name);
        continue;
      }
      clashes.push({
        network: net.name,
        first,
        second: node.name,
        address,
        problem: `${first} and ${node.name} both derive ${address} in ${formatPrefix(net.prefix)}; if both use address = "auto", the second one's route is refused as a conflict`,
        fix: `set a static networks.${net.name}.address on one of them (or use a larger prefix)`,
      });
    }
  }
  return clashes;
}
