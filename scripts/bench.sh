#!/usr/bin/env bash
# sudo npm run bench — throughput and latency through vibepn between two network namespaces,
# measured like ../shared/bench/anchors.sh measures veth, wireguard-go and Nebula: iperf3 TCP
# A->B for T seconds (default 10) and the average of 20 pings. MTU=8000 sets the overlay MTU of
# both nodes (default 1280). ANCHORS=1 also runs the anchors
# script when it is present beside the repository, so the figures come from one session.
set -euo pipefail
source "$(dirname "$0")/lab.sh"
T=${T:-10}

lab_prepare iperf3
lab_up 0
BETA_IP=$(overlay_address beta)
ip netns exec "$B" iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.5
mbit=$(ip netns exec "$A" iperf3 -c "$BETA_IP" -t "$T" -J 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(Math.round(JSON.parse(s).end.sum_received.bits_per_second/1e6))}catch{console.log(0)}})')
rtt=$(ip netns exec "$A" ping -q -c 20 -i 0.05 "$BETA_IP" | awk -F/ '/rtt/{print $5}')
echo "vibepn${MTU:+ mtu=$MTU} tcp_mbit=$mbit ping_ms=${rtt:-none}"
if [ "${ANCHORS:-}" = 1 ]; then
  anchors="$REPO/../shared/bench/anchors.sh"
  [ -f "$anchors" ] || die "ANCHORS=1 but $anchors is missing"
  T=$T bash "$anchors"
fi
