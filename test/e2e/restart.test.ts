// End to end: restart recovery. Real daemons in network namespaces, killed with SIGKILL (no
// Goodbye: their peers keep a half-open connection) and restarted at once; a restart storm; how
// long peers keep a dead node's routes (liveness) and a stopped one's (Goodbye). Figures are
// printed as `FIGURE name=value` lines for docs/RELIABILITY.md.
import { describe, expect, it } from 'vitest';
import type { StatusResult } from '../../src/control/api.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { Mesh, figure, median, overlay, pingOnce, sleep, waitFor, type MeshNode } from '../helpers/netns-mesh.js';

const skip = netnsUnavailable();

/**
 * Why `nodes` are not yet a converged full mesh, or null when they are: on every node exactly one
 * live connection per other node (`status.connections`), every peer connected, and a route to
 * every other node's overlay /32 owned by that node's fingerprint.
 */
async function notConverged(m: Mesh, nodes: MeshNode[]): Promise<string | null> {
  const views = await Promise.all(nodes.map(async (n) => ({ n, status: await m.status(n), peers: await m.peers(n), routes: await m.routes(n) })));
  for (const { n, status, peers, routes } of views) {
    if (!status || !peers || !routes) return `${n.name}: no answer on the control socket`;
    const others = nodes.filter((o) => o !== n);
    if (status.connections !== others.length) return `${n.name}: connections=${status.connections}`;
    if (status.peers_connected !== others.length) return `${n.name}: peers_connected=${status.peers_connected}`;
    for (const o of others) {
      const row = peers.find((p) => p.name === o.name);
      if (!row?.connected || row.fingerprint !== o.fingerprint) return `${n.name}: peer ${o.name} not connected`;
      if (!routes.some((r) => r.prefix === `${overlay(o)}/32` && r.peer === o.fingerprint)) return `${n.name}: no route to ${o.name}`;
    }
  }
  return null;
}

/** Pings through the overlay, in parallel; the list of those that got no answer. */
async function failedPings(pairs: Array<[MeshNode, MeshNode]>, waitS = 1): Promise<string[]> {
  const results = await Promise.all(pairs.map(async ([from, to]) => ((await pingOnce(from.host.ns, overlay(to), waitS)) ? null : `${from.name}→${to.name}`)));
  return results.filter((r): r is string => r !== null);
}

/**
 * Waits until the mesh is converged and the given pings pass. Resolves with the ms since `since`
 * (performance.now()), or throws after `limitMs` with the last reason and every daemon's log.
 */
async function converge(m: Mesh, nodes: MeshNode[], pings: Array<[MeshNode, MeshNode]>, since: number, limitMs: number): Promise<number> {
  let why: string | null = 'not checked';
  for (;;) {
    for (const n of nodes) if (!m.alive(n)) throw new Error(`${n.name}'s daemon exited (${n.daemon?.exitCode}):\n${m.logs(n)}`);
    why = await notConverged(m, nodes);
    if (why === null) {
      const failed = await failedPings(pings);
      if (failed.length === 0) return performance.now() - since;
      why = `pings failed: ${failed.join(', ')}`;
    }
    if (performance.now() - since > limitMs) {
      throw new Error(`not converged ${Math.round(performance.now() - since)} ms after the restart: ${why}\n${m.allLogs()}`);
    }
    await sleep(20);
  }
}

/** Runs `body` on a converged three-node full mesh (a, b, c) in its own lab, then tears it down. */
async function withThreeNodes(body: (m: Mesh, a: MeshNode, b: MeshNode, c: MeshNode) => Promise<void>): Promise<void> {
  const m = new Mesh();
  try {
    const nodes = (await m.addNodes(3)) as [MeshNode, MeshNode, MeshNode];
    m.configureFullMesh();
    await Promise.all(nodes.map((n) => m.start(n)));
    const [a, b, c] = nodes;
    await converge(m, nodes, [[a, b], [b, a], [a, c], [c, b]], performance.now(), 15_000);
    await body(m, a, b, c);
  } finally {
    await m.destroy();
  }
}

