// The arithmetic of scripts/bench.sh's cost-as-work-grows parts (PARTS flows fanin mesh lookup; nat
// through report-nat.mjs):
// reads their raw files, gives report.mjs their sections of the JSON and prints their tables.
//   node report-scale.mjs --line flows|fanin|mesh DIR RAW_DIR   one measurement, as the run goes
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  cell, cpuSeconds, fmt, hostIdleShare, mean, readFacts, readIperf, readText, stats, table, tsv,
} from './report-lib.mjs';
import { natLine, natSection } from './report-nat.mjs';

const MB = 1024; // facts hold kB
const maxOf = (xs) => (xs.length && xs.every((x) => x != null) ? Math.max(...xs) : null);
const meanOf = (xs) => (xs.length && xs.every((x) => x != null) ? mean(xs) : null);
const errorOf = (dir) => readText(path.join(dir, 'error')).trim() || null;

/** Parallel flows: iperf<P>.json, CPU readings in facts (P = 1) or flows<P>.facts. */
function readFlows(dir, clkTck, counts) {
  const daemons = Object.keys(readFacts(path.join(dir, 'facts')).daemons);
  const figures = {};
  const raw = {};
  for (const p of counts) {
    const iperf = readIperf(path.join(dir, `iperf${p}.json`));
    const facts = readFacts(path.join(dir, p === 1 ? 'facts' : `flows${p}.facts`));
    const cpu = daemons.map((side) => (facts.daemons[side] ? cpuSeconds(facts.daemons[side], clkTck) : null));
    figures[`mbit_${p}`] = iperf ? iperf.bits_per_second_received / 1e6 : null;
    figures[`cpu_s_per_gb_${p}`] = iperf && cpu.length && cpu.every((c) => c != null)
      ? cpu.reduce((a, b) => a + b, 0) / (iperf.bytes_received / 1e9) : null;
    figures[`host_idle_share_${p}`] = hostIdleShare(facts);
    raw[`streams_${p}`] = { iperf, daemon_cpu_s: Object.fromEntries(daemons.map((s, i) => [s, cpu[i]])) };
  }
  return { ok: !errorOf(dir), error: errorOf(dir), figures, raw };
}

/** Fan-in: fanin-n<i>.json per sender (n2 ..), facts with every daemon, n1 the receiver. */
function readFanin(dir, clkTck, senders) {
  const facts = readFacts(path.join(dir, 'facts'));
  const iperfs = [...Array(senders).keys()].map((i) => readIperf(path.join(dir, `fanin-n${i + 2}.json`)));
  const ok = iperfs.every(Boolean);
  const mbits = ok ? iperfs.map((x) => x.bits_per_second_received / 1e6) : [];
  const gb = ok ? iperfs.reduce((a, x) => a + x.bytes_received, 0) / 1e9 : null;
  const receiver = facts.daemons.n1;
  const senderCpu = Object.entries(facts.daemons).filter(([s]) => s !== 'n1').map(([, d]) => cpuSeconds(d, clkTck));
  const receiverCpu = receiver ? cpuSeconds(receiver, clkTck) : null;
  const figures = {
    senders, total_mbit: ok ? mbits.reduce((a, b) => a + b, 0) : null,
    slowest_sender_mbit: ok ? Math.min(...mbits) : null, fastest_sender_mbit: ok ? Math.max(...mbits) : null,
    receiver_cpu_s_per_gb: gb && receiverCpu != null ? receiverCpu / gb : null,
    senders_cpu_s_per_gb: gb && senderCpu.length && senderCpu.every((c) => c != null)
      ? senderCpu.reduce((a, b) => a + b, 0) / gb : null,
    receiver_idle_rss_mb: receiver?.rss_kb != null ? receiver.rss_kb / MB : null,
    receiver_peak_rss_mb: receiver?.hwm_kb != null ? receiver.hwm_kb / MB : null,
    host_idle_share: hostIdleShare(facts),
  };
  return { ok: !errorOf(dir), error: errorOf(dir), dst: facts.dst ?? null, overlay_mtu: facts.mtu ?? null, figures,
    raw: { iperf_per_sender: iperfs, daemons: facts.daemons } };
}

