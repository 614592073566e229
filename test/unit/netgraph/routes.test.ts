import { describe, expect, it } from 'vitest';
import type { RouteAnnouncement } from '../../../src/control/messages.js';
import { memoryLogger } from '../../../src/log/logger.js';
import type { RouteRejectReason } from '../../../src/metrics/metrics.js';
import { formatPrefix, parseCidr, parseIp, type Prefix } from '../../../src/netgraph/addr.js';
import { Routes, type RoutePeer } from '../../../src/netgraph/routes.js';

function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

const ip = (text: string): Uint8Array => parseIp(text)!;

/** A peer with a fixed auto address per network, and networks/allowed routes a test can change. */
class FakePeer implements RoutePeer {
  allowed: Prefix[] = [];
  /** Set for a peer standing in for an original VibePN node: its address by the original formula. */
  originalAddress: string | null = null;
  /** null: every network (like a peer admitted by accept_unknown_peers). */
  networks: string[] | null;

  constructor(
    readonly id: string,
    readonly name: string,
    networks: string[] | null,
    private readonly autos: Record<string, string>,
  ) {
    this.networks = networks;
  }

  get label(): string {
    return `${this.name} (${this.id.slice(0, 8)}…)`;
  }

  inNetwork(network: string): boolean {
    return this.networks === null || this.networks.includes(network);
  }

  allowedRoutes(): readonly Prefix[] {
    return this.allowed;
  }

  originalAddressIn(): Uint8Array | null {
    return this.originalAddress === null ? null : parseIp(this.originalAddress);
  }

  autoAddressIn(network: string, netPrefix: Prefix): Uint8Array {
    const text = this.autos[network];
    // An address no test announces, in the right family.
    return text ? ip(text) : new Uint8Array(netPrefix.bytes.length).fill(0xfe);
  }
}

const a = (prefixText: string, metric = 1): RouteAnnouncement => ({ prefix: prefixText, metric });

function setup() {
  const alice = new FakePeer('a'.repeat(64), 'alice', ['corp', 'lab'], { corp: '10.42.0.11', lab: '10.43.0.11' });
  const bob = new FakePeer('b'.repeat(64), 'bob', ['corp', 'lab'], { corp: '10.42.0.12', lab: '10.43.0.12' });
  const carol = new FakePeer('c'.repeat(64), 'carol', ['corp'], { corp: '10.42.0.13' });
  const known: FakePeer[] = [alice, bob, carol];
  const rejected: Array<[string, RouteRejectReason]> = [];
  const changes: string[] = [];
  const { logger, lines } = memoryLogger('netgraph');
  const routes = new Routes<FakePeer>({
    knownPeers: () => known,
    metrics: { routeRejected: (network, reason) => rejected.push([network, reason]) },
    logger,
    onChange: (network) => changes.push(network),
  });
  const corp = routes.addNetwork('corp', prefix('10.42.0.0/24'), ip('10.42.0.1'));
  const lab = routes.addNetwork('lab', prefix('10.43.0.0/24'), ip('10.43.0.1'));
  return { routes, corp, lab, alice, bob, carol, known, rejected, changes, lines };
}

/** "prefix peer metric" per route of a network, for compact assertions. */
function rows(routes: Routes<FakePeer>, network?: string): string[] {
  return routes
    .list()
    .filter((r) => network === undefined || r.network === network)
    .map((r) => `${network === undefined ? `${r.network} ` : ''}${formatPrefix(r.prefix)} ${r.peer.name} ${r.metric}`);
}

