// The arithmetic of scripts/bench.sh: reads the raw files it collected (iperf3 JSON, ping output,
// /proc readings in `facts`), prints the table and vibepn's ratios to each anchor, and writes
// every raw figure, the derived ones and the ratios as JSON. The parts beyond the pair table
// (flows, fan-in, mesh, route lookups) are report-scale.mjs's, in the same JSON and output.
//   node report.mjs RAW_DIR OUT.json   whole run; exits 1 if any measurement failed
//   node report.mjs --line SYSTEM_DIR  one system's figures, printed as the run goes
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  cell, cpuSeconds, fmt, hostIdleShare, readFacts, readIperf, readPing, readText, stats, table, tsv,
} from './report-lib.mjs';
import { scaleReport } from './report-scale.mjs';

const METRICS = [ // key, heading, unit, digits on screen
  ['tcp1_mbit', 'TCP 1 stream Mbit/s', 'Mbit/s', 0],
  ['tcp4_mbit', 'TCP 4 streams', 'Mbit/s', 0],
  ['ping_avg_ms', 'ping avg ms', 'ms', 3],
  ['ping_p99_ms', 'ping p99', 'ms (nearest rank)', 3],
  ['cpu_s_per_gb', 'CPU s/GB', 'CPU seconds of both daemons during the 1-stream transfer per 1e9 bytes received', 1],
  ['idle_rss_mb', 'idle RSS MB', 'MiB (VmRSS once connected), the larger of the two daemons', 1],
  ['peak_rss_mb', 'peak RSS MB', 'MiB (VmHWM after the transfers), the larger of the two daemons', 1],
];

function readRun(dir, clkTck) {
  const error = readText(path.join(dir, 'error')).trim() || null;
  const facts = readFacts(path.join(dir, 'facts'));
  const iperf1 = readIperf(path.join(dir, 'iperf1.json'));
  const iperf4 = readIperf(path.join(dir, 'iperf4.json'));
  const ping = readPing(path.join(dir, 'ping.txt'));
  const daemons = Object.values(facts.daemons);
  const maxOf = (key) => (daemons.length && daemons.every((d) => d[key] != null)
    ? Math.max(...daemons.map((d) => d[key])) / 1024 : null);
  const figures = Object.fromEntries(METRICS.map(([k]) => [k, null]));
  if (iperf1) figures.tcp1_mbit = iperf1.bits_per_second_received / 1e6;
  if (iperf4) figures.tcp4_mbit = iperf4.bits_per_second_received / 1e6;
  if (ping?.times_ms.length) {
    const sorted = [...ping.times_ms].sort((a, b) => a - b);
    figures.ping_avg_ms = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    figures.ping_p99_ms = sorted[Math.ceil(0.99 * sorted.length) - 1]; // nearest rank
    figures.ping_loss = 1 - ping.received / ping.transmitted;
  }
  if (iperf1 && daemons.length && daemons.every((d) => cpuSeconds(d, clkTck) != null)) {
    for (const d of daemons) {
      d.cpu_s = cpuSeconds(d, clkTck);
      d.cpu_s_per_gb = d.cpu_s / (iperf1.bytes_received / 1e9);
    }
    figures.cpu_s_per_gb = daemons.reduce((a, d) => a + d.cpu_s_per_gb, 0);
  }
  figures.host_idle_share = hostIdleShare(facts);
  figures.idle_rss_mb = maxOf('rss_kb');
  figures.peak_rss_mb = maxOf('hwm_kb');
  return {
    ok: !error, error, dst: facts.dst ?? null, overlay_mtu: facts.mtu ?? null, load_1min: facts.load ?? null,
    figures, raw: { iperf_1_stream: iperf1, iperf_4_streams: iperf4, ping, daemons: facts.daemons,
      host_proc_stat_cpu: facts.host_before ? { before: facts.host_before, after: facts.host_after ?? null } : null },
  };
}

if (process.argv[2] === '--line') {
  const dir = process.argv[3];
  const f = readRun(dir, Number(Object.fromEntries(tsv(path.join(dir, '../../run.tsv'))).clk_tck)).figures;
  const parts = [`1 stream ${fmt(f.tcp1_mbit, 0)} Mbit/s`, `4 streams ${fmt(f.tcp4_mbit, 0)} Mbit/s`,
    `ping ${fmt(f.ping_avg_ms, 3)} ms avg, ${fmt(f.ping_p99_ms, 3)} ms p99`];
  if (f.cpu_s_per_gb != null) parts.push(`CPU ${fmt(f.cpu_s_per_gb, 1)} s/GB`);
  if (f.idle_rss_mb != null) parts.push(`RSS ${fmt(f.idle_rss_mb, 1)} idle, ${fmt(f.peak_rss_mb, 1)} peak MB`);
  if (f.host_idle_share != null) parts.push(`host ${Math.round(100 * f.host_idle_share)} % idle`);
  console.log(parts.join(', '));
  process.exit(0);
}

