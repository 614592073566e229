// Applies a reload (SIGHUP, `vpnctl reload`): the plan from reload.ts, carried out so that the
// sessions it does not concern stay up. Peers removed from the config hear Goodbye, added ones
// are dialed, interfaces follow the networks, and every connected peer hears exactly the
// Announce/Withdraw messages that move it from the old config's announcements to the new one's.

import type { Config, NetworkConfig, PeerConfig } from '../config/types.js';
import type { RouteAnnouncement } from '../control/messages.js';
import { TrustStore } from '../crypto/trust.js';
import type { Logger } from '../log/logger.js';
import type { Routes } from '../netgraph/routes.js';
import type { Peer } from '../peer/peer.js';
import type { PeerMap } from '../peer/peers.js';
import { announcementsFor, diffAnnouncements } from './announce.js';
import { describePlan, planReload } from './reload.js';

/** The parts of the daemon a reload changes. */
export interface ReloadTarget {
  readonly log: Logger;
  readonly localFingerprint: string;
  config: Config;
  trust: TrustStore;
  readonly peers: PeerMap;
  readonly routes: Routes<Peer>;
  addNetwork(net: NetworkConfig): void;
  removeNetwork(name: string): void;
  /** Adds a configured peer (not dialed yet). */
  addPeer(config: PeerConfig): Peer;
  removePeer(peer: Peer, reason: string): void;
  /** What this node offers its peers changed (daemon.relay): each open session hears a new C. */
  capabilitiesChanged(): void;
}

/** Returns the summary `vpnctl reload` prints. Throws before changing anything if the known-peers file is unreadable. */
export async function applyReload(next: Config, target: ReloadTarget, cause?: string): Promise<string> {
  const log = target.log.child('daemon');
  const previous = target.config;
  const plan = planReload(previous, next);
  // First, since it may throw: hand edits to the known-peers file take effect on reload.
  const trust = next.identity.knownPeers === previous.identity.knownPeers ? target.trust : new TrustStore(next.identity.knownPeers);
  await trust.reload();
  target.trust = trust;
  // Nothing below awaits: the reload is applied in one step, never interleaved with sessions.

  const before = new Map<Peer, Map<string, RouteAnnouncement[]>>();
  for (const peer of target.peers.withKeys()) {
    if (peer.connected) before.set(peer, announcementsFor(previous, peer.config, target.localFingerprint));
  }
  // What runs: the new config, except settings that only a restart applies. A second reload then
  // still reports them instead of "no changes" while the file differs from what runs.
  target.config = {
    ...next,
    identity: { ...next.identity, cert: previous.identity.cert, key: previous.identity.key, fingerprint: previous.identity.fingerprint },
    daemon: { ...next.daemon, listen: previous.daemon.listen, controlSocket: previous.daemon.controlSocket, metricsListen: previous.daemon.metricsListen },
  };
  log.setLevel(next.daemon.logLevel);

  for (const config of [...plan.peersRemoved, ...plan.peersReplaced]) {
    const peer = target.peers.byConfigName(config.name);
    if (peer) target.removePeer(peer, 'removed from config');
  }
  for (const config of next.peers) {
    const peer = target.peers.byConfigName(config.name);
    if (!peer) continue;
    // Sessions of peers that stay keep running, but their policy must follow the new config.
    peer.config = config;
    if (!config.fingerprint && !peer.connected) target.peers.setFingerprint(peer, trust.get(config.name) ?? null);
  }

  for (const net of [...plan.networksRemoved, ...plan.networksRebuilt]) target.removeNetwork(net.name);
  for (const net of [...plan.networksAdded, ...plan.networksRebuilt]) target.addNetwork(net);
  // An added or rebuilt network starts with an empty table; its peers announced their routes
  // once, on their sessions, so those are applied now instead of waiting for a reconnect.
  for (const net of [...plan.networksAdded, ...plan.networksRebuilt]) {
    for (const peer of before.keys()) {
      const routes = peer.session?.announced.get(net.name);
      if (routes?.size) target.routes.announce(peer, net.name, [...routes].map(([prefix, metric]) => ({ prefix, metric })));
    }
  }
  target.routes.revalidate();
  // A peer whose networks or allowed routes changed has everything it announced judged again:
  // what the old config refused may be allowed now, without waiting for a reconnect.
  for (const config of plan.peersUpdated) {
    const peer = target.peers.byConfigName(config.name);
    if (peer?.session) target.routes.replace(peer, peer.session.announced);
  }

  for (const [peer, old] of before) {
    const session = peer.session;
    if (!session) continue;
    const diff = diffAnnouncements(old, announcementsFor(next, peer.config, target.localFingerprint));
    for (const w of diff.withdraw) session.withdraw(w.network, w.prefix);
    for (const [network, routes] of diff.announce) session.announce(network, routes);
  }
  for (const config of [...plan.peersAdded, ...plan.peersReplaced]) target.addPeer(config).manager?.start();
  if (plan.settingsChanged.includes('daemon.relay')) target.capabilitiesChanged();

  const summary = describePlan(plan);
  // A roster change applies the same way, with its own cause; an unchanged plan is not news then.
  if (cause === undefined) log.info(`reloaded ${previous.path}: ${summary}`);
  else if (summary !== 'no changes') log.info(`${cause}: ${summary}`);
  if (plan.needsRestart.length) log.warn(`reload: ${plan.needsRestart.join(', ')} changed; restart the daemon to apply`);
  return summary;
}
