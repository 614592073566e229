// End to end: NAT traversal with relays. A behind NAT router RA, B behind RB, hub H on the
// public segment (netns-nat.ts draws the lab). H runs with `[daemon] relay = true` and lists A and
// B without addresses; A and B list H at 192.0.2.1:51820 and each other without addresses, so
// they can only meet through what H tells them:
//   (a) both NATs port-preserving: A↔B go direct (each other's NAT public address), carry 20 MB
//       each way intact, and stay up when H is killed;
//   (b) RB symmetric: A↔B go through H (path "relay", via h), 20 MB intact, H counts what it
//       forwards; the direct path is retried but never forced while it cannot work;
//   (c) direct, then the direct path is blocked on RA: relay within 10 s; unblocked: direct again;
//   (d) H without relay (the default) and RB symmetric: no path, and A's last_error says why;
//   (e) H refuses to forward for a node it has no session with (B killed and removed from H's
//       config while A still sends to it through H) and keeps running.
// The first test checks the lab itself with plain UDP. Daemon tests run one after another: their
// figures (setup times, relayed throughput) would measure each other otherwise.
// Figures are printed as `FIGURE name=value`.
import { describe, expect, it } from 'vitest';
import { Lab, ip } from '../helpers/netns.js';
import { figure, overlay, pingOnce, sleep, waitFor, type MeshNode } from '../helpers/netns-mesh.js';
import { startPingLoop, timedTcpTransfer, type PingReply } from '../helpers/netns-faults.js';
import { ping } from '../helpers/traffic.js';
import { NatMesh, buildNatLab, cutDirect, holePunch, natCounters, natLabUnavailable, natUnavailable, restoreDirect, type NatPeerRow } from '../helpers/netns-nat.js';

const skipLab = natLabUnavailable();
const skip = natUnavailable();
const MiB = 1024 * 1024;
/** Log lines of a direct-path attempt (hole punch) on A; only counted for a figure. Adjust to the daemon's wording. */
const DIRECT_ATTEMPT_LOG = /dialing .*introduced by|hole.?punch|direct attempt/i;

describe.skipIf(skipLab !== null)(`the NAT lab${skipLab ? ` (skipped: ${skipLab})` : ''}`, () => {
  it('the lab: plain masquerade lets a UDP hole punch through, a symmetric NAT does not', { timeout: 60_000 }, async () => {
    const plainLab = new Lab();
    try {
      const nat = buildNatLab(plainLab);
      const { a, b } = await holePunch(nat);
      console.log(`plain/plain: a ${JSON.stringify(a)}\n             b ${JSON.stringify(b)}`);
      // One mapping per source, the port kept: H sees A at RA:51820 and B at RB:51820 from both its ports.
      expect(a.mapped).toEqual(['192.0.2.10:51820', '192.0.2.10:51820']);
      expect(b.mapped).toEqual(['192.0.2.11:51820', '192.0.2.11:51820']);
      expect(a.received, 'B punched but nothing reached A').toBeGreaterThan(0);
      expect(b.received, 'A punched but nothing reached B').toBeGreaterThan(0);
      expect(a.from).toBe('192.0.2.11:51820');
      expect(b.from).toBe('192.0.2.10:51820');
      // Nothing unsolicited gets in, even for a host on the outside that routes A's LAN via RA.
      ip('-n', nat.hub.ns, 'route', 'add', '10.77.1.0/24', 'via', nat.ra.public);
      expect(ping(nat.hub.ns, nat.a.underlay, 1), 'RA forwarded an unsolicited ping from H to A').toBe(0);
      expect(natCounters(nat.ra)['unsolicited-fwd']).toBeGreaterThan(0);
    } finally {
      await plainLab.destroy();
    }
    const symmetricLab = new Lab();
    try {
      const nat = buildNatLab(symmetricLab, { rb: 'symmetric' });
      const { a, b } = await holePunch(nat);
      const [ra, rb] = [natCounters(nat.ra), natCounters(nat.rb)];
      console.log(`plain/symmetric: a ${JSON.stringify(a)}\n                 b ${JSON.stringify(b)}\n  RA ${JSON.stringify(ra)}\n  RB ${JSON.stringify(rb)}`);
      expect(a.mapped).toEqual(['192.0.2.10:51820', '192.0.2.10:51820']);
      // A new public port per destination: what H saw of B is no use to A.
      expect(b.mapped[0]).toMatch(/^192\.0\.2\.11:\d+$/);
      expect(b.mapped[1]).toMatch(/^192\.0\.2\.11:\d+$/);
      expect(b.mapped[0]).not.toBe(b.mapped[1]);
      expect(a.received).toBe(0);
      expect(b.received).toBe(0);
      // Both routers dropped the other side's punches as unsolicited (not lost somewhere else).
      expect(ra['unsolicited-in']).toBeGreaterThan(0);
      expect(rb['unsolicited-in']).toBeGreaterThan(0);
    } finally {
      await symmetricLab.destroy();
    }
  });
});

