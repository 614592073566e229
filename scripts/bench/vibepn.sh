# shellcheck shell=bash
# Sourced by bench.sh: vibepn as lab.sh sets it up (vpnctl init/invite/join, vibepn's
# default overlay MTU unless MTU is set), onboarded afresh for every measurement so that rounds
# do not share state.

vibepn_version() {
  local v git built
  v=$(node -p "require('$REPO/package.json').version")
  git=$(GIT_OPTIONAL_LOCKS=0 git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
  # The newest file: an incremental build rewrites only what changed.
  built=$(date -u -d "@$(find "$REPO/dist" -type f -printf '%T@\n' | sort -n | tail -n 1)" +%Y-%m-%dT%H:%M:%SZ)
  echo "$v (git $git, dist built $built, node $(node --version), run as: ${VPN% *} vpn.js)"
}

vibepn_up() { # -> DST
  local alpha_ip
  # lab.sh keeps both nodes' files and control sockets under $WORK; this runs in a subshell.
  # lab_onboard draws new keys when the two would derive the same auto address.
  WORK=$BENCH_DIR/nodes
  mkdir -p "$WORK"
  lab_onboard 0
  sed -i '/^daemon /d' "$BENCH_DIR/facts"
  # shellcheck disable=SC2086 # $VPN is "node <flags> .../vpn.js"
  spawn "$A" "$BENCH_DIR/alpha.log" $VPN -config "$WORK/alpha/config.toml"
  note_daemon A "$SPAWNED"
  # shellcheck disable=SC2086
  spawn "$B" "$BENCH_DIR/beta.log" $VPN -config "$WORK/beta/config.toml"
  note_daemon B "$SPAWNED"
  vibepn_wait_connected
  DST=$(overlay_address beta) alpha_ip=$(overlay_address alpha)
  [ -n "$DST" ] || bench_fail "vibepn: beta reports no overlay address"
  [ "$DST" != "$alpha_ip" ] || bench_fail "vibepn: alpha and beta both derived $DST (lab_onboard should have drawn new keys)"
}

# Like lab_wait_connected, but gives up as soon as a daemon has exited, and counts wall time
# (each vpnctl call is a Node start-up, a good part of a 0.1 s poll).
vibepn_wait_connected() {
  local until=$((SECONDS + 10)) n
  while [ $SECONDS -lt $until ]; do
    [ -z "$(dead_daemons)" ] || bench_fail "vibepn: a daemon exited before connecting$(dead_daemons)"
    n=$($VPNCTL --socket "$WORK/alpha/vpn.sock" --json status 2>/dev/null | json_field 'j.peers_connected' || true)
    [ "$n" = 1 ] && return 0
    sleep 0.1
  done
  bench_fail "vibepn: the daemons did not connect within 10 s$(dead_daemons)"
}
