# shellcheck shell=bash
# Sourced by bench.sh: several peers sending to one node at once (PARTS fanin). A star of hosts
# (star.sh): the receiver n1 and FANIN senders n2 .. n(FANIN+1), each sender with a tunnel to the
# receiver only. Every sender runs iperf3 (1 stream, T seconds) to the receiver at the same time,
# each to its own server port. Raw outputs in $BENCH_DIR: fanin-n<i>.json per sender, and facts
# with every daemon's readings (n1 is the receiver); report-scale.mjs takes the total throughput,
# the receiver's CPU seconds per GB received and its idle and peak RSS.

FANIN_TAG=F

fanin_run() { # system
  star_up "$FANIN_TAG" $((FANIN + 1))
  case $1 in
    veth) DST=$STAR_NET.1 ;; # the bridge alone
    wg-debian) fanin_wg debian 211 ;; wg-current) fanin_wg current 213 ;;
    nebula-debian) fanin_nebula debian 212 ;; nebula-current) fanin_nebula current 214 ;;
    vibepn) fanin_vibepn ;;
  esac
  fanin_measure
}

fanin_senders() { seq 2 $((FANIN + 1)); }

# wireguard-go: the receiver has every sender as a peer, each sender the receiver.
fanin_wg() { # debian|current subnet-octet -> DST
  local bin net=10.$2.0 d=$BENCH_DIR n=$((FANIN + 1)) i j ns ifname peers
  bin=$(wg_binary "$1")
  (umask 077; for ((i = 1; i <= n; i++)); do wg genkey >"$d/n$i.key"; wg pubkey <"$d/n$i.key" >"$d/n$i.pub"; done)
  for ((i = 1; i <= n; i++)); do
    ns=$(star_host "$FANIN_TAG" "$i") ifname=$(star_host "$FANIN_TAG" "$i")wg peers=()
    echo "$ifname" >>"$STAR_WG"
    wg_start "$bin" "$ns" "$ifname" "n$i"
    if [ "$i" = 1 ]; then
      for j in $(fanin_senders); do
        peers+=(peer "$(cat "$d/n$j.pub")" allowed-ips "$net.$j/32" endpoint "$STAR_NET.$j:51820")
      done
    else
      peers=(peer "$(cat "$d/n1.pub")" allowed-ips "$net.1/32" endpoint "$STAR_NET.1:51820")
    fi
    ip netns exec "$ns" wg set "$ifname" private-key "$d/n$i.key" listen-port 51820 "${peers[@]}" ||
      bench_fail "$LABEL: wg set $ifname in $ns failed"
    ip -n "$ns" addr add "$net.$i/24" dev "$ifname"
    ip -n "$ns" link set "$ifname" up mtu 1420
  done
  DST=$net.1
}

# Nebula: static host maps as in nebula.sh, the receiver's listing every sender.
fanin_nebula() { # debian|current subnet-octet -> DST
  local net=10.$2.0 n=$((FANIN + 1)) i j names=() map
  for ((i = 1; i <= n; i++)); do names+=("n$i:$i"); done
  nebula_certs "$1" "$net" "${names[@]}"
  for ((i = 1; i <= n; i++)); do
    if [ "$i" = 1 ]; then
      map=
      for j in $(fanin_senders); do map+="${map:+, }\"$net.$j\": [\"$STAR_NET.$j:4242\"]"; done
    else
      map="\"$net.1\": [\"$STAR_NET.1:4242\"]"
    fi
    nebula_config "n$i" "$map"
    spawn "$(star_host "$FANIN_TAG" "$i")" "$BENCH_DIR/nebula-n$i.log" "$(nebula_binary "$1" nebula)" -config "$BENCH_DIR/n$i.yml"
    note_daemon "n$i" "$SPAWNED"
  done
  DST=$net.1
}

# vibepn: vpnctl init on every node, add-peer both ways between the receiver and each sender.
fanin_vibepn() { # -> DST
  local dir=$BENCH_DIR/nodes n=$((FANIN + 1)) i specs=("1:$FANIN:$FANIN") since
  mkdir -p "$dir"
  vibepn_nodes_init "$dir" "$n"
  # shellcheck disable=SC2046 # the sender indexes, one word each
  vibepn_node_pin "$dir" $(fanin_senders) 1
  star_parallel "$n" vibepn_node_pin "$dir" 1
  for i in $(fanin_senders); do specs+=("$i:1:1"); done
  since=$(date +%s.%N)
  vibepn_nodes_start "$dir" "$FANIN_TAG" "$n"
  vibepn_nodes_wait "$dir" "$since" 20 "$BENCH_DIR/connected.json" "${specs[@]}"
  DST=$(cat "$dir/n1/address")
}

fanin_measure() {
  local receiver i dev rc pids=() failed=()
  receiver=$(star_host "$FANIN_TAG" 1)
  echo "dst $DST" >>"$BENCH_DIR/facts"
  echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$BENCH_DIR/facts"
  for i in $(fanin_senders); do wait_ping "$DST" "$(star_host "$FANIN_TAG" "$i")"; done
  dev=$(ip -n "$(star_host "$FANIN_TAG" 2)" route get "$DST" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  echo "mtu $(ip netns exec "$(star_host "$FANIN_TAG" 2)" cat "/sys/class/net/$dev/mtu")" >>"$BENCH_DIR/facts"
  sleep 0.5 # as in measure: the connections' first allocations settle before the idle reading
  snapshot rss
  for i in $(fanin_senders); do spawn "$receiver" "$BENCH_DIR/iperf3-server-n$i.log" iperf3 -s -p $((5199 + i)); done
  wait_listening "$receiver" "$FANIN"
  snapshot cpu_before; host_mark before
  for i in $(fanin_senders); do
    timeout $((T + 30)) ip netns exec "$(star_host "$FANIN_TAG" "$i")" iperf3 -c "$DST" -p $((5199 + i)) -t "$T" -J \
      --connect-timeout 5000 >"$BENCH_DIR/fanin-n$i.json" 2>"$BENCH_DIR/fanin-n$i.err" &
    pids+=($!)
  done
  for i in $(fanin_senders); do
    rc=0
    wait "${pids[$((i - 2))]}" || rc=$?
    [ $rc = 0 ] || failed+=("n$i (exit $rc$([ $rc = 124 ] && echo ', timed out'): $(json_field 'j.error' <"$BENCH_DIR/fanin-n$i.json")$(head -c 200 "$BENCH_DIR/fanin-n$i.err"))")
  done
  snapshot cpu_after; host_mark after
  [ ${#failed[@]} = 0 ] || bench_fail "$LABEL: iperf3 to $DST failed from ${failed[*]}$(dead_daemons)"
  snapshot hwm
}
