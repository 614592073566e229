# shellcheck shell=bash
# Sourced by bench.sh: Nebula in both namespaces, either the Debian package (1.6) or the current
# release from anchors.sh. Static host map and no lighthouse, MTU 1300 (Nebula's default),
# firewall open both ways. Each release signs its own certificates: 1.6 cannot read what newer
# nebula-cert writes by default, and newer ones call -ip -networks.

nebula_binary() { # debian|current nebula|nebula-cert
  case $1 in
    debian) command -v "$2" ;;
    current) echo "$ANCHORS_BIN/$2" ;;
  esac
}

nebula_version() { # debian|current
  local v
  v=$("$(nebula_binary "$1" nebula)" -version | sed 's/^Version: //')
  case $1 in
    debian) echo "$v (Debian package $(dpkg-query -W -f '${Version}' nebula 2>/dev/null || echo '?'))" ;;
    current) echo "$v (module $(anchor_module_version "$ANCHORS_BIN/nebula"))" ;;
  esac
}

nebula_up() { # debian|current subnet-octet -> DST
  local net=10.$2.0 side ns me theirs
  nebula_certs "$1" "$net" a:1 b:2
  for side in A B; do
    if [ "$side" = A ]; then ns=$A me=a theirs=2; else ns=$B me=b theirs=1; fi
    nebula_config "$me" "\"$net.$theirs\": [\"192.0.2.$theirs:4242\"]"
    spawn "$ns" "$BENCH_DIR/nebula-$side.log" "$(nebula_binary "$1" nebula)" -config "$BENCH_DIR/$me.yml"
    note_daemon "$side" "$SPAWNED"
  done
  DST=$net.2
}

nebula_certs() { # debian|current net(a.b.c) name:host...  a CA, and a certificate for net.host/24 per name, in $BENCH_DIR
  local cert ipflag=-networks nh
  cert=$(nebula_binary "$1" nebula-cert)
  [ "$1" = debian ] && ipflag=-ip
  (cd "$BENCH_DIR" && "$cert" ca -name vbench >/dev/null) || bench_fail "$LABEL: nebula-cert ca failed"
  for nh in "${@:3}"; do
    (cd "$BENCH_DIR" && "$cert" sign -name "${nh%%:*}" "$ipflag" "$2.${nh#*:}/24") ||
      bench_fail "$LABEL: nebula-cert sign ${nh%%:*} failed"
  done
}

nebula_config() { # name static-host-map-entries -> $BENCH_DIR/NAME.yml
  local d=$BENCH_DIR
  cat >"$d/$1.yml" <<YAML
pki: {ca: $d/ca.crt, cert: $d/$1.crt, key: $d/$1.key}
static_host_map: {$2}
lighthouse: {am_lighthouse: false}
listen: {host: 0.0.0.0, port: 4242}
tun: {dev: neb0, mtu: 1300}
logging: {level: error}
firewall:
  outbound: [{port: any, proto: any, host: any}]
  inbound: [{port: any, proto: any, host: any}]
YAML
}
