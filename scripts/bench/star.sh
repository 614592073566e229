# shellcheck shell=bash
# Sourced by bench.sh: the hosts of the fan-in and mesh parts. A hub namespace ${NS}Hub with a
# bridge, and hosts ${NS}<tag>1 .. ${NS}<tag>N, each joined to the bridge by a veth pair created
# inside the namespaces (no name ever appears in the root namespace), underlay 198.51.100.<i>/24
# (TEST-NET-2, only ever inside these namespaces). Every namespace and wireguard-go socket made
# is listed in a file, so that star_down (after each measurement, and in the exit trap) removes
# exactly those, even when the subshell that made them has died.
# Also: vibepn nodes n1..nN in such a star, onboarded with vpnctl init and add-peer.

STAR_NET=198.51.100
# vibepn's overlay here, auto addresses (derived from each key) in a /16: a collision is rare, and
# vibepn_nodes_init draws new keys for it. Not static addresses: a daemon takes a peer's derived
# address for that peer's, so a static one could still clash with another peer's derived one.
STAR_VPREFIX=10.48.0.0/16
STAR_LIST=$WORK/star-namespaces
STAR_WG=$WORK/star-wireguard

star_host() { echo "$NS$1$2"; } # tag index -> namespace

star_ns() { # name
  ip netns del "$1" 2>/dev/null || true # a leftover of an interrupted run of ours
  echo "$1" >>"$STAR_LIST"
  ip netns add "$1" || bench_fail "$LABEL: cannot create network namespace $1"
  ip -n "$1" link set lo up
}

star_up() { # tag count
  local i ns hub=${NS}Hub
  star_ns "$hub"
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" link set br0 up
  for ((i = 1; i <= $2; i++)); do
    ns=$(star_host "$1" "$i")
    star_ns "$ns"
    ip link add "p$i" netns "$hub" type veth peer name eth0 netns "$ns" ||
      bench_fail "$LABEL: cannot create the veth pair from $hub to $ns"
    ip -n "$hub" link set "p$i" master br0 up
    ip -n "$ns" addr add "$STAR_NET.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

# Daemons first (bench_stop), then this: deleting a namespace takes its veth and TUN devices along.
star_down() {
  local ns ifname
  if [ -s "$STAR_WG" ]; then
    while read -r ifname; do rm -f "/var/run/wireguard/$ifname.sock"; done <"$STAR_WG"
  fi
  if [ -s "$STAR_LIST" ]; then
    while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done < <(tac "$STAR_LIST")
  fi
  : >"$STAR_LIST"; : >"$STAR_WG"
}

# Runs FUNCTION ARGS... INDEX for INDEX 1..COUNT, as many at a time as there are CPUs (each vpnctl
# call is a Node start-up, and a 20-node mesh needs 380 of them). Fails if any of them failed.
star_parallel() { # count function args...
  local count=$1 i failed=0 pids=() base cpus
  shift
  base=$(jobs -rp | wc -l) cpus=$(nproc) # daemons already running are jobs too
  for ((i = 1; i <= count; i++)); do
    while [ "$(jobs -rp | wc -l)" -ge $((base + cpus)) ]; do sleep 0.02; done
    "$@" "$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  return $failed
}

# --- vibepn nodes in a star: files under DIR/n<i>/, daemon log $BENCH_DIR/n<i>.log

# One vibepn node's files in DIR/NAME/ (config.toml, node.*, and its fingerprint and auto address
# as files), listening on HOST:51820 with an auto address in PREFIX. Also used by nat.sh.
vibepn_init_at() { # dir name listen-host prefix [vpnctl init flags...]
  local d=$1/$2 out
  out=$($VPNCTL init --config "$d/config.toml" --cert "$d/node.crt" --key "$d/node.key" --name "$2" \
    --prefix "$4" --listen "$3:51820" --socket "$d/vpn.sock" \
    --known-peers "$d/known_peers.json" --metrics-listen 127.0.0.1:9000 "${@:5}" 2>&1) ||
    bench_fail "$LABEL: vpnctl init for $2 failed: $out"
  sed -n 's/.*fingerprint \([0-9a-f]\{64\}\).*/\1/p' <<<"$out" | head -n 1 >"$d/fingerprint"
  sed -n 's/.*, address \([0-9.]*\) (auto).*/\1/p' <<<"$out" | head -n 1 >"$d/address"
  if [ ! -s "$d/fingerprint" ] || [ ! -s "$d/address" ]; then
    bench_fail "$LABEL: vpnctl init printed no fingerprint or auto address for $2: $out"
  fi
  lab_set_mtu "$d/config.toml"
}

vibepn_node_init() { # dir [--force] index -> DIR/n<i>/{config.toml,node.*,fingerprint,address}
  local i=${*: -1}
  vibepn_init_at "$1" "n$i" "$STAR_NET.$i" "$STAR_VPREFIX" "${@:2:$#-2}"
}

# N nodes with distinct auto addresses: a node whose address an earlier one has draws a new key.
vibepn_nodes_init() { # dir count
  local i try addr
  star_parallel "$2" vibepn_node_init "$1"
  for ((try = 1; ; try++)); do
    local -A seen=()
    local again=()
    for ((i = 1; i <= $2; i++)); do
      addr=$(cat "$1/n$i/address")
      if [ -n "${seen[$addr]:-}" ]; then again+=("$i"); else seen[$addr]=$i; fi
    done
    [ ${#again[@]} -gt 0 ] || return 0
    [ "$try" -le 5 ] || bench_fail "$LABEL: auto addresses still collide after 5 new keys (${again[*]})"
    for i in "${again[@]}"; do vibepn_node_init "$1" --force "$i"; done
  done
}

vibepn_node_pin() { # dir peer-indexes... index : node INDEX pins each peer (address, fingerprint)
  local dir=$1 i=${*: -1} j out
  for j in "${@:2:$#-2}"; do
    [ "$j" != "$i" ] || continue
    out=$($VPNCTL add-peer --config "$dir/n$i/config.toml" --name "n$j" --address "$STAR_NET.$j:51820" \
      --fingerprint "$(cat "$dir/n$j/fingerprint")" --networks corp 2>&1) ||
      bench_fail "$LABEL: vpnctl add-peer n$j on n$i failed: $out"
  done
}

vibepn_nodes_start() { # dir tag count [vpn flags...]
  local i
  for ((i = 1; i <= $3; i++)); do
    # shellcheck disable=SC2086 # $VPN is "node <flags> .../vpn.js"
    spawn "$(star_host "$2" "$i")" "$BENCH_DIR/n$i.log" $VPN -config "$1/n$i/config.toml" "${@:4}"
    note_daemon "n$i" "$SPAWNED"
  done
}

# Until every node reports its expected peers and routes (held, not just touched); writes the
# times to OUT as JSON. Each spec is index:peers:routes. Fails, saying what is lacking where.
vibepn_nodes_wait() { # dir since(epoch s) timeout(s) out spec...
  local dir=$1 since=$2 timeout=$3 out=$4 spec args=()
  for spec in "${@:5}"; do args+=("$dir/n${spec%%:*}/vpn.sock:${spec#*:}"); done
  node "$HERE/bench/mesh-wait.mjs" --since "$since" --timeout "$timeout" "${args[@]}" >"$out" 2>"$out.err" ||
    bench_fail "$LABEL: $(cat "$out.err")$(dead_daemons)"
}