/** Starts h, then a and b together; resolves with the time a and b were started. */
async function startAll(m: NatMesh): Promise<number> {
  await m.start(m.h);
  const t0 = performance.now();
  await Promise.all([m.start(m.a), m.start(m.b)]);
  return t0;
}

/** Waits for a↔b over `path` (both ways) or fails with what each side sees and the logs. */
async function expectPath(m: NatMesh, path: 'direct' | 'relay', timeoutMs: number): Promise<number> {
  const ms = await m.waitPath(path, timeoutMs, path === 'relay' ? m.h : undefined);
  if (ms === null) expect.fail(`a↔b not ${path} within ${timeoutMs} ms:\n${await m.describePaths()}\n${m.allLogs()}`);
  return ms;
}

async function expectPings(m: NatMesh, from: MeshNode, to: MeshNode, label = ''): Promise<void> {
  const got = ping(from.host.ns, overlay(to), 3);
  if (got === 0) expect.fail(`no ping ${from.name}→${to.name} through the overlay ${label}:\n${await m.describePaths()}\n${m.allLogs(100)}`);
}

/** 20 MB from `from` to `to` through the overlay, intact (SHA-256 both ends); resolves with Mbit/s. */
async function transfer20MB(m: NatMesh, from: MeshNode, to: MeshNode): Promise<number> {
  const bytes = 20 * MiB;
  const t = await timedTcpTransfer(from.host.ns, to.host.ns, overlay(to), bytes, { timeoutMs: 90_000 });
  expect(t.timedOut, `${from.name}→${to.name}: only ${t.receivedBytes} of ${bytes} bytes in 90 s:\n${await m.describePaths()}\n${m.allLogs(100)}`).toBe(false);
  expect(t.sent).toMatch(/^20971520 [0-9a-f]{64}$/);
  expect(t.received).toBe(t.sent);
  return (bytes * 8) / (t.ms / 1000) / 1e6;
}

/** The longest silence in a ping loop between `from` and `to` (wall-clock ms, as ping -D stamps). */
function longestGap(replies: PingReply[], from: number, to: number): number {
  const times = [from, ...replies.map((r) => r.at).filter((t) => t > from && t < to), to].sort((x, y) => x - y);
  return Math.max(...times.slice(1).map((t, i) => t - times[i]!));
}

/** Samples a↔b every 500 ms for `ms` and returns every sample that is not relay via h, both ways. */
async function offRelay(m: NatMesh, ms: number): Promise<string[]> {
  const off: string[] = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    for (const [n, o] of [[m.a, m.b], [m.b, m.a]] as const) {
      const r = await m.row(n, o);
      if (!r?.connected || r.path !== 'relay' || r.via !== m.h.name) off.push(`${n.name}→${o.name} connected=${r?.connected} path=${r?.path} via=${r?.via}`);
    }
    await sleep(500);
  }
  return off;
}

