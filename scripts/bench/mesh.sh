# shellcheck shell=bash
# Sourced by bench.sh: the control plane's cost as a full mesh grows (PARTS mesh), vibepn only.
# N nodes, each in its own namespace of a star (star.sh), onboarded with vpnctl init and add-peer
# so that every node pins every other; all daemons start at once (with their TUNs, or --no-tun
# with MESH_TUN=0). Measured in $BENCH_DIR: formed.json, the seconds from the first start until
# every node holds N-1 connected peers and N-1 routes; then, once formed, each daemon's RSS and
# CPU time over MESH_IDLE seconds of idle (Keepalives every 10 s), its RSS and peak RSS at the
# end, and that the mesh still stands. report-scale.mjs takes the means and maxima.

MESH_TAG=M

mesh_run() { # nodes
  local n=$1 dir=$BENCH_DIR/nodes i specs=() since flags=()
  [ "$MESH_TUN" = 1 ] || flags=(--no-tun)
  echo "nodes $n" >>"$BENCH_DIR/facts"
  star_up "$MESH_TAG" "$n"
  mkdir -p "$dir"
  vibepn_nodes_init "$dir" "$n"
  # shellcheck disable=SC2046 # every index, one word each
  star_parallel "$n" vibepn_node_pin "$dir" $(seq "$n")
  for ((i = 1; i <= n; i++)); do specs+=("$i:$((n - 1)):$((n - 1))"); done
  echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$BENCH_DIR/facts"
  since=$(date +%s.%N)
  vibepn_nodes_start "$dir" "$MESH_TAG" "$n" "${flags[@]}"
  vibepn_nodes_wait "$dir" "$since" "$MESH_TIMEOUT" "$BENCH_DIR/formed.json" "${specs[@]}"
  # The last routes' bookkeeping, before the memory counts as the formed mesh's.
  [ "${BENCH_SMOKE:-}" = 1 ] || sleep 1
  snapshot rss
  snapshot cpu_before; host_mark before
  sleep "$MESH_IDLE"
  snapshot cpu_after; host_mark after
  snapshot rss_end
  snapshot hwm
  # Still standing: the idle figures are a formed mesh's.
  LABEL="$LABEL, after the idle time" vibepn_nodes_wait "$dir" "$(date +%s.%N)" 5 "$BENCH_DIR/still.json" "${specs[@]}"
}
