#!/usr/bin/env bash
# sudo npm run bench — vibepn against its anchors between two network namespaces joined by a veth
# pair, all in one run so that the ratios come from one machine state: plain veth, wireguard-go
# and Nebula (each the Debian package and a current release built from source), vibepn.
# Per system: iperf3 TCP A->B with 1 and with 4 streams, ping avg and p99, CPU seconds per GB of
# both daemons during the 1-stream transfer, idle and peak RSS. Prints a table and vibepn's
# ratios to each anchor, and writes everything to bench/results/<UTC time>.json.
# The cost as work grows, in the same run: parallel flows (1, 4 and 16 streams, CPU s/GB at each),
# several peers sending to one node at once, the control plane of a full mesh of 5, 10 and 20
# vibepn nodes at idle, and route lookups per second where bench/route-lookup.mjs exists.
#   PARTS="pair flows fanin mesh lookup"   the parts to run (default all):
#     pair          the table above (ping, 1 and 4 streams, CPU s/GB at 1 stream, RSS)
#     flows         per system, 1, 4 and 16 parallel iperf3 streams, throughput and CPU s/GB each
#     fanin         per system, FANIN senders and one receiver on a bridge, all sending at once:
#                   total throughput, the receiver's CPU s/GB and idle and peak RSS
#     mesh          vibepn only, full meshes of MESH_SIZES nodes: time to form, RSS per node
#                   (mean, max) and CPU seconds per node per minute at idle
#     nat           vibepn only, a and b behind NAT routers, h with relay = true: time to a
#                   direct path, iperf3 over it, fall-back time to the relay when it breaks and
#                   back; with a symmetric NAT, time to the relayed path, iperf3 through h and
#                   h's CPU s/GB relayed
#     lookup        route lookups per second: runs `node bench/route-lookup.mjs --json` (and
#                   --smoke in the smoke run) when that file exists, which prints JSON on stdout:
#                   {"results": [{"family": 4, "routes": 1000, "lookups_per_s": 6.3e6}, ...]};
#                   ROUTE_LOOKUP_JSON=FILE takes such a file instead; neither: the table says so
#   FANIN=3         senders in the fan-in part
#   FANIN_SYSTEMS="..."   the systems of the fan-in part, a subset of SYSTEMS (default: SYSTEMS)
#   MESH_SIZES="5 10 20"   mesh sizes (2 to 250 nodes)
#   MESH_IDLE=60    seconds of idle over which the mesh's CPU is measured
#   MESH_TIMEOUT=90 seconds a mesh may take to form before the measurement fails
#   MESH_TUN=1      mesh daemons with their TUN devices; 0: vpn --no-tun (control plane only)
#   NS=vbench       prefix of the network namespaces: ${NS}A and ${NS}B for the pair and flows
#                   (A= and B= override), ${NS}Hub and ${NS}F1.., ${NS}M1.. for fan-in and mesh,
#                   ${NS}N1..3 and ${NS}NL1..2 for nat
#   T=8             seconds per iperf3 transfer
#   PINGS=200       pings per system (10 ms apart)
#   ROUNDS=1        repeat, systems interleaved round-robin; figures become ranges (the host is noisy)
#   SYSTEMS="..."   a subset of: veth wg-debian wg-current nebula-debian nebula-current vibepn
#   MTU=N           vibepn's overlay MTU (default: vibepn's own default)
#   BENCH_KEEP=1    keep the raw files (iperf3 JSON, ping output, daemon logs) in /tmp
#   BENCH_SMOKE=1   a few seconds for CI: T=1, 20 pings, veth and vibepn only, no Go builds,
#                   every part at its smallest (FANIN=2 and vibepn alone, MESH_SIZES=3,
#                   MESH_IDLE=1); exits non-zero when a measurement fails
# shellcheck disable=SC2317 # functions called through run_step and traps are reachable
set -euo pipefail
NS=${NS:-vbench}
[[ $NS =~ ^[a-zA-Z][a-zA-Z0-9]{0,7}$ ]] || { echo "bench.sh: NS must be 1 to 8 letters and digits, not '$NS'" >&2; exit 1; }
export A=${A:-${NS}A} B=${B:-${NS}B}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lab.sh
source "$HERE/lab.sh"
for part in anchors wireguard nebula vibepn measure star fanin mesh nat; do
  # shellcheck source=/dev/null
  source "$HERE/bench/$part.sh"
