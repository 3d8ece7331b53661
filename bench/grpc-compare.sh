#!/usr/bin/env bash
# Single-member put, range and lease keep-alive figures for up to three servers in one run, interleaved round by
# round (A B C, A B C, ...) so a machine whose load drifts hurts each side alike; prints every run, then each
# server's median throughput, p99 and server CPU time per request (utime+stime of the server process over the
# mode, from /proc/PID/stat: the figure that stays comparable on a loaded machine) and their ratios to the
# reference (the last server named).
#
#   bench/grpc-compare.sh                                   # bin/etcd beside /usr/bin/etcd
#   SERVERS="old=/tmp/old/etcd new=bin/etcd etcd=/usr/bin/etcd" ROUNDS=3 bench/grpc-compare.sh
#   CLIENTS=32 CONNS=4 TOTAL=10000 MAX_SECONDS=30 MODES="keepalive" bench/grpc-compare.sh
#
# Each run is a fresh member on a temp data dir with free ports on 127.0.0.1; the load is bench/Etcd.Load (our
# client, the same for every server), each mode bounded by --total and --max-seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
servers=${SERVERS:-"ours=$root/bin/etcd etcd=/usr/bin/etcd"}
rounds=${ROUNDS:-3}
clients=${CLIENTS:-32}
conns=${CONNS:-4}
total=${TOTAL:-10000}
max_seconds=${MAX_SECONDS:-30}
modes=${MODES:-"put range keepalive"}

load_dir=$(mktemp -d /tmp/grpc-compare-load.XXXXXX)
results=$(mktemp /tmp/grpc-compare-results.XXXXXX)
trap 'rm -rf "$load_dir" "$results"' EXIT
dotnet publish "$root/bench/Etcd.Load" -c Release -o "$load_dir" --nologo -v q >/dev/null
load="$load_dir/etcd-load"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

run_one() { # name binary round
  local name=$1 bin=$2 round=$3 data cport pport pid
  data=$(mktemp -d /tmp/grpc-compare-data.XXXXXX)
  cport=$(free_port); pport=$(free_port)
  "$bin" --name cmp --data-dir "$data/d" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "cmp=http://127.0.0.1:$pport" >"$data/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$cport/health" >/dev/null && break; sleep 0.2; done
  local ep="127.0.0.1:$cport" common="--clients $clients --conns $conns --total $total --max-seconds $max_seconds"
  for mode in $modes; do
    local args=$common
    [ "$mode" = put ] && args="$args --val-size 256"
    local line before after
    before=$(cpu_ticks "$pid")
    line=$("$load" "$mode" --endpoints "$ep" $args 2>&1 | grep -E 'req/s' | tail -1 || true)
    after=$(cpu_ticks "$pid")
    local rps p99 n cpu
    rps=$(sed -nE 's/.* = ([0-9]+) req\/s.*/\1/p' <<<"$line")
    p99=$(sed -nE 's/.* p99 ([0-9.]+) .*/\1/p' <<<"$line")
    n=$(sed -nE 's/^[a-z]+: ([0-9]+) requests.*/\1/p' <<<"$line")
    # server CPU microseconds per request
    cpu=$(python3 -c "print(f'{($after - $before) * 1e6 / $hz / max(${n:-0}, 1):.1f}')")
    echo "round $round $name $mode: $line; server cpu $cpu us/req"
    echo "$name $mode ${rps:-0} ${p99:-0} $cpu" >>"$results"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

for round in $(seq 1 "$rounds"); do
  for s in $servers; do
    run_one "${s%%=*}" "${s#*=}" "$round"
  done
done

ref=${servers##* }; ref=${ref%%=*}
echo
echo "median of $rounds rounds (ratio to $ref)"
python3 - "$results" "$ref" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
ref = sys.argv[2]
names = list(dict.fromkeys(r[0] for r in rows))
modes = list(dict.fromkeys(r[1] for r in rows))
med = {}
for n in names:
    for m in modes:
        sel = [r for r in rows if r[0] == n and r[1] == m]
        med[n, m] = tuple(statistics.median(float(r[i]) for r in sel) for i in (2, 3, 4))
for m in modes:
    for n in names:
        rps, p99, cpu = med[n, m]
        rr, rp, rc = med[ref, m]
        print(f"{m:9} {n:6} {rps:8.0f} req/s ({rps / rr if rr else 0:5.2f}x)   p99 {p99:7.2f} ms ({p99 / rp if rp else 0:5.2f}x)   cpu {cpu:7.1f} us/req ({cpu / rc if rc else 0:5.2f}x)")
PY