describe('Routes.announce', () => {
  it('accepts a peer’s own auto host route and its allowed routes, and notifies once per announce', () => {
    const { routes, corp, alice, changes, rejected } = setup();
    alice.allowed = [prefix('192.168.7.0/24')];
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('192.168.7.0/24', 5)]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.11/32 alice 1', '192.168.7.0/24 alice 5']);
    expect(corp.lookup(ip('10.42.0.11'))).toBe(alice);
    expect(corp.lookup(ip('192.168.7.99'))).toBe(alice);
    expect(changes).toEqual(['corp']);
    expect(rejected).toEqual([]);
  });

  it('does not notify when an announce changes nothing, and does when a metric changes', () => {
    const { routes, alice, changes } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.11/32')]);
    routes.announce(alice, 'corp', [a('10.42.0.11/32')]);
    expect(changes).toEqual(['corp']);
    routes.announce(alice, 'corp', [a('10.42.0.11/32', 3)]);
    expect(changes).toEqual(['corp', 'corp']);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.11/32 alice 3']);
  });

  it('applies an announce partly: accepted routes go in, refused ones are counted, one notification', () => {
    const { routes, alice, changes, rejected } = setup();
    routes.announce(alice, 'corp', [a('192.168.0.0/24'), a('10.42.0.11/32'), a('10.42.0.0/24')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.11/32 alice 1']);
    expect(changes).toEqual(['corp']);
    expect(rejected).toEqual([
      ['corp', 'outside_policy'],
      ['corp', 'outside_policy'],
    ]);
  });

  it('masks a prefix with host bits set before checking it', () => {
    const { routes, alice, rejected, lines } = setup();
    alice.allowed = [prefix('192.168.7.0/24')];
    routes.announce(alice, 'corp', [a('192.168.7.9/24')]);
    expect(rows(routes, 'corp')).toEqual(['192.168.7.0/24 alice 1']);
    routes.announce(alice, 'corp', [a('10.42.0.7/24')]);
    expect(rejected).toEqual([['corp', 'outside_policy']]);
    expect(lines.at(-1)).toContain('10.42.0.7/24 (masked to 10.42.0.0/24)');
  });

  const refusals: Array<{ what: string; network: string; prefix: string; reason: RouteRejectReason; label: string; level: string; text: RegExp }> = [
    {
      what: 'a prefix outside the network and the allowed routes',
      network: 'corp',
      prefix: '192.168.0.0/24',
      reason: 'outside_policy',
      label: 'corp',
      level: 'WARN',
      text: /rejected route 192\.168\.0\.0\/24 in corp from alice \(aaaaaaaa…\): announced prefix 192\.168\.0\.0\/24 is outside 10\.42\.0\.0\/24/,
    },
    {
      what: 'the whole network prefix',
      network: 'corp',
      prefix: '10.42.0.0/24',
      reason: 'outside_policy',
      label: 'corp',
      level: 'WARN',
      text: /covers more than the peer's own address/,
    },
    {
      what: 'an unknown network, counted under network=""',
      network: 'nowhere',
      prefix: '10.9.0.0/24',
      reason: 'unknown_network',
      label: '',
      level: 'WARN',
      text: /rejected route 10\.9\.0\.0\/24 in unknown network "nowhere" from alice/,
    },
    {
      what: 'a network the peer is not configured for',
      network: 'lab',
      prefix: '10.43.0.13/32',
      reason: 'peer_not_in_network',
      label: 'lab',
      level: 'WARN',
      text: /in lab from carol .*not configured for this network/,
    },
    {
      what: 'text that is not a CIDR',
      network: 'corp',
      prefix: 'banana',
      reason: 'bad_prefix',
      label: 'corp',
      level: 'WARN',
      text: /rejected route banana in corp .*not a valid CIDR/,
    },
    {
      what: "this node's own address, as an error",
      network: 'corp',
      prefix: '10.42.0.1/32',
      reason: 'conflict',
      label: 'corp',
      level: 'ERROR',
      text: /rejected route 10\.42\.0\.1\/32 in corp .*this node's own address/,
    },
  ];

  for (const refusal of refusals) {
    it(`refuses ${refusal.what}: counted as ${refusal.reason}, logged, table unchanged`, () => {
      const s = setup();
      const peer = refusal.reason === 'peer_not_in_network' ? s.carol : s.alice;
      s.routes.announce(peer, refusal.network, [a(refusal.prefix)]);
      expect(s.rejected).toEqual([[refusal.label, refusal.reason]]);
      expect(s.lines).toHaveLength(1);
      expect(s.lines[0]).toContain(` ${refusal.level} `);
      expect(s.lines[0]).toMatch(refusal.text);
      expect(s.routes.list()).toEqual([]);
      expect(s.changes).toEqual([]);
    });
  }

  it('logs untrusted wire text single-line and bounded', () => {
    const { routes, alice, lines } = setup();
    routes.announce(alice, 'evil\nnet', [a('10.0.0.0/8\nFAKE LOG LINE')]);
    routes.announce(alice, 'corp', [a(`${'x'.repeat(200)}\r\n`)]);
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toMatch(/[\r\n]/);
      expect(line.length).toBeLessThan(400);
    }
  });
});

