#!/usr/bin/env bash
# Put figures of one or two builds of our etcd beside real etcd 3.4.23, single member, in one run on this machine.
# Each round starts a fresh member of every implementation in turn (free 127.0.0.1 ports, temp data dir) and runs
# etcd-load's put mode twice: from the moment /health answers for FIRST_SECONDS (the first seconds after start,
# JIT warm-up included), then a warm run bounded by TOTAL puts or MAX_SECONDS. Rounds rotate the order of the
# implementations so drifting machine load hits each alike; the lines carry throughput and p50/p99, and the
# server's CPU time (user+system, from /proc) per 1000 puts, which a shared machine disturbs less than throughput.
#
#   bench/put-compare.sh                                    # ours (bin/etcd) beside /usr/bin/etcd
#   BEFORE=/path/to/old/bin/etcd bench/put-compare.sh       # old build, new build, etcd
#   ROUNDS=3 CLIENTS=32 CONNS=8 FIRST_SECONDS=10 TOTAL=30000 MAX_SECONDS=30 bench/put-compare.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ours=${ETCD_UNDER_TEST:-$root/bin/etcd}
before=${BEFORE:-}
real=${REAL_ETCD:-/usr/bin/etcd}
rounds=${ROUNDS:-2}
clients=${CLIENTS:-32}
conns=${CONNS:-8}
first_seconds=${FIRST_SECONDS:-10}
total=${TOTAL:-30000}
max_seconds=${MAX_SECONDS:-30}

[ -x "$ours" ] || { echo "put-compare: $ours not found (run scripts/publish.sh)" >&2; exit 1; }
[ -x "$real" ] || { echo "put-compare: $real not found" >&2; exit 1; }

echo "building etcd-load (Release)..." >&2
dotnet build "$root/bench/Etcd.Load/Etcd.Load.csproj" -c Release --nologo -v q >/dev/null
load_dll="$root/bench/Etcd.Load/bin/Release/net10.0/etcd-load.dll"

free_ports() { # two free 127.0.0.1 ports
  python3 - <<'PY'
import socket
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
PY
}

pid=""
data=""
cleanup() {
  [ -n "$pid" ] && { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$data" ] && rm -rf "$data" "$data.log"
  pid=""; data=""
}
trap cleanup EXIT

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

put_run() { # label what endpoint total seconds
  local c0 c1 line n
  c0=$(cpu "$pid")
  line=$(dotnet "$load_dll" put --endpoints "$3" --clients "$clients" --conns "$conns" --total "$4" --val-size 256 --max-seconds "$5" 2>/dev/null)
  c1=$(cpu "$pid")
  n=$(sed -nE 's/^put: ([0-9]+) requests.*/\1/p' <<<"$line")
  printf '%-8s %-10s %s; server cpu ms/1000 puts %s\n' "$1" "$2" "$line" \
    "$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1000 / hz * 1000 / n; else print "-" }')"
}

run_one() { # label binary
  local label=$1 bin=$2 cport pport ep
  read -r cport pport < <(free_ports)
  ep=127.0.0.1:$cport
  data=$(mktemp -d /tmp/etcd-put.XXXXXX)
  "$bin" --name put --data-dir "$data" \
    --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "put=http://127.0.0.1:$pport" >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 150); do curl -sf "http://$ep/health" >/dev/null && break; sleep 0.1; done
  put_run "$label" "first ${first_seconds}s" "$ep" 1000000 "$first_seconds"
  put_run "$label" warm "$ep" "$total" "$max_seconds"
  cleanup
}

impls=()
[ -n "$before" ] && impls+=("before:$before")
impls+=("ours:$ours" "etcd:$real")
n=${#impls[@]}
for r in $(seq 1 "$rounds"); do
  echo "== round $r"
  for i in $(seq 0 $((n - 1))); do
    item=${impls[$(( (i + r - 1) % n ))]}
    run_one "${item%%:*}" "${item#*:}"
  done
done
