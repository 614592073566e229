# shellcheck shell=bash
# Sourced by bench.sh: the "current" anchors, built from source through the Go module proxy into
# bench/.anchors (git-ignored). Builds run as the user who ran sudo, so the cache stays theirs.
# A binary is rebuilt only when the module version embedded in it differs from the one wanted,
# which `go version -m` reads without running it.

ANCHORS_BIN=$REPO/bench/.anchors/bin
WIREGUARD_VERSION=${WIREGUARD_VERSION:-latest}
# v1.11 and later need github.com/DefinedNet/netlink, which the module proxy refuses.
NEBULA_VERSION=${NEBULA_VERSION:-v1.10.3}
# Used only when a module's go.mod asks for a newer Go than the installed one.
ANCHORS_GOTOOLCHAIN=${ANCHORS_GOTOOLCHAIN:-go1.27.3}
GO=

anchors_go() {
  [ -n "$GO" ] && return 0
  GO=$(command -v go || true)
  [ -n "$GO" ] || { [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go; } ||
    die "Go is needed to build the current anchors (install it, or leave wg-current and nebula-current out of SYSTEMS)"
}

anchor_module_version() { # binary -> version of the main module it was built from, or nothing
  [ -x "$1" ] || return 0
  anchors_go
  "$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3 }'
}

anchor_go_install() { # env assignments... -- packages@version...
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  as_user env GOBIN="$ANCHORS_BIN" "${envs[@]}" nice -n 10 "$GO" install "$@"
}

anchor_install() { # version package...   (packages of one module)
  local version=$1 log=$WORK/anchors-build.log pkgs=() p
  shift
  for p in "$@"; do pkgs+=("$p@$version"); done
  say "building ${pkgs[*]} into bench/.anchors"
  as_user mkdir -p "$ANCHORS_BIN"
  anchor_go_install -- "${pkgs[@]}" >"$log" 2>&1 && return 0
  if grep -q 'requires go' "$log"; then
    say "the installed $("$GO" env GOVERSION) is too old; retrying with GOTOOLCHAIN=$ANCHORS_GOTOOLCHAIN"
    anchor_go_install GOTOOLCHAIN="$ANCHORS_GOTOOLCHAIN" -- "${pkgs[@]}" >"$log" 2>&1 && return 0
  fi
  tail -n 20 "$log" >&2
  die "go install ${pkgs[*]} failed"
}

anchors_build_wireguard() {
  anchors_go
  local have want=$WIREGUARD_VERSION
  have=$(anchor_module_version "$ANCHORS_BIN/wireguard")
  if [ "$want" = latest ]; then
    # Resolved every run so that a newer release replaces the cached build; offline, the cache does.
    if ! want=$(cd / && as_user "$GO" list -m -f '{{.Version}}' golang.zx2c4.com/wireguard@latest 2>/dev/null); then
      [ -n "$have" ] || die "cannot resolve golang.zx2c4.com/wireguard@latest (Go module proxy unreachable?)"
      echo "note: golang.zx2c4.com/wireguard@latest unresolvable, using the cached $have" >&2
      want=$have
    fi
  fi
  [ "$have" = "$want" ] || anchor_install "$want" golang.zx2c4.com/wireguard
}

anchors_build_nebula() {
  anchors_go
  if [ "$(anchor_module_version "$ANCHORS_BIN/nebula")" != "$NEBULA_VERSION" ] ||
     [ "$(anchor_module_version "$ANCHORS_BIN/nebula-cert")" != "$NEBULA_VERSION" ]; then
    anchor_install "$NEBULA_VERSION" github.com/slackhq/nebula/cmd/nebula github.com/slackhq/nebula/cmd/nebula-cert
  fi
}