done

ALL="veth wg-debian wg-current nebula-debian nebula-current vibepn" ALL_PARTS="pair flows fanin mesh nat lookup"
if [ "${BENCH_SMOKE:-}" = 1 ]; then
  T=1 PINGS=20 SYSTEMS="veth vibepn" FANIN=2 FANIN_SYSTEMS=vibepn MESH_SIZES=3 MESH_IDLE=1
fi
T=${T:-8} PINGS=${PINGS:-200} ROUNDS=${ROUNDS:-1} SYSTEMS=${SYSTEMS:-$ALL} PARTS=${PARTS:-$ALL_PARTS}
FANIN_SYSTEMS=${FANIN_SYSTEMS:-$SYSTEMS}
FANIN=${FANIN:-3} MESH_SIZES=${MESH_SIZES:-5 10 20} MESH_IDLE=${MESH_IDLE:-60} MESH_TIMEOUT=${MESH_TIMEOUT:-90}
MESH_TUN=${MESH_TUN:-1}
for v in T PINGS ROUNDS FANIN MESH_IDLE MESH_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[ "$FANIN" -le 250 ] || die "FANIN must be at most 250 (one /24 underlay), not $FANIN"
for n in $MESH_SIZES; do
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -lt 2 ] || [ "$n" -gt 250 ]; then
    die "MESH_SIZES: each size must be 2 to 250 nodes, not '$n'"
  fi
done
[[ $MESH_TUN =~ ^[01]$ ]] || die "MESH_TUN must be 1 (TUN devices) or 0 (--no-tun), not '$MESH_TUN'"
for s in $SYSTEMS; do [[ " $ALL " == *" $s "* ]] || die "unknown system '$s' (known: $ALL)"; done
for s in $FANIN_SYSTEMS; do [[ " $SYSTEMS " == *" $s "* ]] || die "FANIN_SYSTEMS: '$s' is not in SYSTEMS ($SYSTEMS)"; done
for p in $PARTS; do [[ " $ALL_PARTS " == *" $p "* ]] || die "unknown part '$p' in PARTS (known: $ALL_PARTS)"; done
if [ -n "${ROUTE_LOOKUP_JSON:-}" ] && [ ! -r "$ROUTE_LOOKUP_JSON" ]; then
  die "ROUTE_LOOKUP_JSON=$ROUTE_LOOKUP_JSON is not a readable file"
fi
has() { [[ " $SYSTEMS " == *" $1 "* ]]; }
part() { [[ " $PARTS " == *" $1 "* ]]; }
# Only the systems that the chosen parts measure need their packages, builds and version lines.
if ! part pair && ! part flows; then
  used=
  if part fanin; then used=$FANIN_SYSTEMS; fi
  if (part mesh || part nat) && [[ " $used " != *" vibepn "* ]]; then used+="${used:+ }vibepn"; fi
  SYSTEMS=$used
fi

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
  star_down
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  # A failure inside a measurement has shown its logs already; this is for one that interrupted it.
  if [ "$code" -ne 0 ] && [ -n "$BENCH_DIR" ] && [ ! -s "$BENCH_DIR/error" ]; then show_logs "$BENCH_DIR"; fi
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "raw files kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$code"
}
trap bench_down EXIT
trap 'echo "bench.sh: interrupted" >&2; exit 130' INT TERM

# One measurement in $WORK/raw/DIR: COMMAND runs in a subshell so that set -e ends just this
# measurement; the status is kept in DIR/error, not fatal. Then the one-line summary of each kind.
run_step() { # dir label kinds(pair flows fanin mesh) command...
  BENCH_DIR=$RAW/$1 LABEL=$2
  local kinds=$3 rc=0 k
  shift 3
  mkdir -p "$BENCH_DIR"; : >"$BENCH_DIR/facts"
  say "$LABEL"
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  bench_stop
  wg_down
  star_down
  if [ $rc -ge 128 ]; then exit $rc; fi
  if [ $rc -ne 0 ]; then
    [ -s "$BENCH_DIR/error" ] || echo "$LABEL: failed (exit $rc)" >"$BENCH_DIR/error"
    show_logs "$BENCH_DIR"
  else
    for k in $kinds; do
      if [ "$k" = pair ]; then node "$HERE/bench/report.mjs" --line "$BENCH_DIR"
      else node "$HERE/bench/report-scale.mjs" --line "$k" "$BENCH_DIR" "$RAW"; fi
    done
  fi
  BENCH_DIR=
}

