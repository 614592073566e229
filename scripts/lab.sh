# Sourced by demo.sh and bench.sh: two hosts (network namespaces $A and $B joined by a veth pair,
# underlay 192.0.2.1 <-> 192.0.2.2), onboarded with vpnctl init/invite/join, one vibepn
# daemon in each. Call lab_up (it waits until they connect); lab_down runs on exit. bench.sh uses
# the parts separately (lab_netns, lab_onboard) because it restarts the daemons per measurement.

A=${A:-vlabA} B=${B:-vlabB}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The heap setting examples/systemd/vibepn.service ships: a 1 MB young generation keeps a daemon's
# peak resident memory under traffic ~25 MB lower for no measurable CPU (bench/PROFILING.md, "Memory").
VPN="node --max-semi-space-size=1 $REPO/dist/cmd/vpn.js"
VPNCTL="node $REPO/dist/cmd/vpnctl.js"
WORK=$(mktemp -d /tmp/vibepn-lab.XXXXXX)
LAB_PIDS=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Under sudo, install and build as the user who ran sudo, so a later `npm test` without sudo
# can still write node_modules, dist and build.
as_user() {
  if [ -z "${SUDO_USER:-}" ] || [ "$SUDO_USER" = root ]; then "$@"; return; fi
  local home
  home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
  if command -v sudo >/dev/null; then sudo -u "$SUDO_USER" -- env HOME="$home" "$@"
  else runuser -u "$SUDO_USER" -- env HOME="$home" "$@"; fi
}

# Checks root and TUN, installs missing Debian packages (apt), builds the project if needed.
# A package whose command has another name is given as command:package (wg:wireguard-tools).
lab_prepare() { # packages...
  [ "$(id -u)" = 0 ] || die "needs root for network namespaces and TUN devices (sudo)"
  [ -e /dev/net/tun ] || die "/dev/net/tun is missing (modprobe tun)"
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v ping >/dev/null || missing+=(iputils-ping)
  for pkg in "$@"; do command -v "${pkg%%:*}" >/dev/null || missing+=("${pkg#*:}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "install ${missing[*]} first"
    say "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  cd "$REPO"
  local npm
  npm=$(command -v npm) || die "npm not found (install Node.js 20)"
  [ -d node_modules ] || { say "npm ci"; as_user "$npm" ci --no-audit --no-fund; }
  [ -f build/Release/vibepn_tun.node ] || { say "building the TUN addon"; as_user "$npm" run build:native; }
  [ -f dist/cmd/vpn.js ] || { say "building"; as_user "$npm" run build; }
}

lab_down() {
  local code=$?
  trap - EXIT INT TERM
  for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${LAB_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  if [ $code -ne 0 ]; then
    echo "failed; daemon logs:" >&2
    tail -n 20 "$WORK"/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit $code
}

node_flags() { # name
  echo --config "$WORK/$1/config.toml" --cert "$WORK/$1/node.crt" --key "$WORK/$1/node.key" --name "$1" \
    --socket "$WORK/$1/vpn.sock" --known-peers "$WORK/$1/known_peers.json" --metrics-listen 127.0.0.1:9000
}

json_field() { # expression on the parsed JSON `j`, reads stdin
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log('"$1"')}catch{console.log("")}})'
}

lab_up() { # verbose(0|1)
  trap lab_down EXIT
  trap 'exit 130' INT TERM
  lab_netns
  lab_onboard "${1:-0}"
  [ "${1:-0}" = 1 ] && say "starting a daemon in each namespace"
  ip netns exec "$A" $VPN -config "$WORK/alpha/config.toml" 2>"$WORK/alpha.log" & LAB_PIDS+=($!)
  ip netns exec "$B" $VPN -config "$WORK/beta/config.toml" 2>"$WORK/beta.log" & LAB_PIDS+=($!)
  lab_wait_connected
}

# The veth ends are created inside the namespaces, so their names never meet another lab's in the
# root namespace (the demo and the bench may run at the same time).
lab_netns() {
  ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true
  ip netns add "$A"; ip netns add "$B"
  ip link add vlab0 netns "$A" type veth peer name vlab1 netns "$B"
  ip -n "$A" addr add 192.0.2.1/24 dev vlab0; ip -n "$B" addr add 192.0.2.2/24 dev vlab1
  for n in "$A" "$B"; do ip -n "$n" link set lo up; done
  ip -n "$A" link set vlab0 up; ip -n "$B" link set vlab1 up
}

# Writes $WORK/alpha and $WORK/beta: configs and certificates. alpha creates the network (and is
# its admin), beta joins with a short invite; beta's daemon redeems it on its first connection,
# and alpha learns beta from the signed roster: nothing is run on alpha after the invite.
lab_onboard() { # verbose(0|1)
  local show=${1:-0} out
  [ "$show" = 1 ] && say "alpha: vpnctl init"
  out=$($VPNCTL init $(node_flags alpha) --listen 192.0.2.1:51820); [ "$show" = 1 ] && echo "$out"
  [ "$show" = 1 ] && say "alpha: vpnctl invite --network corp --address 192.0.2.1:51820"
  INVITE=$($VPNCTL invite --config "$WORK/alpha/config.toml" --network corp --address 192.0.2.1:51820 --ttl 1h 2>/dev/null)
  [ "$show" = 1 ] && echo "$INVITE"
  [ "$show" = 1 ] && say "beta: vpnctl join --invite $INVITE"
  out=$($VPNCTL join $(node_flags beta) --listen 192.0.2.2:51820 --invite "$INVITE"); [ "$show" = 1 ] && echo "$out"
  local alpha_addr beta_addr
  alpha_addr=$($VPNCTL --json whoami --config "$WORK/alpha/config.toml" | json_field 'j.networks[0].address')
  beta_addr=$($VPNCTL --json whoami --config "$WORK/beta/config.toml" | json_field 'j.networks[0].address')
  if [ "$alpha_addr" = "$beta_addr" ]; then
    # Random keys: 1 pair in 254 derives the same auto address in the /24 (alpha would refuse the
    # redemption with member.address_taken). New keys, new addresses.
    [ "${LAB_ONBOARD_TRIES:-0}" -lt 3 ] || die "alpha and beta derived the same overlay address three times"
    rm -rf "${WORK:?}/alpha" "${WORK:?}/beta"
    LAB_ONBOARD_TRIES=$((${LAB_ONBOARD_TRIES:-0} + 1)) lab_onboard "$show"
    return
  fi
  [ "$show" = 1 ] && $VPNCTL doctor --config "$WORK/beta/config.toml" | tail -n 1
  for n in alpha beta; do lab_set_mtu "$WORK/$n/config.toml"; done
}

# MTU=N: the overlay MTU of network corp (default 8000) in one node's config; nothing when unset.
lab_set_mtu() { # config.toml
  [ -n "${MTU:-}" ] || return 0
  sed -i "/^\[networks\.corp\]/,/^prefix = /{/^prefix = /a mtu = $MTU
}" "$1"
}

lab_wait_connected() {
  local n=0
  for _ in $(seq 100); do
    n=$($VPNCTL --socket "$WORK/alpha/vpn.sock" --json status 2>/dev/null | json_field 'j.peers_connected' || true)
    [ "$n" = 1 ] && return 0
    sleep 0.1
  done
  die "the daemons did not connect within 10 s"
}

overlay_address() { # name
  $VPNCTL --socket "$WORK/$1/vpn.sock" --json status | json_field 'j.networks[0].address'
}