describe.skipIf(skip !== null)(`NAT traversal with relays${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('both NATs port-preserving: a↔b go direct, carry 20 MB each way intact, and stay direct when h is killed', { timeout: 240_000 }, async () => {
    const m = await NatMesh.create();
    try {
      const { h, a, b } = m;
      m.configureNat({ relay: true });
      const t0 = await startAll(m);
      await expectPath(m, 'direct', 30_000);
      figure('nat-time-to-direct-ms', performance.now() - t0);
      // Each reaches the other at its NAT's public address.
      expect((await m.row(a, b))!.remote).toMatch(/^192\.0\.2\.11:\d+$/);
      expect((await m.row(b, a))!.remote).toMatch(/^192\.0\.2\.10:\d+$/);
      const cli = (await m.vpnctl(a, 'peers')) as NatPeerRow[];
      expect(cli.find((r) => r.name === b.name)).toMatchObject({ connected: true, path: 'direct', via: null });
      expect(cli.find((r) => r.name === h.name)).toMatchObject({ connected: true, path: 'direct' });
      await expectPings(m, a, b);
      await expectPings(m, b, a);
      const before = m.relayMetrics();
      figure('nat-direct-a-to-b-Mbit-s', await transfer20MB(m, a, b));
      figure('nat-direct-b-to-a-Mbit-s', await transfer20MB(m, b, a));
      // The 40 MB did not go through h.
      expect(m.relayMetrics().forwardedBytes - before.forwardedBytes).toBeLessThan(MiB);
      expect(await m.hasPath(a, b, 'direct')).toBe(true);

      // h gone for good: past the 30 s liveness limit, a and b have given h up and still talk directly.
      const loop = startPingLoop(a.host.ns, overlay(b), 0.2);
      m.atDestroy(() => loop.stop());
      const killedAt = Date.now();
      await m.stop(h, 'SIGKILL');
      await sleep(40_000);
      const replies = await loop.stop();
      expect((await m.row(a, h))?.connected, 'a still has h connected 40 s after h was killed').toBe(false);
      const gap = longestGap(replies, killedAt, Date.now());
      figure('nat-direct-gap-after-hub-killed-ms', gap);
      expect(gap, `a→b pings stopped for ${Math.round(gap)} ms after h was killed:\n${await m.describePaths()}\n${m.allLogs(100)}`).toBeLessThan(3000);
      expect(await m.hasPath(a, b, 'direct'), await m.describePaths()).toBe(true);
      expect(await m.hasPath(b, a, 'direct'), await m.describePaths()).toBe(true);
      await expectPings(m, a, b, 'after h was killed');
      await expectPings(m, b, a, 'after h was killed');
    } finally {
      await m.destroy();
    }
  });

  it('RB symmetric: a↔b go through the relay h, carry 20 MB intact, and keep the relay while direct attempts fail', { timeout: 240_000 }, async () => {
    const m = await NatMesh.create({ rb: 'symmetric' });
    try {
      const { h, a, b } = m;
      m.configureNat({ relay: true });
      const t0 = await startAll(m);
      await expectPath(m, 'relay', 45_000);
      figure('nat-time-to-relay-ms', performance.now() - t0);
      expect(await m.row(a, b)).toMatchObject({ connected: true, path: 'relay', via: h.name });
      // vpnctl ping says which path each round trip took.
      const pongs = (await m.vpnctl(a, 'ping', b.name)) as Array<{ rtt_ms: number | null; path: string; endpoint: string }>;
      expect(pongs.map((p) => [p.path, p.endpoint])).toEqual([['relay', `via ${h.name}`], ['relay', `via ${h.name}`], ['relay', `via ${h.name}`]]);
      expect(pongs.every((p) => p.rtt_ms !== null)).toBe(true);
      await expectPings(m, a, b);
      await expectPings(m, b, a);
      const before = m.relayMetrics();
      figure('nat-relayed-Mbit-s', await transfer20MB(m, a, b));
      const after = m.relayMetrics();
      console.log(`relay metrics on h: before ${JSON.stringify(before)}\n                    after  ${JSON.stringify(after)}`);
      expect(after.forwardedPackets).toBeGreaterThan(before.forwardedPackets + 100);
      expect(after.forwardedBytes - before.forwardedBytes).toBeGreaterThanOrEqual(20 * MiB);

      // Retried, not forced: for 20 s the path stays relay via h both ways and pings keep passing.
      const attemptsBefore = m.countLog(a, DIRECT_ATTEMPT_LOG);
      const loop = startPingLoop(a.host.ns, overlay(b), 0.2);
      m.atDestroy(() => loop.stop());
      const from = Date.now();
      const off = await offRelay(m, 20_000);
      const replies = await loop.stop();
      expect(off, `a↔b left the relay while the direct path cannot work:\n${m.allLogs(100)}`).toEqual([]);
      const gap = longestGap(replies, from, Date.now());
      figure('nat-relayed-longest-ping-gap-20s-ms', gap);
      expect(gap, m.allLogs(100)).toBeLessThan(3000);
      figure('nat-direct-attempts-in-20s', m.countLog(a, DIRECT_ATTEMPT_LOG) - attemptsBefore);
    } finally {
      await m.destroy();
    }
  });

  it('direct path blocked on RA: a↔b fall back to the relay within 10 s, and go direct again within 30 s once unblocked', { timeout: 240_000 }, async () => {
    const m = await NatMesh.create();
    try {
      const { h, a, b, nat } = m;
      m.configureNat({ relay: true });
      await startAll(m);
      await expectPath(m, 'direct', 30_000);
      await sleep(2000);
      const loop = startPingLoop(a.host.ns, overlay(b), 0.1);
      m.atDestroy(() => loop.stop());
      await sleep(1000);

      const cutAt = Date.now();
      cutDirect(nat.ra, nat.rb.public);
      const fallback = await m.waitPath('relay', 20_000, h);
      expect(fallback, `a↔b not on the relay 20 s after the direct path was blocked:\n${await m.describePaths()}\n${m.allLogs()}`).not.toBeNull();
      figure('nat-fallback-ms', fallback!);
      expect(fallback!).toBeLessThanOrEqual(10_000);
      expect(natCounters(nat.ra)['cut-out'], 'nothing hit the cut: the direct path was not in use').toBeGreaterThan(0);
      const relayedBefore = m.relayMetrics().forwardedPackets;
      await expectPings(m, a, b, 'on the relay');
      await expectPings(m, b, a, 'on the relay');
      expect(m.relayMetrics().forwardedPackets).toBeGreaterThan(relayedBefore);
      await sleep(3000);

      const restoredAt = Date.now();
      restoreDirect(nat.ra);
      const back = await m.waitPath('direct', 45_000);
      expect(back, `a↔b not direct again 45 s after the direct path was unblocked:\n${await m.describePaths()}\n${m.allLogs()}`).not.toBeNull();
      figure('nat-return-to-direct-ms', back!);
      expect(back!).toBeLessThanOrEqual(30_000);
      await sleep(2000);
      const replies = await loop.stop();
      figure('nat-fallback-ping-gap-ms', longestGap(replies, cutAt, restoredAt));
      figure('nat-return-ping-gap-ms', longestGap(replies, restoredAt, Date.now()));
      expect((await m.row(a, b))!.remote).toMatch(/^192\.0\.2\.11:\d+$/);
      await expectPings(m, a, b, 'direct again');
      await expectPings(m, b, a, 'direct again');
    } finally {
      await m.destroy();
    }
  });

  it('h without relay (the default) and RB symmetric: a↔b have no path, and last_error says it is the relay', { timeout: 120_000 }, async () => {
    const m = await NatMesh.create({ rb: 'symmetric' });
    try {
      const { h, a, b } = m;
      m.configureNat();
      await startAll(m);
      const hubUp = await waitFor(async () => !!(await m.row(a, h))?.connected && !!(await m.row(b, h))?.connected, 20_000);
      expect(hubUp, `a and b did not both connect to h:\n${m.allLogs()}`).not.toBeNull();
      const noPath = async (n: MeshNode, o: MeshNode): Promise<boolean> => {
        const r = await m.row(n, o);
        return !!r && !r.connected && typeof r.last_error === 'string' && /relay/i.test(r.last_error);
      };
      const said = await waitFor(async () => (await noPath(a, b)) && (await noPath(b, a)), 45_000, 250);
      expect(said, `a and b do not say the relay is why they have no path:\n${await m.describePaths()}\n${m.allLogs()}`).not.toBeNull();
      await sleep(5000);
      const row = (await m.row(a, b))!;
      console.log(`a's row for b: ${JSON.stringify(row)}\nrelay metrics on h: ${JSON.stringify(m.relayMetrics())}`);
      expect(row.connected).toBe(false);
      expect(row.path ?? null).toBeNull();
      expect(row.last_error).toMatch(/relay/i);
      expect(await pingOnce(a.host.ns, overlay(b), 2)).toBe(false);
      expect(await pingOnce(b.host.ns, overlay(a), 2)).toBe(false);
    } finally {
      await m.destroy();
    }
  });

  it('h does not forward for a node it has no session with: b killed and removed from h while a still sends to it; h counts no_session and stays up', { timeout: 120_000 }, async () => {
    const m = await NatMesh.create({ rb: 'symmetric' });
    try {
      const { h, a, b } = m;
      m.configureNat({ relay: true });
      await startAll(m);
      await expectPath(m, 'relay', 45_000);
      await expectPings(m, a, b);
      // (a no_session drop may already have happened while b's session with h was coming up)
      const baseline = m.relayMetrics().dropped.no_session;

      // a keeps sending to b through h (its own liveness gives b up only after 30 s of silence);
      // h, which would otherwise hold b's dead session for as long, forgets b at once.
      const loop = startPingLoop(a.host.ns, overlay(b), 0.1);
      m.atDestroy(() => loop.stop());
      await sleep(500);
      await m.stop(b, 'SIGKILL');
      m.configureNode(h, [m.peer(a, ['corp'], { address: '' })], { relay: true });
      const summary = await m.control<string>(h, 'reload', 5000);
      const dropped = await waitFor(() => m.relayMetrics().dropped.no_session > baseline, 25_000, 250);
      await loop.stop();
      const metrics = m.relayMetrics();
      console.log(`reload on h: ${JSON.stringify(summary)}\nrelay metrics on h: ${JSON.stringify(metrics)}`);
      expect(dropped, `h never counted a no_session drop for a's packets to b:\n${m.allLogs()}`).not.toBeNull();
      figure('nat-no-session-first-drop-ms', dropped!);
      figure('nat-no-session-drops', metrics.dropped.no_session - baseline);

      // h is healthy: running, answering, still a's peer, reachable through the overlay.
      expect(m.alive(h)).toBe(true);
      expect((await m.status(h))?.peers_connected).toBe(1);
      expect((await m.row(a, h))?.connected).toBe(true);
      await expectPings(m, a, h, 'after the relay refused b');
    } finally {
      await m.destroy();
    }
  });
});