pair_run() { sys_up "$1"; measure "$DST"; } # system

# Optional, and someone else's: see "lookup" at the top. Its failure counts like a measurement's.
lookup_run() {
  local script=$REPO/bench/route-lookup.mjs out=$RAW/route-lookup.json flags=() rc=0
  if [ -n "${ROUTE_LOOKUP_JSON:-}" ]; then
    say "route lookups: $ROUTE_LOOKUP_JSON"
    cp "$ROUTE_LOOKUP_JSON" "$out"
  elif [ -f "$script" ]; then
    say "route lookups: node bench/route-lookup.mjs"
    flags=(--json)
    [ "${BENCH_SMOKE:-}" != 1 ] || flags+=(--smoke)
    timeout 600 node "$script" "${flags[@]}" >"$out" 2>"$RAW/route-lookup.log" || rc=$?
    if [ $rc != 0 ]; then
      echo "route lookups: node bench/route-lookup.mjs failed (exit $rc$([ $rc = 124 ] && echo ', timed out after 600 s'))" >"$RAW/route-lookup.error"
      tail -n 20 "$RAW/route-lookup.log" >&2
    fi
  else
    echo "$script" >"$RAW/route-lookup.absent"
  fi
}

packages=(iperf3)
if part nat; then packages+=(nft:nftables); fi
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
  printf 'parts\t%s\nfanin\t%s\nmesh_sizes\t%s\nmesh_idle\t%s\nmesh_tun\t%s\nflows\t1 %s\n' \
    "$PARTS" "$FANIN" "$MESH_SIZES" "$MESH_IDLE" "$MESH_TUN" "$FLOWS_MORE"
} >"$RAW/run.tsv"
for s in $SYSTEMS; do printf '%s\t%s\t%s\n' "$s" "$(sys_label "$s")" "$(sys_version "$s")"; done >"$RAW/systems.tsv"

pair_kinds=
for k in pair flows; do if part "$k"; then pair_kinds+="${pair_kinds:+ }$k"; fi; done
[ -z "$pair_kinds" ] || lab_netns
read -ra order <<<"$SYSTEMS"
for ((r = 1; r <= ROUNDS; r++)); do
  # Each round starts one system later, so no system always runs first (or right after another).
  round=$([ "$ROUNDS" = 1 ] || echo ", round $r of $ROUNDS")
  for ((i = 0; i < ${#order[@]}; i++)); do
    s=${order[(i + r - 1) % ${#order[@]}]}
    [ -z "$pair_kinds" ] || run_step "r$r/$s" "$(sys_label "$s")$round" "$pair_kinds" pair_run "$s"
  done
  if part fanin; then
    for ((i = 0; i < ${#order[@]}; i++)); do
      s=${order[(i + r - 1) % ${#order[@]}]}
      [[ " $FANIN_SYSTEMS " == *" $s "* ]] || continue
      run_step "r$r/fanin-$s" "$(sys_label "$s"): $FANIN senders to one receiver$round" fanin fanin_run "$s"
    done
  fi
done
if part mesh; then
  for n in $MESH_SIZES; do run_step "mesh-$n" "vibepn: full mesh of $n nodes" mesh mesh_run "$n"; done
fi
if part nat; then
  run_step nat-direct "vibepn across NATs: direct by hole punching, then the direct path broken and healed" nat nat_run direct
  run_step nat-relay "vibepn across NATs: b behind a symmetric NAT, relayed by h" nat nat_run relay
fi
if part lookup; then lookup_run; fi

out=$REPO/bench/results/$(date -u -d "$STARTED" +%Y-%m-%dT%H%M%SZ).json
node "$HERE/bench/report.mjs" "$RAW" "$out" && rc=0 || rc=$?
if [ -f "$out" ] && [ -n "${SUDO_USER:-}" ]; then chown "$SUDO_USER": "$out"; fi
exit "$rc"