const [rawDir, outFile] = process.argv.slice(2);
const run = Object.fromEntries(tsv(path.join(rawDir, 'run.tsv')));
const clkTck = Number(run.clk_tck);
const rounds = Number(run.rounds);
const systems = tsv(path.join(rawDir, 'systems.tsv')).map(([id, label, version]) => ({ id, label, version }));
const roundList = [...Array(rounds).keys()].map((i) => i + 1);
const parts = (run.parts ?? 'pair').split(' '); // raw files of before the parts: the pair alone
const pair = parts.includes('pair');
const runs = roundList.flatMap((r) => systems.map((s) => [r, s.id, path.join(rawDir, `r${r}`, s.id)])
  .filter(([, , dir]) => fs.existsSync(dir)).map(([r, id, dir]) => ({ round: r, system: id, ...readRun(dir, clkTck) })));
const figure = (id, round, key) => runs.find((x) => x.system === id && x.round === round)?.figures[key] ?? null;

const summary = {};
for (const s of systems) {
  summary[s.id] = Object.fromEntries(METRICS.map(([k]) => [k, stats(roundList.map((r) => figure(s.id, r, k)))]));
  const mtus = [...new Set(runs.filter((x) => x.system === s.id).map((x) => x.overlay_mtu).filter(Boolean))];
  s.overlay_mtu = mtus.length > 1 ? mtus : mtus[0] ?? null;
}

// Ratios are taken within a round (vibepn and the anchor measured minutes apart at most), then
// summarised over rounds, so slow drifts of the host cancel out.
const ratios = {};
if (systems.some((s) => s.id === 'vibepn')) {
  for (const s of systems.filter((x) => x.id !== 'vibepn')) {
    ratios[s.id] = Object.fromEntries(METRICS.map(([k]) => [k, stats(roundList.map((r) => {
      const v = figure('vibepn', r, k);
      const a = figure(s.id, r, k);
      return v != null && a ? v / a : null;
    }))]));
  }
}

const finished = new Date();
const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const scale = scaleReport(rawDir, run, systems, roundList);
for (const s of systems) s.overlay_mtu ??= scale.json.fanin?.runs.find((x) => x.system === s.id)?.overlay_mtu ?? null;
// A flows-only run's failures are its own (report-scale's); with the pair, they are the pair's.
const failures = [...(pair ? runs.filter((x) => !x.ok).map((x) => `round ${x.round}: ${x.error}`) : []), ...scale.failures];
const result = {
  schema: 1,
  date: run.started,
  finished: finished.toISOString().replace(/\.\d+Z$/, 'Z'),
  duration_s: Math.round((finished - new Date(run.started)) / 1000),
  ok: failures.length === 0,
  failures,
  machine: {
    nproc: Number(run.nproc), kernel: os.release(), cpu_model: os.cpus()[0]?.model ?? null,
    mem_total_mib: Math.round(os.totalmem() / 2 ** 20), load_avg_at_end: load,
  },
  settings: {
    seconds_per_transfer: Number(run.t), pings: Number(run.pings), ping_interval_s: 0.01, rounds,
    smoke: run.smoke === '1', vibepn_mtu_env: run.mtu_env || null, namespaces: run.namespaces,
    direction: 'iperf3 client in A, server in B (A->B)', clk_tck: clkTck, parts,
    fanin_senders: parts.includes('fanin') ? Number(run.fanin) : null,
    mesh_sizes: parts.includes('mesh') ? run.mesh_sizes.split(' ').map(Number) : null,
  },
  tools: { iperf3: run.iperf3, ping: run.ping, node: process.version },
  units: Object.fromEntries(METRICS.map(([k, , unit]) => [k, unit])),
  systems,
  summary,
  ratios_note: 'vibepn / anchor, per round, then min/median/max over rounds',
  ratios,
  runs,
  ...scale.json,
};
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);

console.log(`\n${run.started}, ${run.nproc} CPUs (${result.machine.cpu_model}), Linux ${os.release()}, ` +
  `${run.t} s per transfer, ${run.pings} pings, ${rounds} round${rounds > 1 ? 's (median and range)' : ''}, ` +
  `load ${load.join(' ')} at the end\n`);
if (pair) {
  console.log(table(['system', ...METRICS.map((m) => m[1])],
    systems.map((s) => {
      const failed = runs.some((x) => x.system === s.id && !x.ok);
      return [s.label, ...METRICS.map(([k, , , d]) => (!summary[s.id][k] && failed ? 'failed' : cell(summary[s.id][k], d)))];
    })));
}
if (pair && Object.keys(ratios).length) {
  console.log('\nvibepn / anchor (throughput: above 1 is better for vibepn; ping, CPU, RSS: below 1 is)\n');
  console.log(table(['vibepn vs', ...METRICS.map((m) => m[1].replace(/ (Mbit\/s|ms|MB)$/, ''))],
    systems.filter((s) => ratios[s.id]).map((s) => [s.label, ...METRICS.map(([k]) => cell(ratios[s.id][k], 2))])));
}
scale.print();
if (systems.length) console.log('\nversions:');
for (const s of systems) console.log(`  ${s.label}: ${s.version}${s.overlay_mtu ? `, MTU ${s.overlay_mtu}` : ''}`);
console.log(`\nwrote ${path.relative(process.cwd(), outFile)} (${result.duration_s} s)`);
if (failures.length) {
  console.error(`\nFAILED: ${failures.length} measurement${failures.length > 1 ? 's' : ''}:`);
  for (const f of failures) console.error(`  ${f}`);
  process.exit(1);
}
