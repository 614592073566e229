import { describe, expect, it } from 'vitest';
import type { Config, NetworkConfig, PeerConfig } from '../../../src/config/types.js';
import { newConfig, newNetwork, newPeer, type NewConfigOptions } from '../../../src/config/write.js';
import { describePlan, planReload, type ReloadPlan } from '../../../src/daemon/reload.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const FP_SELF = 'e'.repeat(64);

function config(peers: PeerConfig[], networks: NetworkConfig[], options: NewConfigOptions = {}): Config {
  return newConfig('/etc/vibepn/config.toml', { homeDir: '/home/test', ...options, peers, networks });
}

const corp = () => newNetwork('corp', '10.42.0.0/24');
const base = () =>
  config(
    [
      newPeer('alice', ['corp'], { address: '192.0.2.1:51820', fingerprint: FP_A }),
      newPeer('bob', ['corp'], { address: 'bob.example:51820' }),
    ],
    [corp(), newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.1', interface: 'tun-lab', mtu: 1400 })],
  );

/** The plan's entries by name, leaving empty categories out. */
function summary(plan: ReloadPlan): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(plan) as Array<[keyof ReloadPlan, unknown[]]>) {
    if (value.length === 0) continue;
    out[key] = value.map((v) => (typeof v === 'string' ? v : (v as { name: string }).name));
  }
  return out;
}

function withPeer(cfg: Config, name: string, peer: PeerConfig): Config {
  return { ...cfg, peers: cfg.peers.map((p) => (p.name === name ? peer : p)) };
}

function withNetwork(cfg: Config, net: NetworkConfig): Config {
  return { ...cfg, networks: new Map([...cfg.networks].map(([name, n]) => [name, name === net.name ? net : n])) };
}

