# shellcheck shell=bash
# Sourced by bench.sh: runs the measurements for one system and leaves the raw outputs in
# $BENCH_DIR (iperf3 JSON, ping output, a `facts` file of /proc readings); report.mjs and
# report-scale.mjs do the arithmetic. Daemons are started through spawn so that bench_stop and
# the exit trap can end them even after the subshell that started them has died.

BENCH_DIR='' LABEL='' DST=''
BENCH_PIDS=$WORK/pids # not under $WORK at call time: vibepn_up points WORK elsewhere

spawn() { # namespace log command... -> SPAWNED
  ip netns exec "$1" "${@:3}" >"$2" 2>&1 &
  SPAWNED=$!
  echo "$SPAWNED" >>"$BENCH_PIDS"
}

note_daemon() { echo "daemon $1 $2" >>"$BENCH_DIR/facts"; } # side pid (side: A, B, n1, n2, ...)

bench_fail() { printf '%s\n' "$*" >"$BENCH_DIR/error"; die "$*"; }

alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

daemon_pids() { sed -n 's/^daemon \([A-Za-z0-9]*\) \([0-9]*\)$/\1 \2/p' "$BENCH_DIR/facts"; }

dead_daemons() { # appended to failure messages
  local side pid
  while read -r side pid; do alive "$pid" || printf ' (the daemon in %s exited)' "$side"; done < <(daemon_pids)
}

# TERM, then KILL after 3 s: a wedged daemon must not stall the remaining systems.
bench_stop() {
  [ -s "$BENCH_PIDS" ] || return 0
  local pids pid left
  pids=$(cat "$BENCH_PIDS")
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    left=
    for pid in $pids; do alive "$pid" && left=1; done
    [ -z "$left" ] && break
    sleep 0.1
  done
  for pid in $pids; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
  : >"$BENCH_PIDS"
}

snapshot() { # rss|rss_end|hwm|cpu_before|cpu_after [file]: one line per daemon, to facts or FILE
  local side pid stat f out=${2:-$BENCH_DIR/facts}
  while read -r side pid; do
    alive "$pid" || bench_fail "$LABEL: the daemon in $side (pid $pid) exited"
    case $1 in
      rss|rss_end) echo "${1}_kb $side $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")" ;;
      hwm) echo "hwm_kb $side $(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")" ;;
      cpu_*)
        # utime and stime are fields 14 and 15; the name before them may contain spaces.
        stat=$(<"/proc/$pid/stat"); read -ra f <<<"${stat##*) }"
        echo "$1 $side ${f[11]} ${f[12]}" ;;
    esac
  done < <(daemon_pids) >>"$out.new"
  cat "$out.new" >>"$out"; rm "$out.new"
}

# The whole host's CPU lines and the wall clock, beside a snapshot: idle time left during a
# transfer shows how much other work (a test run, say) competed with it.
host_mark() { # before|after [file]
  printf 'host_%s %s\ntime_%s %s\n' "$1" "$(head -n 1 /proc/stat)" "$1" "$(date +%s.%N)" >>"${2:-$BENCH_DIR/facts}"
}

wait_ping() { # destination [namespace, default A]: tunnels that handshake on first use, and interfaces still coming up
  local until=$((SECONDS + 10)) ns=${2:-$A}
  while [ $SECONDS -lt $until ]; do
    ip netns exec "$ns" ping -c 1 -W 1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  bench_fail "$LABEL: no ping reply from $1 in $ns within 10 s$(dead_daemons)"
}

iperf() { # destination streams
  local out=$BENCH_DIR/iperf$2.json rc=0
  timeout $((T + 30)) ip netns exec "$A" iperf3 -c "$1" -t "$T" -P "$2" -J --connect-timeout 5000 \
    >"$out" 2>"${out%.json}.err" || rc=$?
  [ $rc = 0 ] || bench_fail "$LABEL: iperf3 -P $2 to $1 failed (exit $rc$([ $rc = 124 ] && echo ', timed out')):" \
    "$(json_field 'j.error' <"$out")$(head -c 200 "${out%.json}.err")$(dead_daemons)"
}

measure() { # destination
  local dst=$1 dev
  echo "dst $dst" >>"$BENCH_DIR/facts"
  echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$BENCH_DIR/facts"
  wait_ping "$dst"
  dev=$(ip -n "$A" route get "$dst" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  echo "mtu $(ip netns exec "$A" cat "/sys/class/net/$dev/mtu")" >>"$BENCH_DIR/facts"
  sleep 0.5 # let the connection's first allocations settle before calling the memory idle
  snapshot rss
  # Before the transfers: the ping figures are for an otherwise idle tunnel.
  if part pair; then
    ip netns exec "$A" ping -c "$PINGS" -i 0.01 -W 1 "$dst" >"$BENCH_DIR/ping.txt" 2>&1 ||
      bench_fail "$LABEL: ping to $dst got no reply$(dead_daemons)"
  fi
  spawn "$B" "$BENCH_DIR/iperf3-server.log" iperf3 -s
  wait_listening "$B" 1
  snapshot cpu_before; host_mark before
  iperf "$dst" 1
  snapshot cpu_after; host_mark after
  if part flows; then
    # Parallel flows (PARTS flows): 4 and 16 streams, each with its own CPU readings.
    local p
    for p in $FLOWS_MORE; do
      snapshot cpu_before "$BENCH_DIR/flows$p.facts"; host_mark before "$BENCH_DIR/flows$p.facts"
      iperf "$dst" "$p"
      snapshot cpu_after "$BENCH_DIR/flows$p.facts"; host_mark after "$BENCH_DIR/flows$p.facts"
    done
  else
    iperf "$dst" 4
  fi
  snapshot hwm
}

FLOWS_MORE="4 16" # beside the 1-stream transfer; report-scale.mjs reads the same counts

wait_listening() { # namespace count: iperf3 servers on ports 5201 and up, up to 5 s
  local n=0
  for _ in $(seq 50); do
    n=$(ip netns exec "$1" ss -Hltn 'sport >= :5201 and sport < :5456' | wc -l)
    [ "$n" -ge "$2" ] && return 0
    sleep 0.1
  done
  bench_fail "$LABEL: $n of $2 iperf3 servers listening in $1 after 5 s (see iperf3-server*.log)"
}