/** Mesh: facts with nodes n1 .. nN, formed.json from mesh-wait.mjs. */
function readMesh(dir, clkTck) {
  const facts = readFacts(path.join(dir, 'facts'));
  let formed = null;
  try { formed = JSON.parse(readText(path.join(dir, 'formed.json'))); } catch { /* did not form */ }
  const ds = Object.values(facts.daemons);
  const idleS = facts.time_after && facts.time_before ? facts.time_after - facts.time_before : null;
  const perMin = ds.map((d) => (idleS ? cpuSeconds(d, clkTck) / (idleS / 60) : null));
  const rss = (key) => ds.map((d) => (d[key] != null ? d[key] / MB : null));
  const figures = {
    nodes: facts.nodes ?? null, formed_s: formed?.formed_s ?? null,
    rss_mean_mb: meanOf(rss('rss_end_kb')), rss_max_mb: maxOf(rss('rss_end_kb')),
    rss_formed_mean_mb: meanOf(rss('rss_kb')), peak_rss_max_mb: maxOf(rss('hwm_kb')),
    cpu_s_per_node_min_mean: meanOf(perMin), cpu_s_per_node_min_max: maxOf(perMin),
    cpu_s_per_min_all_nodes: perMin.length && perMin.every((c) => c != null) ? perMin.reduce((a, b) => a + b, 0) : null,
    idle_window_s: idleS, host_idle_share: hostIdleShare(facts),
  };
  figures.host_idle_pct = figures.host_idle_share == null ? null : 100 * figures.host_idle_share;
  return { ok: !errorOf(dir), error: errorOf(dir), figures, raw: { formed, daemons: facts.daemons } };
}

/** The lookup script's JSON, any of {results: [...]}, [...]; rows {family, routes, lookups_per_s}. */
function readLookup(rawDir) {
  const failed = readText(path.join(rawDir, 'route-lookup.error')).trim();
  if (failed) return { status: 'failed', error: failed };
  const absent = readText(path.join(rawDir, 'route-lookup.absent')).trim();
  if (absent) return { status: 'not measured', note: `${path.relative(path.join(path.dirname(absent), '..'), absent)} does not exist yet` };
  const text = readText(path.join(rawDir, 'route-lookup.json'));
  if (!text) return { status: 'not run' };
  let j;
  try { j = JSON.parse(text); } catch { return { status: 'failed', error: 'route lookups: the output is not JSON' }; }
  const rows = (Array.isArray(j) ? j : j.results ?? []).map((r) => ({
    family: Number(String(r.family ?? '').replace(/\D/g, '')) || null, routes: Number(r.routes),
    lookups_per_s: Number(r.lookups_per_s ?? r.ops_per_s ?? r.hz),
  })).filter((r) => r.routes > 0 && r.lookups_per_s > 0);
  if (!rows.length) return { status: 'failed', error: 'route lookups: no {family, routes, lookups_per_s} rows', raw: j };
  return { status: 'measured', results: rows, raw: j };
}

const FLOW_HEAD = (p) => [`${p} flow${p > 1 ? 's' : ''} Mbit/s`, 'CPU s/GB'];
const FANIN_METRICS = [ // key, heading, digits
  ['total_mbit', 'total Mbit/s', 0], ['slowest_sender_mbit', 'slowest sender', 0], ['fastest_sender_mbit', 'fastest', 0],
  ['receiver_cpu_s_per_gb', 'receiver CPU s/GB', 1], ['senders_cpu_s_per_gb', 'senders CPU s/GB', 1],
  ['receiver_idle_rss_mb', 'receiver idle RSS MB', 1], ['receiver_peak_rss_mb', 'peak RSS MB', 1],
];
const MESH_METRICS = [
  ['formed_s', 'formed in s', 2], ['rss_mean_mb', 'RSS mean MB', 1], ['rss_max_mb', 'RSS max MB', 1],
  ['peak_rss_max_mb', 'peak RSS max MB', 1], ['cpu_s_per_node_min_mean', 'CPU s/node/min mean', 3],
  ['cpu_s_per_node_min_max', 'max', 3], ['cpu_s_per_min_all_nodes', 'all nodes CPU s/min', 2],
  ['host_idle_pct', 'host idle %', 0], // how much other work shared the machine meanwhile
];

/** Summaries over rounds per system, and vibepn / anchor per round, then over rounds. */
function summarise(runs, systems, roundList, keys) {
  const figure = (id, r, k) => runs.find((x) => x.system === id && x.round === r)?.figures[k] ?? null;
  const summary = Object.fromEntries(systems.map((s) => [s.id, Object.fromEntries(keys.map((k) =>
    [k, stats(roundList.map((r) => figure(s.id, r, k)))]))]));
  const ratios = {};
  if (systems.some((s) => s.id === 'vibepn')) {
    for (const s of systems.filter((x) => x.id !== 'vibepn' && x.id !== 'veth')) {
      ratios[s.id] = Object.fromEntries(keys.map((k) => [k, stats(roundList.map((r) => {
        const v = figure('vibepn', r, k);
        const a = figure(s.id, r, k);
        return v != null && a ? v / a : null;
      }))]));
    }
  }
  return { summary, ratios };
}