describe('Routes static-address claims', () => {
  it('records the first free host route a peer announces as its address, and refuses it to another peer', () => {
    const { routes, alice, bob, rejected, lines } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rejected).toEqual([['corp', 'conflict']]);
    expect(lines.at(-1)).toMatch(/ERROR .*rejected route 10\.42\.0\.50\/32 in corp from bob .*is the address of alice/);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);
  });

  it('refuses a second static address from a peer that holds one', () => {
    const { routes, alice, rejected, lines } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    routes.announce(alice, 'corp', [a('10.42.0.60/32')]);
    expect(rejected).toEqual([['corp', 'outside_policy']]);
    expect(lines.at(-1)).toMatch(/second address for the peer .*already holds 10\.42\.0\.50/);
    // Its own auto address stays acceptable next to the claim, and so does the claim itself.
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('10.42.0.50/32', 2)]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.11/32 alice 1', '10.42.0.50/32 alice 2']);
  });

  it('keeps claims per network', () => {
    const { routes, alice, bob } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    routes.announce(bob, 'lab', [a('10.43.0.50/32')]);
    routes.announce(alice, 'lab', [a('10.43.0.60/32')]);
    expect(rows(routes)).toEqual(['corp 10.42.0.50/32 alice 1', 'lab 10.43.0.50/32 bob 1', 'lab 10.43.0.60/32 alice 1']);
  });

  it("refuses another known peer's auto address, naming that peer", () => {
    const { routes, alice, rejected, lines } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.13/32')]);
    expect(rejected).toEqual([['corp', 'conflict']]);
    expect(lines.at(-1)).toMatch(/10\.42\.0\.13\/32 is the address of carol/);
    expect(routes.list()).toEqual([]);
  });

  it('lets a peer claim an address that is the auto address only of a peer it does not know', () => {
    const { routes, alice, known } = setup();
    known.splice(known.findIndex((p) => p.name === 'carol'), 1);
    routes.announce(alice, 'corp', [a('10.42.0.13/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.13/32 alice 1']);
  });

  it('accepts a host route listed in the peer’s allowed_routes without making it a claim', () => {
    const { routes, alice, bob } = setup();
    alice.allowed = [prefix('10.42.0.50/32')];
    routes.announce(alice, 'corp', [a('10.42.0.50/32'), a('10.42.0.60/32')]);
    // 10.42.0.60 became alice's one static address: the allowed route did not use up the slot.
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1', '10.42.0.60/32 alice 1']);
    // Not a claim: bob may announce the same address as his own.
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1', '10.42.0.50/32 bob 1', '10.42.0.60/32 alice 1']);
  });
});

describe('Routes.withdraw', () => {
  it('removes the route, notifies, and frees the claimed address', () => {
    const { routes, alice, bob, changes } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    changes.length = 0;
    routes.withdraw(alice, 'corp', '10.42.0.50/32');
    expect(routes.list()).toEqual([]);
    expect(changes).toEqual(['corp']);
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 bob 1']);
  });

  it('lets a peer move to another static address after withdrawing its first', () => {
    const { routes, alice } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    routes.withdraw(alice, 'corp', '10.42.0.50/32');
    routes.announce(alice, 'corp', [a('10.42.0.60/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.60/32 alice 1']);
  });

  it("does not touch another peer's route or claim, and ignores unknown networks and bad text", () => {
    const { routes, alice, bob, changes } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    changes.length = 0;
    routes.withdraw(bob, 'corp', '10.42.0.50/32');
    routes.withdraw(alice, 'corp', '10.42.0.99/32');
    routes.withdraw(alice, 'nowhere', '10.42.0.50/32');
    routes.withdraw(alice, 'corp', 'not a prefix');
    expect(changes).toEqual([]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);
  });
});

describe('Routes.removePeer', () => {
  it('removes all the peer’s routes, notifying each network once, and returns how many', () => {
    const { routes, alice, bob, changes } = setup();
    alice.allowed = [prefix('192.168.7.0/24')];
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('10.42.0.50/32'), a('192.168.7.0/24')]);
    routes.announce(alice, 'lab', [a('10.43.0.11/32')]);
    routes.announce(bob, 'corp', [a('10.42.0.12/32')]);
    changes.length = 0;
    expect(routes.removePeer(alice)).toBe(4);
    expect(changes.sort()).toEqual(['corp', 'lab']);
    expect(rows(routes)).toEqual(['corp 10.42.0.12/32 bob 1']);
    changes.length = 0;
    expect(routes.removePeer(alice)).toBe(0);
    expect(changes).toEqual([]);
  });

  it('keeps the peer’s static address reserved against others while it is away', () => {
    const { routes, alice, bob, lines } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    routes.removePeer(alice);
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(lines.at(-1)).toMatch(/is the address of alice/);
    expect(routes.list()).toEqual([]);
  });

  it('lets the returning peer take its old address again, or move to a new one and free the old', () => {
    const back = setup();
    back.routes.announce(back.alice, 'corp', [a('10.42.0.50/32')]);
    back.routes.removePeer(back.alice);
    back.routes.announce(back.alice, 'corp', [a('10.42.0.50/32')]);
    expect(rows(back.routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);

    const moved = setup();
    moved.routes.announce(moved.alice, 'corp', [a('10.42.0.50/32')]);
    moved.routes.removePeer(moved.alice);
    moved.routes.announce(moved.alice, 'corp', [a('10.42.0.55/32')]);
    moved.routes.announce(moved.bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(moved.routes, 'corp')).toEqual(['10.42.0.50/32 bob 1', '10.42.0.55/32 alice 1']);
    expect(moved.rejected).toEqual([]);
  });
});

