// What a reload changes (SIGHUP, `vpnctl reload`). Pure comparison of two validated configs; the
// daemon applies the result so unaffected sessions stay up.

import type { Config, NetworkConfig, PeerConfig } from '../config/types.js';
import { bytesEqual, type Prefix } from '../netgraph/addr.js';
import type { HostPort } from '../netgraph/hostport.js';

export interface ReloadPlan {
  peersAdded: PeerConfig[];
  peersRemoved: PeerConfig[];
  /** Same name, different address, pin or `original`: the old session is dropped and the peer redialed. */
  peersReplaced: PeerConfig[];
  /** Same name, address and pin; networks or allowed routes changed: routes are re-checked. */
  peersUpdated: PeerConfig[];
  networksAdded: NetworkConfig[];
  networksRemoved: NetworkConfig[];
  /** Prefix, address, interface or MTU changed: the interface is rebuilt. */
  networksRebuilt: NetworkConfig[];
  /** Only export or exported routes changed: peers hear Announce/Withdraw, nothing is rebuilt. */
  networksUpdated: NetworkConfig[];
  /** Settings applied live, named as config keys (log level, unknown peers, known-peers file). */
  settingsChanged: string[];
  /** Settings that only take effect on restart, named as config keys. */
  needsRestart: string[];
}

function sameHostPort(a: HostPort | null, b: HostPort | null): boolean {
  return a === b || (a !== null && b !== null && a.host === b.host && a.port === b.port);
}

function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.length === b.length && bytesEqual(a.bytes, b.bytes);
}

function samePrefixes(a: readonly Prefix[], b: readonly Prefix[]): boolean {
  return a.length === b.length && a.every((p, i) => samePrefix(p, b[i]!));
}

function sameAddress(a: 'auto' | Uint8Array, b: 'auto' | Uint8Array): boolean {
  return a === 'auto' || b === 'auto' ? a === b : bytesEqual(a, b);
}

/** Same networks (in any order), allowed routes and signed addresses: nothing a session needs to hear about. */
function samePeer(a: PeerConfig, b: PeerConfig): boolean {
  return (
    [...a.networks].sort().join('\n') === [...b.networks].sort().join('\n') &&
    samePrefixes(a.allowedRoutes, b.allowedRoutes) &&
    sameSigned(a.signedAddresses, b.signedAddresses)
  );
}

function sameSigned(a: PeerConfig['signedAddresses'], b: PeerConfig['signedAddresses']): boolean {
  const left = a ?? new Map<string, Uint8Array>();
  const right = b ?? new Map<string, Uint8Array>();
  if (left.size !== right.size) return false;
  for (const [network, address] of left) {
    const other = right.get(network);
    if (!other || !bytesEqual(address, other)) return false;
  }
  return true;
}

export function planReload(before: Config, after: Config): ReloadPlan {
  const plan: ReloadPlan = {
    peersAdded: [],
    peersRemoved: [],
    peersReplaced: [],
    peersUpdated: [],
    networksAdded: [],
    networksRemoved: [],
    networksRebuilt: [],
    networksUpdated: [],
    settingsChanged: [],
    needsRestart: [],
  };
  const oldPeers = new Map(before.peers.map((p) => [p.name, p]));
  const newPeers = new Map(after.peers.map((p) => [p.name, p]));
  for (const [name, peer] of newPeers) {
    const old = oldPeers.get(name);
    if (!old) plan.peersAdded.push(peer);
    else if (!sameHostPort(old.address, peer.address) || (old.fingerprint ?? '') !== (peer.fingerprint ?? '') || Boolean(old.original) !== Boolean(peer.original)) {
      // An original node's session differs from the first byte (Hello nonce, no tie-break): a new one.
      plan.peersReplaced.push(peer);
    }
    else if (!samePeer(old, peer)) plan.peersUpdated.push(peer);
  }
  for (const [name, peer] of oldPeers) if (!newPeers.has(name)) plan.peersRemoved.push(peer);

  for (const [name, net] of after.networks) {
    const old = before.networks.get(name);
    if (!old) plan.networksAdded.push(net);
    else if (!samePrefix(old.prefix, net.prefix) || !sameAddress(old.address, net.address) || old.interface !== net.interface || old.mtu !== net.mtu) {
      plan.networksRebuilt.push(net);
    } else if (old.export !== net.export || !samePrefixes(old.routes, net.routes)) {
      plan.networksUpdated.push(net);
    }
  }
  for (const [name, net] of before.networks) if (!after.networks.has(name)) plan.networksRemoved.push(net);

  const changed: Array<[string, boolean]> = [
    ['identity.cert', before.identity.cert !== after.identity.cert],
    ['identity.key', before.identity.key !== after.identity.key],
    ['identity.fingerprint', (before.identity.fingerprint ?? '') !== (after.identity.fingerprint ?? '')],
    ['daemon.listen', !sameHostPort(before.daemon.listen, after.daemon.listen)],
    ['daemon.control_socket', before.daemon.controlSocket !== after.daemon.controlSocket],
    ['daemon.metrics_listen', !sameHostPort(before.daemon.metricsListen, after.daemon.metricsListen)],
    // TUNs are opened with or without offloads, and capabilities are sent once per connection.
    ['daemon.offload', before.daemon.offload !== after.daemon.offload],
    ['daemon.socket_group', before.daemon.socketGroup !== after.daemon.socketGroup],
  ];
  for (const [key, differs] of changed) if (differs) plan.needsRestart.push(key);
  const live: Array<[string, boolean]> = [
    ['daemon.log_level', before.daemon.logLevel !== after.daemon.logLevel],
    ['daemon.accept_unknown_peers', before.daemon.acceptUnknownPeers !== after.daemon.acceptUnknownPeers],
    ['daemon.relay', before.daemon.relay !== after.daemon.relay],
    ['identity.known_peers', before.identity.knownPeers !== after.identity.knownPeers],
  ];
  for (const [key, differs] of live) if (differs) plan.settingsChanged.push(key);
  return plan;
}

export function describePlan(plan: ReloadPlan): string {
  const parts: string[] = [];
  const names = (items: Array<{ name: string }>) => items.map((i) => i.name).join(', ');
  if (plan.peersAdded.length) parts.push(`peers added: ${names(plan.peersAdded)}`);
  if (plan.peersRemoved.length) parts.push(`peers removed: ${names(plan.peersRemoved)}`);
  if (plan.peersReplaced.length) parts.push(`peers reconnected: ${names(plan.peersReplaced)}`);
  if (plan.peersUpdated.length) parts.push(`peers updated: ${names(plan.peersUpdated)}`);
  if (plan.networksAdded.length) parts.push(`networks added: ${names(plan.networksAdded)}`);
  if (plan.networksRemoved.length) parts.push(`networks removed: ${names(plan.networksRemoved)}`);
  if (plan.networksRebuilt.length) parts.push(`networks rebuilt: ${names(plan.networksRebuilt)}`);
  if (plan.networksUpdated.length) parts.push(`networks updated: ${names(plan.networksUpdated)}`);
  if (plan.settingsChanged.length) parts.push(`settings changed: ${plan.settingsChanged.join(', ')}`);
  if (plan.needsRestart.length) parts.push(`needs restart to take effect: ${plan.needsRestart.join(', ')}`);
  return parts.length ? parts.join('; ') : 'no changes';
}