export function scaleReport(rawDir, run, systems, roundList) {
  const clkTck = Number(run.clk_tck);
  const parts = (run.parts ?? '').split(' ');
  const counts = (run.flows ?? '1 4 16').split(' ').map(Number);
  const senders = Number(run.fanin);
  const perSystem = (prefix, read) => roundList.flatMap((r) => systems
    .map((s) => [r, s.id, path.join(rawDir, `r${r}`, `${prefix}${s.id}`)]).filter(([, , dir]) => fs.existsSync(dir))
    .map(([r, id, dir]) => ({ round: r, system: id, ...read(dir) })));
  const json = {};
  const failures = [];
  const prints = [];
  const label = (id) => systems.find((s) => s.id === id).label;
  const cellFor = (summary, id, k, d, runs) => (!summary[id][k] && runs.some((x) => x.system === id && !x.ok)
    ? 'failed' : cell(summary[id][k], d));

  if (parts.includes('flows')) {
    const runs = perSystem('', (dir) => readFlows(dir, clkTck, counts));
    const keys = counts.flatMap((p) => [`mbit_${p}`, `cpu_s_per_gb_${p}`]);
    const measured = systems.filter((s) => runs.some((x) => x.system === s.id));
    const { summary, ratios } = summarise(runs, measured, roundList, keys);
    json.flows = { streams: counts, direction: 'iperf3 -P N, client in A, server in B', units: {
      mbit_N: 'Mbit/s received with N parallel streams',
      cpu_s_per_gb_N: 'CPU seconds of both daemons during that transfer per 1e9 bytes received' }, summary, ratios, runs };
    // The same measurement as the pair's when both run: report.mjs names its failures then.
    if (!parts.includes('pair')) failures.push(...runs.filter((x) => !x.ok).map((x) => `flows, round ${x.round}: ${x.error}`));
    const heads = counts.flatMap(FLOW_HEAD);
    prints.push(() => {
      console.log(`\nParallel flows: iperf3 -P 1, 4, 16 A->B; CPU s/GB of both daemons during each transfer\n`);
      console.log(table(['system', ...heads], measured.map((s) => [s.label, ...keys.map((k, i) =>
        cellFor(summary, s.id, k, i % 2 ? 1 : 0, runs))])));
      if (Object.keys(ratios).length) {
        console.log('\nvibepn / anchor, parallel flows (Mbit/s: above 1 is better for vibepn; CPU s/GB: below 1 is)\n');
        console.log(table(['vibepn vs', ...heads], Object.keys(ratios).map((id) => [label(id), ...keys.map((k) => cell(ratios[id][k], 2))])));
      }
    });
  }
  if (parts.includes('fanin')) {
    const runs = perSystem('fanin-', (dir) => readFanin(dir, clkTck, senders));
    const measured = systems.filter((s) => runs.some((x) => x.system === s.id));
    const { summary, ratios } = summarise(runs, measured, roundList, FANIN_METRICS.map(([k]) => k));
    json.fanin = { senders, streams_per_sender: 1, units: {
      total_mbit: 'Mbit/s received, summed over the senders (each sending for the same T seconds at once)',
      receiver_cpu_s_per_gb: "receiver daemon's CPU seconds during the transfers per 1e9 bytes received in all",
      senders_cpu_s_per_gb: "all sender daemons' CPU seconds per 1e9 bytes received in all",
      receiver_idle_rss_mb: 'MiB, VmRSS once connected', receiver_peak_rss_mb: 'MiB, VmHWM after the transfers' },
    summary, ratios, runs };
    failures.push(...runs.filter((x) => !x.ok).map((x) => `fan-in, round ${x.round}: ${x.error}`));
    prints.push(() => {
      console.log(`\n${senders} senders to one receiver at once (1 stream each, bridge underlay); the receiver's daemon\n`);
      console.log(table(['system', ...FANIN_METRICS.map((m) => m[1])], measured.map((s) => [s.label,
        ...FANIN_METRICS.map(([k, , d]) => cellFor(summary, s.id, k, d, runs))])));
      if (Object.keys(ratios).length) {
        console.log('\nvibepn / anchor, fan-in\n');
        console.log(table(['vibepn vs', ...FANIN_METRICS.map((m) => m[1].replace(/ (Mbit\/s|MB)$/, ''))],
          Object.keys(ratios).map((id) => [label(id), ...FANIN_METRICS.map(([k]) => cell(ratios[id][k], 2))])));
      }
    });
  }
  if (parts.includes('mesh')) {
    const sizes = (run.mesh_sizes ?? '').split(' ').filter(Boolean).map(Number);
    const runs = sizes.filter((n) => fs.existsSync(path.join(rawDir, `mesh-${n}`)))
      .map((n) => ({ nodes: n, ...readMesh(path.join(rawDir, `mesh-${n}`), clkTck) }));
    const tun = run.mesh_tun !== '0';
    json.mesh = { sizes, idle_s: Number(run.mesh_idle), tun, keepalive_s: 10, units: {
      formed_s: 'seconds from starting all daemons at once until every node holds N-1 connected peers and N-1 routes',
      rss_mean_mb: 'MiB, VmRSS per node at the end of the idle time', peak_rss_max_mb: 'MiB, the largest VmHWM',
      cpu_s_per_node_min_mean: 'CPU seconds per node per minute over the idle time, mean over nodes' }, runs };
    failures.push(...runs.filter((x) => !x.ok).map((x) => `mesh of ${x.nodes}: ${x.error}`));
    prints.push(() => {
      console.log(`\nvibepn full mesh (every node pins every other; ${tun ? 'TUN devices' : '--no-tun'}), ` +
        `idle for ${run.mesh_idle} s once formed (Keepalives every 10 s)\n`);
      console.log(table(['nodes', ...MESH_METRICS.map((m) => m[1])], runs.map((x) => [String(x.nodes),
        ...MESH_METRICS.map(([k, , d]) => (x.figures[k] == null && !x.ok ? 'failed' : fmt(x.figures[k], d)))])));
    });
  }
  if (parts.includes('nat')) {
    const nat = natSection(rawDir, clkTck);
    json.nat = nat.json;
    failures.push(...nat.failures);
    prints.push(nat.print);
  }
  if (parts.includes('lookup')) {
    const lookup = (json.route_lookup = readLookup(rawDir));
    if (lookup.status === 'failed') failures.push(lookup.error);
    prints.push(() => {
      console.log('\nRoute lookups per second');
      if (lookup.status !== 'measured') {
        console.log(`  ${lookup.status}${lookup.note ? `: ${lookup.note}` : lookup.error ? `: ${lookup.error}` : ''}`);
        return;
      }
      const routes = [...new Set(lookup.results.map((r) => r.routes))].sort((a, b) => a - b);
      const families = [...new Set(lookup.results.map((r) => r.family))];
      const per = (n, f) => lookup.results.find((r) => r.routes === n && r.family === f)?.lookups_per_s;
      console.log(`\n${table(['routes', ...families.map((f) => (f ? `IPv${f} lookups/s` : 'lookups/s'))],
        routes.map((n) => [String(n), ...families.map((f) => (per(n, f) ? `${(per(n, f) / 1e6).toFixed(2)} M` : 'n/a'))]))}`);
    });
  }
  return { json, failures, print: () => prints.forEach((p) => p()) };
}

