#!/usr/bin/env bash
# sudo npm run demo — two machines (network namespaces joined by a veth pair), onboarded with
# vpnctl init/invite/join/add-peer, a daemon in each, then status, routes and a ping across the
# overlay. Everything is torn down at the end, on Ctrl-C and on failure.
# KEEP=1 leaves the lab running (namespaces vdemoA/vdemoB) until you press Enter.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root for network namespaces and TUN devices: sudo npm run demo"
[ -e /dev/net/tun ] || die "/dev/net/tun is missing (modprobe tun)"
if ! command -v ip >/dev/null || ! command -v ping >/dev/null; then
  command -v apt-get >/dev/null || die "install iproute2 and iputils-ping first"
  say "installing iproute2 and iputils-ping"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iputils-ping >/dev/null
fi
[ -d node_modules ] || { say "npm ci"; npm ci --no-audit --no-fund; }
[ -f dist/cmd/vpn.js ] && [ -f build/Release/vibepn_tun.node ] || { say "building"; npm run build; }

A=vdemoA B=vdemoB
WORK=$(mktemp -d /tmp/vibepn-demo.XXXXXX)
VPN="node $PWD/dist/cmd/vpn.js"
VPNCTL="node $PWD/dist/cmd/vpnctl.js"
PIDS=()

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
  if [ $code -ne 0 ]; then
    echo "demo failed; daemon logs:" >&2
    tail -n 20 "$WORK"/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  echo "cleaned up"
  exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "two machines: namespaces $A (192.0.2.1) and $B (192.0.2.2) on a veth pair"
ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true
ip netns add $A; ip netns add $B
ip link add vdemo0 type veth peer name vdemo1
ip link set vdemo0 netns $A; ip link set vdemo1 netns $B
ip -n $A addr add 192.0.2.1/24 dev vdemo0; ip -n $B addr add 192.0.2.2/24 dev vdemo1
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set vdemo0 up; ip -n $B link set vdemo1 up

node_flags() { # name
  echo --config "$WORK/$1/config.toml" --cert "$WORK/$1/node.crt" --key "$WORK/$1/node.key" --name "$1" \
    --socket "$WORK/$1/vpn.sock" --known-peers "$WORK/$1/known_peers.json" --metrics-listen 127.0.0.1:9000
}

say "alpha: vpnctl init"
$VPNCTL init $(node_flags alpha) --listen 192.0.2.1:51820
say "alpha: vpnctl invite"
INVITE=$($VPNCTL invite --config "$WORK/alpha/config.toml" --network corp --address 192.0.2.1:51820 --ttl 1h)
echo "$INVITE"
say "beta: vpnctl join"
JOIN=$($VPNCTL join $(node_flags beta) --listen 192.0.2.2:51820 --invite "$INVITE")
echo "$JOIN"
BETA_FP=$(sed -n 's/.*fingerprint \([0-9a-f]\{64\}\).*/\1/p' <<<"$JOIN" | head -n1)
say "alpha: vpnctl add-peer beta"
$VPNCTL add-peer --config "$WORK/alpha/config.toml" --name beta --address 192.0.2.2:51820 --fingerprint "$BETA_FP" --networks corp
$VPNCTL doctor --config "$WORK/beta/config.toml" | tail -n 1

say "starting a daemon in each namespace"
ip netns exec $A $VPN -config "$WORK/alpha/config.toml" 2>"$WORK/alpha.log" & PIDS+=($!)
ip netns exec $B $VPN -config "$WORK/beta/config.toml" 2>"$WORK/beta.log" & PIDS+=($!)
for _ in $(seq 100); do
  n=$($VPNCTL --socket "$WORK/alpha/vpn.sock" --json status 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).peers_connected)}catch{console.log(0)}})' || true)
  [ "$n" = 1 ] && break
  sleep 0.1
done
[ "$n" = 1 ] || die "the daemons did not connect within 10 s"

say "vpnctl status (alpha)"
$VPNCTL --socket "$WORK/alpha/vpn.sock" status
say "vpnctl routes (alpha)"
$VPNCTL --socket "$WORK/alpha/vpn.sock" routes
BETA_IP=$($VPNCTL --socket "$WORK/beta/vpn.sock" --json status | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).networks[0].address))')

say "ping from alpha to beta's overlay address $BETA_IP"
ip netns exec $A ping -c 3 -i 0.2 "$BETA_IP"
say "the tunnel works: alpha and beta reach each other over vibepn"
if [ "${KEEP:-}" = 1 ]; then read -r -p "lab is up (ip netns exec $A bash); press Enter to tear down " _; fi
