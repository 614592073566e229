// The arithmetic of scripts/bench.sh's NAT part (PARTS nat, scripts/bench/nat.sh): reads the raw
// files of its two measurements, gives report-scale.mjs its section of the JSON and its table.
import path from 'node:path';
import { cpuSeconds, fmt, hostIdleShare, readFacts, readIperf, readText, table } from './report-lib.mjs';

const seconds = (dir, file) => {
  try {
    return JSON.parse(readText(path.join(dir, file))).s ?? null;
  } catch {
    return null;
  }
};

/** One measurement: path-*.json from nat-wait.mjs, iperf-nat.json, facts with daemons h, a, b. */
export function readNat(dir, clkTck) {
  const facts = readFacts(path.join(dir, 'facts'));
  const iperf = readIperf(path.join(dir, 'iperf-nat.json'));
  const gb = iperf ? iperf.bytes_received / 1e9 : null;
  const cpu = (side) => (facts.daemons[side] && gb ? cpuSeconds(facts.daemons[side], clkTck) / gb : null);
  const error = readText(path.join(dir, 'error')).trim() || null;
  return {
    ok: !error,
    error,
    figures: {
      path_up_s: seconds(dir, 'path-up.json'),
      mbit: iperf ? iperf.bits_per_second_received / 1e6 : null,
      ends_cpu_s_per_gb: cpu('a') != null && cpu('b') != null ? cpu('a') + cpu('b') : null,
      relay_cpu_s_per_gb: cpu('h'),
      fallback_s: seconds(dir, 'path-fallback.json'),
      return_s: seconds(dir, 'path-return.json'),
      host_idle_share: hostIdleShare(facts),
    },
    raw: { iperf, daemons: facts.daemons },
  };
}

export function natSection(rawDir, clkTck) {
  const runs = ['direct', 'relay'].map((kind) => ({ kind, ...readNat(path.join(rawDir, `nat-${kind}`), clkTck) }));
  const json = { topology: 'h (relay = true) on a bridge; a and b each behind its own nftables masquerade NAT; iperf3 a->b, 1 stream',
    units: { path_up_s: 'seconds from starting a and b until a reports b on that path',
      mbit: 'Mbit/s received over the path', relay_cpu_s_per_gb: "h's CPU seconds per 1e9 bytes received by b",
      fallback_s: 'seconds from the drop rule until a is on the relay', return_s: 'seconds from lifting it until direct again' }, runs };
  const failures = runs.filter((x) => !x.ok).map((x) => `nat ${x.kind}: ${x.error}`);
  const print = () => {
    console.log('\nvibepn across NATs (h relays; a, b behind NAT routers): time to the path, iperf3 a->b, CPU s/GB\n');
    console.log(table(['path', 'up in s', 'Mbit/s', 'a+b CPU s/GB', 'h CPU s/GB', 'fall-back s', 'back to direct s'], runs.map((x) => [
      x.kind === 'direct' ? 'direct (hole punched)' : 'relayed via h (symmetric NAT)',
      ...[['path_up_s', 2], ['mbit', 0], ['ends_cpu_s_per_gb', 1], ['relay_cpu_s_per_gb', 1], ['fallback_s', 2], ['return_s', 2]]
        .map(([k, d]) => (x.figures[k] == null ? (x.ok ? '-' : 'failed') : fmt(x.figures[k], d)))])));
  };
  return { json, failures, print };
}

/** The one-line summary run_step prints after a NAT measurement. */
export function natLine(dir, clkTck) {
  const f = readNat(dir, clkTck).figures;
  const out = [`path up in ${fmt(f.path_up_s, 2)} s`, `${fmt(f.mbit, 0)} Mbit/s`];
  if (f.relay_cpu_s_per_gb != null) out.push(`h CPU ${fmt(f.relay_cpu_s_per_gb, 1)} s/GB`);
  if (f.fallback_s != null) out.push(`fall-back ${fmt(f.fallback_s, 2)} s`, `back to direct ${fmt(f.return_s, 2)} s`);
  return out.join(', ');
}