// Imported by report.mjs, whose own --line must not be taken for this one's.
if (import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--line') {
  const [, , , kind, dir, rawDir] = process.argv;
  const run = Object.fromEntries(tsv(path.join(rawDir, 'run.tsv')));
  const clkTck = Number(run.clk_tck);
  const out = [];
  if (kind === 'flows') {
    const counts = run.flows.split(' ').map(Number);
    const f = readFlows(dir, clkTck, counts).figures;
    for (const p of counts) {
      out.push(`${p} flow${p > 1 ? 's' : ''} ${fmt(f[`mbit_${p}`], 0)} Mbit/s` +
        (f[`cpu_s_per_gb_${p}`] != null ? ` ${fmt(f[`cpu_s_per_gb_${p}`], 1)} s/GB` : ''));
    }
  } else if (kind === 'fanin') {
    const f = readFanin(dir, clkTck, Number(run.fanin)).figures;
    out.push(`${f.senders} senders ${fmt(f.total_mbit, 0)} Mbit/s in all (${fmt(f.slowest_sender_mbit, 0)}–${fmt(f.fastest_sender_mbit, 0)} each)`);
    if (f.receiver_cpu_s_per_gb != null) out.push(`receiver CPU ${fmt(f.receiver_cpu_s_per_gb, 1)} s/GB`);
    if (f.receiver_idle_rss_mb != null) out.push(`RSS ${fmt(f.receiver_idle_rss_mb, 1)} idle, ${fmt(f.receiver_peak_rss_mb, 1)} peak MB`);
    if (f.host_idle_share != null) out.push(`host ${Math.round(100 * f.host_idle_share)} % idle`);
  } else if (kind === 'nat') {
    out.push(natLine(dir, clkTck));
  } else if (kind === 'mesh') {
    const f = readMesh(dir, clkTck).figures;
    out.push(`formed in ${fmt(f.formed_s, 2)} s`, `RSS ${fmt(f.rss_mean_mb, 1)} mean, ${fmt(f.rss_max_mb, 1)} max MB`,
      `CPU ${fmt(f.cpu_s_per_node_min_mean, 3)} s/node/min mean, ${fmt(f.cpu_s_per_node_min_max, 3)} max`,
      `host ${fmt(f.host_idle_pct, 0)} % idle`);
  }
  console.log(out.join(', '));
}
