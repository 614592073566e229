# shellcheck shell=bash
# Sourced by bench.sh: vibepn across NATs (PARTS nat). A hub h with relay = true on a bridge
# (star.sh: ${NS}N1 198.51.100.1), two NAT routers on the same bridge (${NS}N2, ${NS}N3) made
# with nftables masquerade, hosts a and b behind them (${NS}NL1 10.77.1.2, ${NS}NL2 10.77.2.2).
# a and b know h's address and each other's fingerprint only. Two measurements:
#   nat-direct  both NATs keep ports (plain masquerade): time to a direct path, iperf3 a->b over
#               it, then a drop rule on a's router between the two routers: time until a is on
#               the relay, and after the rule is lifted, until it is direct again
#   nat-relay   b's NAT symmetric (masquerade random,fully-random): time to the relayed path,
#               iperf3 a->b through h, and h's CPU seconds per GB it relayed
# Raw files in $BENCH_DIR: path-*.json (nat-wait.mjs), iperf-nat.json, facts (h is daemon h).

NAT_TAG=N
NAT_VPREFIX=10.49.0.0/16

nat_router() { # router-index lan(1|2) masquerade|symmetric
  local router host lan=10.77.$2 flags=
  router=$(star_host "$NAT_TAG" "$1") host=${NS}${NAT_TAG}L$2
  star_ns "$host"
  ip link add lan0 netns "$router" type veth peer name eth0 netns "$host" ||
    bench_fail "$LABEL: cannot create the veth pair from $router to $host"
  ip -n "$router" addr add "$lan.1/24" dev lan0
  ip -n "$router" link set lan0 up
  ip -n "$host" addr add "$lan.2/24" dev eth0
  ip -n "$host" link set eth0 up
  ip -n "$host" route add default via "$lan.1"
  ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
  [ "$3" != symmetric ] || flags=" random,fully-random"
  # A home router: out from the LAN, back in only as replies; nothing unsolicited reaches the
  # router either (an unsolicited datagram's conntrack entry would change the next mapping's port).
  ip netns exec "$router" nft -f - <<NFT || bench_fail "$LABEL: nft on $router failed"
table inet vbnat {
  chain forward { type filter hook forward priority 0; policy drop; ct state established,related accept; iifname "lan0" accept; }
  chain input { type filter hook input priority 0; policy accept; iifname "eth0" ct state established,related accept; iifname "eth0" drop; }
  chain postrouting { type nat hook postrouting priority 100; oifname "eth0" masquerade$flags; }
}
NFT
}

nat_pin() { # dir node peer address
  local out
  out=$($VPNCTL add-peer --config "$1/$2/config.toml" --name "$3" --address "$4" \
    --fingerprint "$(cat "$1/$3/fingerprint")" --networks corp 2>&1) || bench_fail "$LABEL: vpnctl add-peer $3 on $2 failed: $out"
}

nat_wait() { # out path timeout [since]
  node "$HERE/bench/nat-wait.mjs" --socket "$BENCH_DIR/nodes/a/vpn.sock" --peer b --path "$2" --timeout "$3" \
    ${4:+--since "$4"} >"$BENCH_DIR/$1" 2>"$BENCH_DIR/$1.err" || bench_fail "$LABEL: $(cat "$BENCH_DIR/$1.err")$(dead_daemons)"
}

nat_run() { # direct|relay
  local dir=$BENCH_DIR/nodes since n
  star_up "$NAT_TAG" 3
  nat_router 2 1 masquerade
  nat_router 3 2 "$([ "$1" = relay ] && echo symmetric || echo masquerade)"
  mkdir -p "$dir"
  vibepn_init_at "$dir" h "$STAR_NET.1" "$NAT_VPREFIX"
  vibepn_init_at "$dir" a 10.77.1.2 "$NAT_VPREFIX"
  vibepn_init_at "$dir" b 10.77.2.2 "$NAT_VPREFIX"
  for n in h a b; do
    for m in h a b; do [ "$n" = "$m" ] || [ "$(cat "$dir/$n/address")" != "$(cat "$dir/$m/address")" ] ||
      bench_fail "$LABEL: $n and $m derived the same overlay address; run again"; done
  done
  sed -i '/^\[daemon\]$/a relay = true' "$dir/h/config.toml"
  grep -q '^relay = true$' "$dir/h/config.toml" || bench_fail "$LABEL: no [daemon] table in h's config"
  nat_pin "$dir" h a ""; nat_pin "$dir" h b ""
  nat_pin "$dir" a h "$STAR_NET.1:51820"; nat_pin "$dir" a b ""
  nat_pin "$dir" b h "$STAR_NET.1:51820"; nat_pin "$dir" b a ""
  # shellcheck disable=SC2086 # $VPN is "node <flags> .../vpn.js"
  spawn "$(star_host "$NAT_TAG" 1)" "$BENCH_DIR/h.log" $VPN -config "$dir/h/config.toml"
  note_daemon h "$SPAWNED"
  since=$(date +%s.%N)
  # shellcheck disable=SC2086
  spawn "${NS}${NAT_TAG}L1" "$BENCH_DIR/a.log" $VPN -config "$dir/a/config.toml"
  note_daemon a "$SPAWNED"
  # shellcheck disable=SC2086
  spawn "${NS}${NAT_TAG}L2" "$BENCH_DIR/b.log" $VPN -config "$dir/b/config.toml"
  note_daemon b "$SPAWNED"
  nat_wait path-up.json "$1" 40 "$since"
  DST=$(cat "$dir/b/address")
  echo "dst $DST" >>"$BENCH_DIR/facts"
  wait_ping "$DST" "${NS}${NAT_TAG}L1"
  sleep 0.5
  snapshot rss
  spawn "${NS}${NAT_TAG}L2" "$BENCH_DIR/iperf3-server.log" iperf3 -s -p 5201
  wait_listening "${NS}${NAT_TAG}L2" 1
  snapshot cpu_before; host_mark before
  timeout $((T + 30)) ip netns exec "${NS}${NAT_TAG}L1" iperf3 -c "$DST" -t "$T" -J --connect-timeout 5000 \
    >"$BENCH_DIR/iperf-nat.json" 2>"$BENCH_DIR/iperf-nat.err" ||
    bench_fail "$LABEL: iperf3 to $DST failed: $(json_field 'j.error' <"$BENCH_DIR/iperf-nat.json")$(head -c 200 "$BENCH_DIR/iperf-nat.err")$(dead_daemons)"
  snapshot cpu_after; host_mark after
  snapshot hwm
  [ "$1" = direct ] || return 0
  # The direct path breaks (a's router drops what goes between the routers), then heals.
  since=$(date +%s.%N)
  ip netns exec "$(star_host "$NAT_TAG" 2)" nft -f - <<NFT || bench_fail "$LABEL: the drop rule failed"
table inet vbcut {
  chain forward { type filter hook forward priority -10; ip daddr $STAR_NET.3 drop; ip saddr $STAR_NET.3 drop; }
}
NFT
  nat_wait path-fallback.json relay 30 "$since"
  since=$(date +%s.%N)
  ip netns exec "$(star_host "$NAT_TAG" 2)" nft delete table inet vbcut
  nat_wait path-return.json direct 40 "$since"
}