describe('planReload', () => {
  it('finds nothing to do for an identical config', () => {
    const plan = planReload(base(), base());
    expect(summary(plan)).toEqual({});
    expect(describePlan(plan)).toBe('no changes');
  });

  it('lists added and removed peers', () => {
    const before = base();
    const after = config(
      [before.peers[0]!, newPeer('carol', ['corp'], { address: '192.0.2.3:51820' }), newPeer('dave', ['lab'], { fingerprint: FP_B })],
      [...before.networks.values()],
    );
    const plan = planReload(before, after);
    expect(summary(plan)).toEqual({ peersAdded: ['carol', 'dave'], peersRemoved: ['bob'] });
    expect(plan.peersAdded[0]).toBe(after.peers[1]);
    expect(plan.peersRemoved[0]).toBe(before.peers[1]);
  });

  it('replaces a peer whose address changed, in host or port', () => {
    const before = base();
    const host = withPeer(before, 'alice', newPeer('alice', ['corp'], { address: '192.0.2.99:51820', fingerprint: FP_A }));
    const port = withPeer(before, 'alice', newPeer('alice', ['corp'], { address: '192.0.2.1:51821', fingerprint: FP_A }));
    const inboundOnly = withPeer(before, 'alice', newPeer('alice', ['corp'], { fingerprint: FP_A }));
    for (const after of [host, port, inboundOnly]) {
      const plan = planReload(before, after);
      expect(summary(plan)).toEqual({ peersReplaced: ['alice'] });
      expect(plan.peersReplaced[0]).toBe(after.peers[0]);
    }
  });

  it('replaces a peer whose pin was added, changed or removed', () => {
    const before = base();
    const changed = withPeer(before, 'alice', newPeer('alice', ['corp'], { address: '192.0.2.1:51820', fingerprint: FP_B }));
    const unpinned = withPeer(before, 'alice', newPeer('alice', ['corp'], { address: '192.0.2.1:51820' }));
    const pinned = withPeer(before, 'bob', newPeer('bob', ['corp'], { address: 'bob.example:51820', fingerprint: FP_B }));
    expect(summary(planReload(before, changed))).toEqual({ peersReplaced: ['alice'] });
    expect(summary(planReload(before, unpinned))).toEqual({ peersReplaced: ['alice'] });
    expect(summary(planReload(before, pinned))).toEqual({ peersReplaced: ['bob'] });
  });

  it('replaces rather than updates a peer whose address and networks both changed', () => {
    const before = base();
    const after = withPeer(before, 'alice', newPeer('alice', ['corp', 'lab'], { address: '192.0.2.99:51820', fingerprint: FP_A }));
    expect(summary(planReload(before, after))).toEqual({ peersReplaced: ['alice'] });
  });

  it('updates, without reconnecting, a peer whose networks or allowed routes changed', () => {
    const before = base();
    const networks = withPeer(before, 'alice', newPeer('alice', ['corp', 'lab'], { address: '192.0.2.1:51820', fingerprint: FP_A }));
    const routes = withPeer(before, 'alice', newPeer('alice', ['corp'], { address: '192.0.2.1:51820', fingerprint: FP_A, allowedRoutes: ['192.168.7.0/24'] }));
    for (const after of [networks, routes]) {
      const plan = planReload(before, after);
      expect(summary(plan)).toEqual({ peersUpdated: ['alice'] });
      expect(plan.peersUpdated[0]).toBe(after.peers[0]);
    }
    // A change inside one allowed route counts too.
    const wider = withPeer(routes, 'alice', newPeer('alice', ['corp'], { address: '192.0.2.1:51820', fingerprint: FP_A, allowedRoutes: ['192.168.0.0/16'] }));
    expect(summary(planReload(routes, wider))).toEqual({ peersUpdated: ['alice'] });
  });

  it('lists added and removed networks', () => {
    const before = base();
    const after = config(before.peers, [corp(), newNetwork('home', 'fd00:7::/64')]);
    expect(summary(planReload(before, after))).toEqual({ networksAdded: ['home'], networksRemoved: ['lab'] });
  });

  it('rebuilds a network whose prefix, address, interface or MTU changed', () => {
    const before = base();
    const changes: Array<[string, NetworkConfig]> = [
      ['prefix', newNetwork('lab', '10.44.0.0/24', { address: '10.44.0.1', interface: 'tun-lab', mtu: 1400 })],
      ['static address', newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.2', interface: 'tun-lab', mtu: 1400 })],
      ['auto address', newNetwork('lab', '10.43.0.0/24', { interface: 'tun-lab', mtu: 1400 })],
      ['interface', newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.1', interface: 'tun-lab2', mtu: 1400 })],
      ['derived interface', newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.1', mtu: 1400 })],
      ['mtu', newNetwork('lab', '10.43.0.0/24', { address: '10.43.0.1', interface: 'tun-lab', mtu: 1280 })],
    ];
    for (const [what, net] of changes) {
      const plan = planReload(before, withNetwork(before, net));
      expect(summary(plan), what).toEqual({ networksRebuilt: ['lab'] });
      expect(plan.networksRebuilt[0]).toBe(net);
    }
    // auto → static is a change too.
    expect(summary(planReload(before, withNetwork(before, newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.5' }))))).toEqual({
      networksRebuilt: ['corp'],
    });
  });

  it('does not rebuild a network for a change of export or routes (announcements follow instead)', () => {
    const before = base();
    const after = withNetwork(before, newNetwork('corp', '10.42.0.0/24', { export: false, routes: ['192.168.7.0/24'] }));
    const plan = planReload(before, after);
    expect(summary(plan)).toEqual({ networksUpdated: ['corp'] });
    expect(describePlan(plan)).toBe('networks updated: corp');
  });

  it('names settings applied live, so a reload never says "no changes" when something changed', () => {
    const before = base();
    const after = config(before.peers, [...before.networks.values()], { daemon: { logLevel: 'debug', acceptUnknownPeers: true } });
    const plan = planReload(before, after);
    expect(plan.settingsChanged).toEqual(['daemon.log_level', 'daemon.accept_unknown_peers']);
    expect(describePlan(plan)).toBe('settings changed: daemon.log_level, daemon.accept_unknown_peers');
  });

  it('names the settings that need a restart as config keys, in a fixed order', () => {
    const before = base();
    const after = config(before.peers, [...before.networks.values()], {
      cert: '/etc/vibepn/certs/other.crt',
      key: '/etc/vibepn/certs/other.key',
      fingerprint: FP_SELF,
      daemon: { listen: '0.0.0.0:51900', controlSocket: '/run/other.sock', metricsListen: '127.0.0.1:9100' },
    });
    const plan = planReload(before, after);
    expect(plan.needsRestart).toEqual([
      'identity.cert',
      'identity.key',
      'identity.fingerprint',
      'daemon.listen',
      'daemon.control_socket',
      'daemon.metrics_listen',
    ]);
    expect(summary(plan)).toEqual({ needsRestart: plan.needsRestart });
  });

  it('needs a restart for each setting alone, including metrics turned off', () => {
    const before = base();
    const one = (options: NewConfigOptions) => planReload(before, config(before.peers, [...before.networks.values()], options)).needsRestart;
    expect(one({ fingerprint: FP_SELF })).toEqual(['identity.fingerprint']);
    expect(one({ daemon: { listen: '[::]:51820' } })).toEqual(['daemon.listen']);
    expect(one({ daemon: { metricsListen: '' } })).toEqual(['daemon.metrics_listen']);
    expect(one({ daemon: { logLevel: 'debug', acceptUnknownPeers: true } })).toEqual([]);
  });
});

describe('describePlan', () => {
  it('names every category in order, joined by "; "', () => {
    const before = base();
    const after = config(
      [
        newPeer('alice', ['corp', 'lab'], { address: '192.0.2.1:51820', fingerprint: FP_A }),
        newPeer('carol', ['corp'], { address: '192.0.2.3:51820' }),
        newPeer('erin', ['corp'], { address: '192.0.2.5:51820' }),
      ],
      [newNetwork('corp', '10.42.0.0/24', { mtu: 1400 }), newNetwork('home', 'fd00:7::/64')],
      { daemon: { listen: '0.0.0.0:51900' } },
    );
    before.peers.push(newPeer('carol', ['corp'], { address: '192.0.2.33:51820' }));
    expect(describePlan(planReload(before, after))).toBe(
      'peers added: erin; peers removed: bob; peers reconnected: carol; peers updated: alice; ' +
        'networks added: home; networks removed: lab; networks rebuilt: corp; needs restart to take effect: daemon.listen',
    );
  });

  it('lists several names in one category separated by commas', () => {
    const before = config([], []);
    const after = config([newPeer('a', []), newPeer('b', []), newPeer('c', [])], []);
    expect(describePlan(planReload(before, after))).toBe('peers added: a, b, c');
  });
});
