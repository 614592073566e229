#!/usr/bin/env bash
# sudo npm run demo — two machines (network namespaces joined by a veth pair), onboarded with
# vpnctl init/invite/join (no add-peer: the roster does it), a daemon in each, then status, routes and a ping across the
# overlay. Everything is torn down at the end, on Ctrl-C and on failure.
# KEEP=1 leaves the lab up until you press Enter (try: sudo ip netns exec vlabA bash).
set -euo pipefail
source "$(dirname "$0")/lab.sh"

lab_prepare
say "two machines: namespaces $A (192.0.2.1) and $B (192.0.2.2) on a veth pair"
lab_up 1
say "vpnctl status (alpha)"
$VPNCTL --socket "$WORK/alpha/vpn.sock" status
say "vpnctl routes (alpha)"
$VPNCTL --socket "$WORK/alpha/vpn.sock" routes
BETA_IP=$(overlay_address beta)
say "ping from alpha to beta's overlay address $BETA_IP"
ip netns exec "$A" ping -c 3 -i 0.2 "$BETA_IP"
say "the tunnel works: alpha and beta reach each other over vibepn"
if [ "${KEEP:-}" = 1 ]; then read -r -p "lab is up (sudo ip netns exec $A bash); press Enter to tear down " _; fi
