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
  local net=10.$2.0 d=$BENCH_DIR cert ipflag=-networks side ns me mine theirs
  cert=$(nebula_binary "$1" nebula-cert)
  [ "$1" = debian ] && ipflag=-ip
  (cd "$d" && "$cert" ca -name vbench >/dev/null &&
    "$cert" sign -name a "$ipflag" "$net.1/24" && "$cert" sign -name b "$ipflag" "$net.2/24")
  for side in A B; do
    if [ "$side" = A ]; then ns=$A me=a mine=1 theirs=2; else ns=$B me=b mine=2 theirs=1; fi
    cat >"$d/$me.yml" <<YAML
pki: {ca: $d/ca.crt, cert: $d/$me.crt, key: $d/$me.key}
static_host_map: {"$net.$theirs": ["192.0.2.$theirs:4242"]}
lighthouse: {am_lighthouse: false}
listen: {host: 0.0.0.0, port: 4242}
tun: {dev: neb0, mtu: 1300}
logging: {level: error}
firewall:
  outbound: [{port: any, proto: any, host: any}]
  inbound: [{port: any, proto: any, host: any}]
YAML
    spawn "$ns" "$d/nebula-$side.log" "$(nebula_binary "$1" nebula)" -config "$d/$me.yml"
    note_daemon "$side" "$SPAWNED"
  done
  DST=$net.2
}