describe('Routes.replace', () => {
  it('makes the peer’s routes exactly what the new session announced', () => {
    const { routes, alice, bob, changes } = setup();
    alice.allowed = [prefix('192.168.7.0/24'), prefix('192.168.8.0/24')];
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('192.168.7.0/24')]);
    routes.announce(bob, 'corp', [a('10.42.0.12/32')]);
    changes.length = 0;
    routes.replace(
      alice,
      new Map([
        ['corp', new Map([['10.42.0.11/32', 2], ['192.168.8.0/24', 1]])],
        ['lab', new Map([['10.43.0.11/32', 1]])],
      ]),
    );
    expect(rows(routes)).toEqual(['corp 10.42.0.11/32 alice 2', 'corp 10.42.0.12/32 bob 1', 'corp 192.168.8.0/24 alice 1', 'lab 10.43.0.11/32 alice 1']);
    expect(changes).toContain('corp');
    expect(changes).toContain('lab');
  });

  it('keeps the peer’s static address through the replacement', () => {
    const { routes, alice, bob } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    routes.replace(alice, new Map([['corp', new Map([['10.42.0.50/32', 1]])]]));
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 alice 1']);
  });
});

describe('Routes.revalidate', () => {
  it('drops routes the peer’s shrunken allowed_routes no longer cover, and keeps the rest', () => {
    const { routes, alice, changes, lines } = setup();
    alice.allowed = [prefix('192.168.7.0/24'), prefix('192.168.8.0/24')];
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('192.168.7.0/24'), a('192.168.8.0/24')]);
    changes.length = 0;
    alice.allowed = [prefix('192.168.8.0/24')];
    routes.revalidate();
    expect(rows(routes, 'corp')).toEqual(['10.42.0.11/32 alice 1', '192.168.8.0/24 alice 1']);
    expect(changes).toEqual(['corp']);
    expect(lines.at(-1)).toMatch(/INFO .*reload: dropped route 192\.168\.7\.0\/24 in corp: announced prefix 192\.168\.7\.0\/24 is outside/);
  });

  it('drops every route in a network the peer left, and frees its claim there', () => {
    const { routes, alice, bob } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('10.42.0.50/32')]);
    routes.announce(alice, 'lab', [a('10.43.0.11/32')]);
    alice.networks = ['lab'];
    routes.revalidate();
    expect(rows(routes)).toEqual(['lab 10.43.0.11/32 alice 1']);
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 bob 1']);
  });

  it('changes nothing and notifies nobody when every route is still allowed', () => {
    const { routes, alice, changes, lines } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('10.42.0.50/32')]);
    changes.length = 0;
    const logged = lines.length;
    routes.revalidate();
    expect(rows(routes, 'corp')).toEqual(['10.42.0.11/32 alice 1', '10.42.0.50/32 alice 1']);
    expect(changes).toEqual([]);
    expect(lines).toHaveLength(logged);
  });
});

