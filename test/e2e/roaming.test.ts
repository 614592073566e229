// End to end: roaming. A node's underlay address changes (its address on eth0 deleted, another in
// the same subnet added) while its peer's config names only the old address, so only the roaming
// node can re-establish the path. Both ways through the overlay must work again within 10 s,
// nothing restarted, whichever side dialed the surviving connection:
//   (i)  the roaming node dialed it: the connection follows it by QUIC migration;
//   (ii) the other node dialed it: it cannot migrate, so the roaming node must redial (its daemon
//        checks its own addresses once a second).
// Which side dialed is set up by killing (SIGKILL) and restarting that side: a restarted daemon
// dials at once, while its peer, still holding the half-open old connection, does not dial.
// Figures are printed as `FIGURE name=value`.
import { describe, expect, it } from 'vitest';
import { ip, netnsUnavailable } from '../helpers/netns.js';
import { Mesh, figure, median, overlay, pingOnce, sleep, waitFor, type MeshNode } from '../helpers/netns-mesh.js';

const skip = netnsUnavailable();
const RUNS = 3;

interface Pair {
  m: Mesh;
  roamer: MeshNode;
  other: MeshNode;
  startedAt: number;
}

async function pair(): Promise<Pair> {
  const m = new Mesh();
  const [roamer, other] = (await m.addNodes(2)) as [MeshNode, MeshNode];
  // The roamer listens on the wildcard address: a socket bound to its old address could not send.
  m.configure(roamer, [m.peer(other)], undefined, { listen: '0.0.0.0:51820' });
  // The other node knows the roamer only at its first (old) address.
  m.configure(other, [m.peer(roamer)]);
  await m.start(other);
  await m.start(roamer);
  return { m, roamer, other, startedAt: performance.now() };
}

/** How many times the roamer's daemon has logged that its local addresses changed. */
function moves(m: Mesh, roamer: MeshNode): number {
  return m.logs(roamer, Infinity).split('local addresses changed').length - 1;
}

/** Both sides connected once, with a route, the connection dialed by `dialer` (either, if null); stable for 1.5 s. */
async function settled(p: Pair, dialer: MeshNode | null): Promise<boolean> {
  const { m, roamer, other } = p;
  const view = async (): Promise<string | null> => {
    const parts: string[] = [];
    for (const [n, o] of [[roamer, other], [other, roamer]] as const) {
      const [status, peers, routes] = await Promise.all([m.status(n), m.peers(n), m.routes(n)]);
      const row = peers?.find((r) => r.name === o.name);
      if (status?.connections !== 1 || !row?.connected) return null;
      if (!routes?.some((r) => r.prefix === `${overlay(o)}/32` && r.peer === o.fingerprint)) return null;
      if (dialer !== null && row.direction !== (n === dialer ? 'outbound' : 'inbound')) return null;
      parts.push(`${row.connected_since} ${row.direction}`);
    }
    return parts.join(' ');
  };
  const first = await view();
  if (first === null) return false;
  await sleep(1500);
  return (await view()) === first;
}

/** Kills and restarts `dialer` so that it dials the surviving connection; throws if that did not happen. */
async function makeDialer(p: Pair, dialer: MeshNode): Promise<void> {
  const { m } = p;
  const up = await waitFor(async () => (await m.status(p.roamer))?.peers_connected === 1 && (await m.status(p.other))?.peers_connected === 1, 15_000);
  if (up === null) throw new Error(`the two nodes did not connect:\n${m.allLogs()}`);
  // A daemon's first address check (1 s after start) sees its own new TUN address as a move and
  // redials the peers it accepted (a daemon bug, see the test below): let it pass first, so that
  // it cannot redial over the connection the restart below sets up.
  await sleep(Math.max(0, 2500 - (performance.now() - p.startedAt)));
  await m.stop(dialer, 'SIGKILL');
  await m.start(dialer);
  const ok = await waitFor(() => settled(p, dialer), 20_000, 100);
  if (ok === null) throw new Error(`the connection did not settle as dialed by ${dialer.name}:\n${m.allLogs()}`);
}

/** Replaces the roamer's underlay address on eth0 with 192.0.2.<index> (same subnet). */
function moveTo(p: Pair, index: number): void {
  const { roamer } = p;
  const next = `192.0.2.${index}`;
  ip('-n', roamer.host.ns, 'addr', 'del', `${roamer.host.underlay}/24`, 'dev', 'eth0');
  ip('-n', roamer.host.ns, 'addr', 'add', `${next}/24`, 'dev', 'eth0');
  roamer.host.underlay = next;
}

/**
 * Moves the roamer to 192.0.2.<newIndex> and waits until a ping through the overlay passes each
 * way, probing every 100 ms with fresh pings sent after the move. Resolves with the ms from the
 * move until both directions answered (null if not within `limitMs`), and each direction's.
 */
async function roam(p: Pair, newIndex: number, limitMs: number): Promise<{ ms: number | null; each: Record<string, number | null> }> {
  const { roamer, other } = p;
  moveTo(p, newIndex);
  const moved = performance.now();
  const firstOk: Record<string, number | null> = { 'roamer→other': null, 'other→roamer': null };
  const probes: Promise<void>[] = [];
  const probe = (name: string, from: MeshNode, to: MeshNode): void => {
    probes.push(
      pingOnce(from.host.ns, overlay(to), 1).then((ok) => {
        const at = performance.now() - moved;
        if (ok && (firstOk[name] === null || at < firstOk[name]!)) firstOk[name] = at;
      }),
    );
  };
  while (performance.now() - moved < limitMs && (firstOk['roamer→other'] === null || firstOk['other→roamer'] === null)) {
    if (firstOk['roamer→other'] === null) probe('roamer→other', roamer, other);
    if (firstOk['other→roamer'] === null) probe('other→roamer', other, roamer);
    await sleep(100);
  }
  await Promise.all(probes);
  const both = firstOk['roamer→other'] !== null && firstOk['other→roamer'] !== null;
  return { ms: both ? Math.max(firstOk['roamer→other']!, firstOk['other→roamer']!) : null, each: firstOk };
}

