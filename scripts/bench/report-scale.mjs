// The arithmetic of scripts/bench.sh's cost-as-work-grows parts (PARTS flows lookup):
// reads their raw files, gives report.mjs their sections of the JSON and prints their tables.
//   node report-scale.mjs --line flows DIR RAW_DIR   one measurement, as the run goes
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  cell, cpuSeconds, fmt, hostIdleShare, readFacts, readIperf, readText, stats, table, tsv,
} from './report-lib.mjs';

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
  }
  console.log(out.join(', '));
}