describe('Routes networks and counts', () => {
  it('counts routes per network, including empty ones', () => {
    const { routes, alice, bob } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.11/32'), a('10.42.0.50/32')]);
    routes.announce(bob, 'corp', [a('10.42.0.12/32')]);
    expect(routes.counts()).toEqual(new Map([['corp', 3], ['lab', 0]]));
  });

  it('removeNetwork drops its table and its claims and notifies', () => {
    const { routes, alice, bob, changes } = setup();
    routes.announce(alice, 'corp', [a('10.42.0.50/32')]);
    changes.length = 0;
    routes.removeNetwork('corp');
    expect(changes).toEqual(['corp']);
    expect(routes.table('corp')).toBeUndefined();
    expect(routes.counts()).toEqual(new Map([['lab', 0]]));
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(routes.list()).toEqual([]);
    routes.addNetwork('corp', prefix('10.42.0.0/24'), ip('10.42.0.1'));
    routes.announce(bob, 'corp', [a('10.42.0.50/32')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.50/32 bob 1']);
    changes.length = 0;
    routes.removeNetwork('nowhere');
    expect(changes).toEqual([]);
  });

  it('lets an unknown peer (every network, no allowed routes) announce only its own addresses', () => {
    const { routes, known } = setup();
    const stranger = new FakePeer('d'.repeat(64), 'stranger', null, { corp: '10.42.0.14', lab: '10.43.0.14' });
    known.push(stranger);
    routes.announce(stranger, 'corp', [a('10.42.0.14/32'), a('192.168.0.0/16')]);
    routes.announce(stranger, 'lab', [a('10.43.0.14/32')]);
    expect(rows(routes)).toEqual(['corp 10.42.0.14/32 stranger 1', 'lab 10.43.0.14/32 stranger 1']);
  });
});

describe('Routes and original VibePN peers', () => {
  it('takes an original’s whole-network announcement as the host route of its own address', () => {
    const { routes, corp, alice, rejected } = setup();
    alice.originalAddress = '10.42.0.38';
    routes.announce(alice, 'corp', [a('10.42.0.0/24')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.38/32 alice 1']);
    expect(corp.lookup(ip('10.42.0.38'))).toBe(alice);
    expect(corp.lookup(ip('10.42.0.99'))).toBeUndefined();
    // The same text with host bits set, as it may also send.
    routes.announce(alice, 'corp', [a('10.42.0.38/24')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.38/32 alice 1']);
    routes.withdraw(alice, 'corp', '10.42.0.0/24');
    expect(rows(routes, 'corp')).toEqual([]);
    expect(rejected).toEqual([]);
  });

  it('keeps the prefix as announced when allowed_routes grants it, and leaves other peers alone', () => {
    const { routes, alice, bob, rejected } = setup();
    alice.originalAddress = '10.42.0.38';
    alice.allowed = [prefix('10.42.0.0/24')];
    routes.announce(alice, 'corp', [a('10.42.0.0/24')]);
    expect(rows(routes, 'corp')).toEqual(['10.42.0.0/24 alice 1']);
    // A peer that is not an original announcing the /24 is refused as before.
    routes.announce(bob, 'corp', [a('10.42.0.0/24')]);
    expect(rejected).toEqual([['corp', 'outside_policy']]);
  });

  it('logs at most 20 refusals per peer and minute, counting every one, then says how many were left out', () => {
    const clock = { now: 0 };
    const { logger, lines } = memoryLogger('netgraph');
    const alice = new FakePeer('a'.repeat(64), 'alice', ['corp'], { corp: '10.42.0.11' });
    const counted: string[] = [];
    const routes = new Routes<FakePeer>({ knownPeers: () => [alice], metrics: { routeRejected: (_n, reason) => counted.push(reason) }, logger, onChange: () => {}, now: () => clock.now });
    routes.addNetwork('corp', prefix('10.42.0.0/24'), ip('10.42.0.1'));
    for (let i = 0; i < 100; i++) routes.announce(alice, 'corp', [a(`192.168.${i}.0/24`)]);
    expect(counted).toHaveLength(100);
    expect(lines.filter((l) => l.includes('rejected route'))).toHaveLength(20);
    clock.now += 60_000;
    routes.announce(alice, 'corp', [a('192.168.200.0/24')]);
    expect(lines.at(-1)).toMatch(/rejected route 192\.168\.200\.0\/24 .* \(80 similar line\(s\) left out before this one\)$/);
  });
});
