#!/usr/bin/env bash
# Storage figures on a large database, ours beside real etcd 3.4.23 on the SAME data (not for CI):
#   1. real etcd is filled with KEYS puts of VAL bytes (default 1M x 1 KiB, ~1.2 GB db) by bench/Etcd.Load;
#   2. its data dir is copied twice; real etcd and our bin/etcd each start on one copy;
#   3. for each: open time (process start -> endpoint health OK), snapshot save time, defrag time, and the
#      longest latency of etcdctl puts issued one after another while the defrag runs.
# Usage: bench/storage-1gb.sh [KEYS] [VAL]    (run from the repo root after scripts/publish.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
keys=${1:-1000000}
val=${2:-1024}
work=${WORK:-/tmp/etcd-storage-bench}
real=${REAL_ETCD:-/usr/bin/etcd}
ours=${OURS_ETCD:-$root/bin/etcd}
ctl=${ETCDCTL:-/usr/bin/etcdctl}
cport=24790; pport=24800
ep="127.0.0.1:$cport"
load_dir="$work/load"

reuse=${REUSE_FILL:-0}   # 1: keep an earlier run's filled data dir ($work/fill)
[ "$reuse" = 1 ] || rm -rf "$work"; mkdir -p "$work"
dotnet build "$root/bench/Etcd.Load" -c Release -o "$load_dir" --nologo -v q >/dev/null
load="$load_dir/etcd-load"

start() { # binary datadir log
  "$1" --name bench --data-dir "$2" --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" --quota-backend-bytes 8589934592 >"$3" 2>&1 &
  echo $!
}
wait_healthy() {
  for _ in $(seq 1 1200); do
    ETCDCTL_API=3 "$ctl" --endpoints "$ep" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "member did not become healthy" >&2; return 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
now() { date +%s.%N; }

if [ "$reuse" != 1 ]; then
  echo "filling real etcd with $keys puts of $val bytes"
  pid=$(start "$real" "$work/fill" "$work/fill.log"); wait_healthy
  "$load" put --endpoints "$ep" --clients 64 --conns 8 --total "$keys" --key-size 16 --val-size "$val" --key-space "$keys" --max-seconds 3600
  ETCDCTL_API=3 "$ctl" --endpoints "$ep" endpoint status -w table
  stop "$pid"
fi
set +e   # from here a timed-out request is a figure, not a reason to stop

for side in real ours; do
  rm -rf "$work/$side" "$work/$side.defrag-done"; cp -a "$work/fill" "$work/$side"
  bin=$real; [ $side = ours ] && bin=$ours
  if ETCDCTL_API=3 "$ctl" --endpoints "$ep" endpoint health >/dev/null 2>&1; then echo "$ep already serves: stop it first" >&2; exit 1; fi
  t0=$(now); pid=$(start "$bin" "$work/$side" "$work/$side.log"); wait_healthy; t1=$(now)
  kill -0 "$pid" || { echo "$side exited: $(tail -3 "$work/$side.log")" >&2; exit 1; }
  open=$(echo "$t1 - $t0" | bc)
  t0=$(now); ETCDCTL_API=3 "$ctl" --endpoints "$ep" --command-timeout 600s snapshot save "$work/$side.snap.db" >/dev/null 2>&1; t1=$(now)
  snap=$(echo "$t1 - $t0" | bc); rm -f "$work/$side.snap.db"
  a=$(now); ETCDCTL_API=3 "$ctl" --endpoints "$ep" --command-timeout 600s put stall-probe x >/dev/null; b=$(now); idle=$(echo "$b - $a" | bc)
  # One etcdctl put after another while the defrag runs: the slowest is the longest write stall
  # (each includes etcdctl's own start-up, ~30-50 ms, measured alone just before as "idle put").
  ( maxp=0; n=0
    while [ ! -f "$work/$side.defrag-done" ]; do
      a=$(now); ETCDCTL_API=3 "$ctl" --endpoints "$ep" --command-timeout 600s put stall-probe x >/dev/null; b=$(now)
      maxp=$(echo "if ($b - $a > $maxp) $b - $a else $maxp" | bc); n=$((n+1))
    done
    echo "$n puts, longest $maxp s" >"$work/$side.stall" ) &
  probe=$!
  t0=$(now); ETCDCTL_API=3 "$ctl" --endpoints "$ep" --command-timeout 600s defrag >/dev/null; t1=$(now)
  defrag=$(echo "$t1 - $t0" | bc)
  touch "$work/$side.defrag-done"; wait $probe
  size=$(ETCDCTL_API=3 "$ctl" --endpoints "$ep" endpoint status -w json | sed -E 's/.*"dbSize":([0-9]+).*/\1/')
  stop "$pid"
  printf '%-5s open %6.2f s  snapshot save %6.2f s  defrag %6.2f s  db after defrag %s bytes  idle put %.3f s  puts during defrag: %s\n' \
    "$side" "$open" "$snap" "$defrag" "$size" "$idle" "$(cat "$work/$side.stall")"
done