describe.skipIf(skip !== null)(`restart recovery in network namespaces${skip ? ` (skipped: ${skip})` : ''}`, () => {
  // The liveness test mostly waits (30 s), so it runs beside the 20 restarts; the storm runs alone.
  it('peers drop a stopped node’s routes within 1 s (SIGTERM, Goodbye) and a killed one’s at the liveness timeout (SIGKILL, 30 s)', { concurrent: true, timeout: 120_000 }, async () => {
    await withThreeNodes(async (m, a, b, c) => {
      const hasRouteTo = async (n: MeshNode, to: MeshNode): Promise<boolean> =>
        ((await m.routes(n)) ?? []).some((r) => r.prefix === `${overlay(to)}/32` && r.peer === to.fingerprint);

      // SIGTERM: Goodbye, the peers drop the routes at once.
      const termed = performance.now();
      const exit = m.stop(c, 'SIGTERM');
      const [termA, termB] = await Promise.all([waitFor(async () => !(await hasRouteTo(a, c)), 5000, 10), waitFor(async () => !(await hasRouteTo(b, c)), 5000, 10)]);
      expect(await exit).toBe(0);
      const termMs = Math.max(termA ?? Infinity, termB ?? Infinity);
      figure('sigterm-route-drop-ms', termMs);
      expect(termMs, `routes to c still there on a or b ${Math.round(performance.now() - termed)} ms after SIGTERM`).toBeLessThanOrEqual(1000);
      expect((await m.peers(a))!.find((p) => p.name === c.name)?.connected).toBe(false);

      // Back to three, then SIGKILL b just after a heard b's keepalive, so that a's silence timer
      // starts at the kill: a must drop b's routes 30 s (+ one tick) later, not sooner.
      await m.start(c);
      await converge(m, [a, b, c], [[a, c], [c, a], [b, c]], performance.now(), 10_000);
      const lastSeen = async (n: MeshNode): Promise<number> => Date.parse((await m.peers(n))!.find((p) => p.name === b.name)!.last_seen!);
      const before = await lastSeen(a);
      const fresh = await waitFor(async () => (await lastSeen(a)) !== before, 15_000, 10);
      expect(fresh, 'a heard no keepalive from b within 15 s').not.toBeNull();
      const killedAt = Date.now();
      await m.stop(b, 'SIGKILL');
      const [seenA, seenC] = [await lastSeen(a), await lastSeen(c)];
      const [dropA, dropC] = await Promise.all([
        waitFor(async () => !(await hasRouteTo(a, b)), 40_000, 50),
        waitFor(async () => !(await hasRouteTo(c, b)), 40_000, 50),
      ]);
      expect(dropA, `a kept b's routes for 40 s:\n${m.logs(a)}`).not.toBeNull();
      expect(dropC, `c kept b's routes for 40 s:\n${m.logs(c)}`).not.toBeNull();
      const fromKillA = dropA!;
      const fromKillC = dropC!;
      // Silence as the daemons measure it: from the last control message they received from b.
      const silenceA = killedAt + fromKillA - seenA;
      const silenceC = killedAt + fromKillC - seenC;
      figure('sigkill-route-drop-after-kill-ms', fromKillA);
      figure('sigkill-route-drop-after-last-message-ms', Math.max(silenceA, silenceC));
      console.log(`FIGURE sigkill-route-drop-detail=a:${Math.round(fromKillA)}ms-after-kill/${Math.round(silenceA)}ms-silent,c:${Math.round(fromKillC)}ms-after-kill/${Math.round(silenceC)}ms-silent`);
      expect(fromKillA).toBeGreaterThan(25_000);
      expect(fromKillA).toBeLessThanOrEqual(32_000);
      expect(fromKillC).toBeLessThanOrEqual(32_000);
      for (const silence of [silenceA, silenceC]) {
        expect(silence).toBeGreaterThan(29_500);
        expect(silence).toBeLessThanOrEqual(32_000);
      }
      expect((await m.peers(a))!.find((p) => p.name === b.name)?.connected).toBe(false);
      expect(await m.vpnctl(a, 'status')).toMatchObject({ connections: 1, peers_connected: 1 });
      // a and c are unaffected.
      expect(await failedPings([[a, c], [c, a]])).toEqual([]);
    });
  });

  it('a node killed with SIGKILL and restarted at once is back both ways within 3 s, 20 times in a row', { concurrent: true, timeout: 150_000 }, async () => {
    await withThreeNodes(async (m, a, b, c) => {
      const times: number[] = [];
      for (let round = 1; round <= 20; round++) {
        const pid = b.daemon!.pid;
        const killed = performance.now();
        await m.stop(b, 'SIGKILL');
        await m.start(b);
        expect(b.daemon!.pid).not.toBe(pid);
        // a↔b both ways through the overlay, and b↔c still whole (c→b).
        const ms = await converge(m, [a, b, c], [[a, b], [b, a], [c, b], [b, c]], killed, 10_000);
        times.push(ms);
      }
      // The real CLI agrees with what the socket said.
      for (const n of [a, b, c]) {
        const status = (await m.vpnctl(n, 'status')) as StatusResult;
        expect(status).toMatchObject({ connections: 2, peers_connected: 2 });
      }
      figure('restart-rounds', times.length);
      figure('restart-median-ms', median(times));
      figure('restart-worst-ms', Math.max(...times));
      console.log(`FIGURE restart-all-ms=${times.map((t) => Math.round(t)).join(',')}`);
      for (const [i, t] of times.entries()) expect(t, `restart ${i + 1} took ${Math.round(t)} ms`).toBeLessThanOrEqual(3000);
    });
  });

  it('a restart storm (two of three nodes killed and restarted together) converges within 5 s with one connection per pair, 10 rounds', { timeout: 120_000 }, async () => {
    await withThreeNodes(async (m, a, b, c) => {
      const all: Array<[MeshNode, MeshNode]> = [[a, b], [b, a], [a, c], [c, a], [b, c], [c, b]];
      const times: number[] = [];
      const settledTimes: number[] = [];
      for (let round = 1; round <= 10; round++) {
        const killed = performance.now();
        await Promise.all([m.stop(b, 'SIGKILL'), m.stop(c, 'SIGKILL')]);
        await Promise.all([m.start(b), m.start(c)]);
        times.push(await converge(m, [a, b, c], all, killed, 12_000));
        // And it stays so. About 1 s after start each restarted daemon redials the peers whose
        // connection it accepted (the address-watch bug, see roaming.test.ts), which makes a
        // duplicate until the tie-break closes it. So the mesh is checked again once the restarted
        // daemons are 2 s old: it must be back to one connection per pair within the same 5 s.
        await sleep(Math.max(0, 2000 - (performance.now() - killed)));
        let why: string | null = null;
        const settled = await waitFor(async () => (why = await notConverged(m, [a, b, c])) === null, Math.max(0, 5000 - (performance.now() - killed)), 20);
        expect(settled, `storm round ${round}: not back to one connection per pair 5 s after the restart: ${why}\n${m.allLogs(80)}`).not.toBeNull();
        settledTimes.push(performance.now() - killed);
      }
      for (const n of [a, b, c]) expect(await m.vpnctl(n, 'status')).toMatchObject({ connections: 2, peers_connected: 2 });
      console.log(`FIGURE storm-rounds-ms=${times.map((t) => Math.round(t)).join(',')}`);
      console.log(`FIGURE storm-steady-by-ms=${settledTimes.map((t) => Math.round(t)).join(',')}`);
      figure('storm-median-ms', median(times));
      figure('storm-worst-ms', Math.max(...times));
      for (const [i, t] of times.entries()) expect(t, `storm round ${i + 1} took ${Math.round(t)} ms`).toBeLessThanOrEqual(5000);
    });
  });
});
