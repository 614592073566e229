// What report.mjs and report-scale.mjs share: readers for the raw files that scripts/bench.sh
// collects (iperf3 JSON, ping output, /proc readings in `facts` files) and the table layout.
import fs from 'node:fs';

export const readText = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
export const lines = (text) => text.split('\n').filter((l) => l.trim() !== '');
export const tsv = (file) => lines(readText(file)).map((l) => l.split('\t'));
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function readIperf(file) {
  let j = null;
  try { j = JSON.parse(readText(file)); } catch { /* missing or cut short: no figures */ }
  const r = j?.end?.sum_received;
  const s = j?.end?.sum_sent;
  if (!r || !s) return null;
  return {
    streams: j.start?.test_start?.num_streams ?? null, seconds: r.seconds, bytes_received: r.bytes,
    bits_per_second_received: r.bits_per_second, bytes_sent: s.bytes, retransmits: s.retransmits ?? null,
    cpu_utilization_percent: j.end.cpu_utilization_percent ?? null,
  };
}

export function readPing(file) {
  const text = readText(file);
  const times = [...text.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const count = text.match(/(\d+) packets transmitted, (\d+) received/);
  if (!count) return null;
  return { transmitted: Number(count[1]), received: Number(count[2]), times_ms: times };
}

// Lines of one value for the whole measurement; every other line is "KEY SIDE VALUES...".
const SCALARS = ['dst', 'mtu', 'load', 'nodes', 'time_before', 'time_after'];

/** facts lines: "dst IP", "mtu N", "daemon A PID", "rss_kb A N", "cpu_before A UTIME STIME", ... */
export function readFacts(file) {
  const facts = { daemons: {} };
  for (const [key, ...rest] of lines(readText(file)).map((l) => l.trim().split(/\s+/))) {
    if (key === 'host_before' || key === 'host_after') { // "cpu user nice system idle iowait ..."
      facts[key] = rest.slice(1).map(Number);
      continue;
    }
    if (SCALARS.includes(key)) {
      facts[key] = key === 'dst' ? rest[0] : Number(rest[0]);
      continue;
    }
    const [side, ...values] = rest;
    const d = (facts.daemons[side] ??= {});
    const nums = values.map(Number);
    if (key === 'daemon') d.pid = nums[0];
    else if (key === 'cpu_before' || key === 'cpu_after') d[`${key}_ticks`] = { utime: nums[0], stime: nums[1] };
    else d[key] = nums[0];
  }
  return facts;
}

/** CPU seconds a daemon used between its cpu_before and cpu_after lines, or null. */
export function cpuSeconds(d, clkTck) {
  if (!d.cpu_before_ticks || !d.cpu_after_ticks) return null;
  const ticks = (t) => t.utime + t.stime;
  return (ticks(d.cpu_after_ticks) - ticks(d.cpu_before_ticks)) / clkTck;
}

/** The share of the host's CPU time left idle between host_before and host_after, or null. */
export function hostIdleShare(facts) {
  if (!facts.host_before || !facts.host_after) return null;
  const d = facts.host_after.map((v, i) => v - facts.host_before[i]);
  return (d[3] + d[4]) / d.reduce((a, b) => a + b, 0); // idle + iowait
}

export const fmt = (v, digits) => {
  if (v == null) return 'n/a';
  if (digits === 3) return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
  return v.toFixed(digits);
};
export const stats = (values) => {
  const xs = values.filter((v) => v != null);
  return xs.length ? { min: Math.min(...xs), median: median(xs), max: Math.max(...xs), values } : null;
};
// One round: the figure. More: median and the range over rounds.
export const cell = (s, digits) => (!s ? 'n/a' : s.values.length === 1 ? fmt(s.median, digits)
  : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`);

export function table(headings, rows) {
  const widths = headings.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  return [line(headings), `|${widths.map((w, i) => (i ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...rows.map(line)].join('\n');
}