/**
 * Three runs on one pair of nodes. Before each run the connection is made fresh by restarting the
 * side that must dial it; for (ii) the roamer first goes back to the address the other node knows
 * (the other node can only dial it there).
 */
async function roamingRuns(label: string, dialerOf: (p: Pair) => MeshNode, options: { checkRemote: boolean }): Promise<void> {
  const times: number[] = [];
  const p = await pair();
  const { m, roamer, other } = p;
  const home = Number(roamer.host.underlay.split('.')[3]);
  try {
    for (let run = 1; run <= RUNS; run++) {
      const dialer = dialerOf(p);
      if (dialer === other && roamer.host.underlay !== `192.0.2.${home}`) {
        const reactions = moves(m, roamer);
        moveTo(p, home);
        // Pings may pass by migration before the roamer's address watch (once a second) sees the
        // move and redials; that redial must be over before the restart below, or it can win.
        const seen = await waitFor(() => moves(m, roamer) > reactions, 15_000, 100);
        expect(seen, `the roamer did not notice it moved back:\n${m.allLogs()}`).not.toBeNull();
        const back = await waitFor(async () => (await pingOnce(roamer.host.ns, overlay(other), 1)) && (await pingOnce(other.host.ns, overlay(roamer), 1)), 15_000, 100);
        expect(back, `the roamer is not reachable back at its first address:\n${m.allLogs()}`).not.toBeNull();
        const calm = await waitFor(() => settled(p, null), 20_000, 100);
        expect(calm, `the pair did not settle after the move back:\n${m.allLogs()}`).not.toBeNull();
      }
      await makeDialer(p, dialer);
      const pids = [roamer.daemon!.pid, other.daemon!.pid];

      const newIndex = 10 + run;
      const { ms, each } = await roam(p, newIndex, 15_000);
      const detail = `${label} run ${run}: roamer→other ${each['roamer→other']?.toFixed(0) ?? 'never'} ms, other→roamer ${each['other→roamer']?.toFixed(0) ?? 'never'} ms`;
      expect(ms, `${detail}\n${m.allLogs()}`).not.toBeNull();
      // Nothing restarted; the other node has the roamer connected.
      expect([roamer.daemon!.pid, other.daemon!.pid]).toEqual(pids);
      expect(m.alive(roamer) && m.alive(other)).toBe(true);
      const row = (await m.peers(other))!.find((r) => r.name === roamer.name)!;
      expect(row.connected).toBe(true);
      // A new connection from the new address; a migrated one is covered by its own test below.
      if (options.checkRemote) expect(row.remote).toBe(`192.0.2.${newIndex}:51820`);
      const [cr, co] = [(await m.status(roamer))!.connections, (await m.status(other))!.connections];
      console.log(`FIGURE roaming-${label}-run${run}-ms=${Math.round(ms!)} (${detail}; connections after: roamer ${cr}, other ${co}; other shows remote ${row.remote}, ${row.direction})`);
      times.push(ms!);
      expect(ms!, `${detail}\n${m.allLogs()}`).toBeLessThanOrEqual(10_000);
    }
  } finally {
    await m.destroy();
  }
  figure(`roaming-${label}-median-ms`, median(times));
  figure(`roaming-${label}-worst-ms`, Math.max(...times));
}

describe.skipIf(skip !== null)(`roaming in network namespaces${skip ? ` (skipped: ${skip})` : ''}`, { concurrent: true }, () => {
  it('(i) the roaming node dialed the connection: reachable both ways again within 10 s of its address change, 3 runs', { timeout: 120_000 }, async () => {
    await roamingRuns('roamer-dialed', (p) => p.roamer, { checkRemote: false });
  });

  it('(ii) the other node dialed the connection: the roaming node redials and is reachable both ways within 10 s, 3 runs', { timeout: 120_000 }, async () => {
    await roamingRuns('other-dialed', (p) => p.other, { checkRemote: true });
  });

  // `remote` in `vpnctl peers` follows the connection, not the address it was made with.
  it('after the roaming node’s connection migrated, the other node’s vpnctl peers shows its new address', { timeout: 60_000 }, async () => {
    const p = await pair();
    try {
      await makeDialer(p, p.roamer);
      const { ms } = await roam(p, 21, 15_000);
      expect(ms).not.toBeNull();
      const row = ((await p.m.vpnctl(p.other, 'peers')) as Array<{ name: string; remote: string }>).find((r) => r.name === p.roamer.name)!;
      expect(row.remote).toBe('192.0.2.21:51820');
    } finally {
      await p.m.destroy();
    }
  });

  // The address watch leaves out the daemon's own TUN interfaces: a new overlay interface (start,
  // reload) is not a move of the host, and must not redial peers.
  it('a daemon whose host did not move does not take its own new interface for a move', { timeout: 60_000 }, async () => {
    const p = await pair();
    try {
      await waitFor(async () => (await p.m.status(p.roamer))?.peers_connected === 1, 15_000);
      await sleep(2500);
      for (const n of [p.roamer, p.other]) expect(p.m.logs(n), n.name).not.toContain('local addresses changed');
    } finally {
      await p.m.destroy();
    }
  });
});
