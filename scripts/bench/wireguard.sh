# shellcheck shell=bash
# Sourced by bench.sh: wireguard-go in both namespaces, either the Debian package's build or the
# current one from anchors.sh, configured with wg(8) the way wg-quick would (MTU 1420).

# Unique host-wide, not just per namespace: wg reaches a userspace daemon through
# /var/run/wireguard/<interface>.sock, and namespaces do not separate that directory.
WG_IF_A=${A}wg WG_IF_B=${B}wg

wg_binary() { # debian|current
  case $1 in
    debian) command -v wireguard-go ;;
    current) echo "$ANCHORS_BIN/wireguard" ;;
  esac
}

wg_version() { # debian|current
  local v
  v=$("$(wg_binary "$1")" --version | head -n 1)
  case $1 in
    debian) echo "$v (Debian package $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo '?'))" ;;
    current) echo "$v (module $(anchor_module_version "$ANCHORS_BIN/wireguard"))" ;;
  esac
}

wg_up() { # debian|current subnet-octet -> DST
  local bin net=10.$2.0 d=$BENCH_DIR side ns ifname me peer mine theirs
  bin=$(wg_binary "$1")
  (umask 077; for k in a b; do wg genkey >"$d/$k.key"; wg pubkey <"$d/$k.key" >"$d/$k.pub"; done)
  for side in A B; do
    if [ "$side" = A ]; then ns=$A ifname=$WG_IF_A me=a peer=b mine=1 theirs=2
    else ns=$B ifname=$WG_IF_B me=b peer=a mine=2 theirs=1; fi
    wg_start "$bin" "$ns" "$ifname" "$side"
    ip netns exec "$ns" wg set "$ifname" private-key "$d/$me.key" listen-port 51820 \
      peer "$(cat "$d/$peer.pub")" allowed-ips "$net.$theirs/32" endpoint "192.0.2.$theirs:51820"
    ip -n "$ns" addr add "$net.$mine/24" dev "$ifname"
    ip -n "$ns" link set "$ifname" up mtu 1420
  done
  DST=$net.2
}

# One daemon, its interface ready for wg set. -f keeps the daemon in the process we started, so
# its pid is the one that does the work; WG_PROCESS_FOREGROUND=1 also drops the "use the kernel
# module" banner from the log.
wg_start() { # binary namespace interface side
  spawn "$2" "$BENCH_DIR/wireguard-$4.log" env LOG_LEVEL=error WG_PROCESS_FOREGROUND=1 "$1" -f "$3"
  note_daemon "$4" "$SPAWNED"
  for _ in $(seq 50); do [ -S "/var/run/wireguard/$3.sock" ] && break; sleep 0.1; done
  [ -S "/var/run/wireguard/$3.sock" ] || bench_fail "$LABEL did not create $3 in $2 within 5 s$(dead_daemons)"
}

# The daemons remove interface and socket on SIGTERM; this covers one that had to be killed.
wg_down() {
  ip -n "$A" link del "$WG_IF_A" 2>/dev/null || true
  ip -n "$B" link del "$WG_IF_B" 2>/dev/null || true
  rm -f "/var/run/wireguard/$WG_IF_A.sock" "/var/run/wireguard/$WG_IF_B.sock"
}
