#!/usr/bin/env bash
# sudo npm run bench — vibepn against its anchors between two network namespaces joined by a veth
# pair, all in one run so that the ratios come from one machine state: plain veth, wireguard-go
# and Nebula (each the Debian package and a current release built from source), vibepn.
# Per system: iperf3 TCP A->B with 1 and with 4 streams, ping avg and p99, CPU seconds per GB of
# both daemons during the 1-stream transfer, idle and peak RSS. Prints a table and vibepn's
# ratios to each anchor, and writes everything to bench/results/<UTC time>.json.
#   T=8             seconds per iperf3 transfer
#   PINGS=200       pings per system (10 ms apart)
#   ROUNDS=1        repeat, systems interleaved round-robin; figures become ranges (the host is noisy)
#   SYSTEMS="..."   a subset of: veth wg-debian wg-current nebula-debian nebula-current vibepn
#   MTU=N           vibepn's overlay MTU (default: vibepn's own default)
#   BENCH_KEEP=1    keep the raw files (iperf3 JSON, ping output, daemon logs) in /tmp
#   BENCH_SMOKE=1   a few seconds for CI: T=1, 20 pings, veth and vibepn only, no Go builds;
#                   exits non-zero when a measurement fails
set -euo pipefail
export A=${A:-vbenchA} B=${B:-vbenchB}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lab.sh"
for part in anchors wireguard nebula vibepn measure; do source "$HERE/bench/$part.sh"; done

ALL="veth wg-debian wg-current nebula-debian nebula-current vibepn"
if [ "${BENCH_SMOKE:-}" = 1 ]; then T=1 PINGS=20 SYSTEMS="veth vibepn"; fi
T=${T:-8} PINGS=${PINGS:-200} ROUNDS=${ROUNDS:-1} SYSTEMS=${SYSTEMS:-$ALL}
for v in T PINGS ROUNDS; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"; done
for s in $SYSTEMS; do [[ " $ALL " == *" $s "* ]] || die "unknown system '$s' (known: $ALL)"; done
has() { [[ " $SYSTEMS " == *" $1 "* ]]; }

sys_label() {
  case $1 in
    veth) echo veth ;;
    wg-debian) echo "wireguard-go (Debian)" ;; wg-current) echo "wireguard-go (current)" ;;
    nebula-debian) echo "nebula (Debian)" ;; nebula-current) echo "nebula (current)" ;;
    vibepn) echo vibepn ;;
  esac
}

# Each system on its own overlay subnet, so a leftover route can never carry another's traffic.
sys_up() {
  case $1 in
    veth) DST=192.0.2.2 ;;
    wg-debian) wg_up debian 201 ;; wg-current) wg_up current 203 ;;
    nebula-debian) nebula_up debian 202 ;; nebula-current) nebula_up current 204 ;;
    vibepn) vibepn_up ;;
  esac
}

sys_version() {
  case $1 in
    veth) echo "Linux $(uname -r)" ;;
    wg-debian) wg_version debian ;; wg-current) wg_version current ;;
    nebula-debian) nebula_version debian ;; nebula-current) nebula_version current ;;
    vibepn) vibepn_version ;;
  esac
}

show_logs() { # dir
  local f
  for f in "$1"/*.log; do
    [ -s "$f" ] || continue
    printf -- '--- %s (last 20 lines)\n' "${f#"$WORK"/raw/}" >&2
    tail -n 20 "$f" >&2
  done
}

bench_down() {
  local code=$?
  trap - EXIT INT TERM
  bench_stop
  wg_down
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  # A failure inside a measurement has shown its logs already; this is for one that interrupted it.
  if [ "$code" -ne 0 ] && [ -n "$BENCH_DIR" ] && [ ! -s "$BENCH_DIR/error" ]; then show_logs "$BENCH_DIR"; fi
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "raw files kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$code"
}
trap bench_down EXIT
trap 'echo "bench.sh: interrupted" >&2; exit 130' INT TERM

run_one() { # round system
  BENCH_DIR=$WORK/raw/r$1/$2 LABEL=$(sys_label "$2")
  mkdir -p "$BENCH_DIR"; : >"$BENCH_DIR/facts"
  say "$LABEL$([ "$ROUNDS" = 1 ] || echo ", round $1 of $ROUNDS")"
  # A subshell so that set -e ends just this system's measurement; the status is kept, not fatal.
  local rc=0
  set +e
  (set -e; sys_up "$2"; measure "$DST")
  rc=$?
  set -e
  bench_stop
  wg_down
  if [ $rc -ge 128 ]; then exit $rc; fi
  if [ $rc -ne 0 ]; then
    [ -s "$BENCH_DIR/error" ] || echo "$LABEL: failed (exit $rc)" >"$BENCH_DIR/error"
    show_logs "$BENCH_DIR"
  else
    node "$HERE/bench/report.mjs" --line "$BENCH_DIR"
  fi
  BENCH_DIR=
}

packages=(iperf3)
if has wg-debian || has wg-current; then packages+=(wg:wireguard-tools); fi
if has wg-debian; then packages+=(wireguard-go); fi
if has nebula-debian; then packages+=(nebula); fi
lab_prepare "${packages[@]}"
if has wg-current; then anchors_build_wireguard; fi
if has nebula-current; then anchors_build_nebula; fi

RAW=$WORK/raw STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$RAW"
{
  printf 'started\t%s\nt\t%s\npings\t%s\nrounds\t%s\nsmoke\t%s\nmtu_env\t%s\n' \
    "$STARTED" "$T" "$PINGS" "$ROUNDS" "${BENCH_SMOKE:-0}" "${MTU:-}"
  printf 'clk_tck\t%s\nnproc\t%s\niperf3\t%s\nping\t%s\nnamespaces\t%s %s\n' "$(getconf CLK_TCK)" "$(nproc)" \
    "$(iperf3 --version | head -n 1)" "$(ping -V | head -n 1)" "$A" "$B"
} >"$RAW/run.tsv"
for s in $SYSTEMS; do printf '%s\t%s\t%s\n' "$s" "$(sys_label "$s")" "$(sys_version "$s")"; done >"$RAW/systems.tsv"

lab_netns
read -ra order <<<"$SYSTEMS"
for ((r = 1; r <= ROUNDS; r++)); do
  # Each round starts one system later, so no system always runs first (or right after another).
  for ((i = 0; i < ${#order[@]}; i++)); do run_one "$r" "${order[(i + r - 1) % ${#order[@]}]}"; done
done

out=$REPO/bench/results/$(date -u -d "$STARTED" +%Y-%m-%dT%H%M%SZ).json
node "$HERE/bench/report.mjs" "$RAW" "$out" && rc=0 || rc=$?
if [ -f "$out" ] && [ -n "${SUDO_USER:-}" ]; then chown "$SUDO_USER": "$out"; fi
exit $rc
