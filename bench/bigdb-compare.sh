#!/usr/bin/env bash
# Large-database figures, ours beside real etcd on the same machine and the same data (the Storage issue's 1 GB
# check): fill N keys of V bytes, restart (open time), defragment while a probe measures the longest put/range
# stall, snapshot save. One server at a time; everything under a temp dir that is removed at the end.
#
#   bench/bigdb-compare.sh [--keys 1000000] [--val-size 1024] [--servers "real ours"]
#
# Needs bin/etcd (scripts/publish.sh), /usr/bin/etcd and /usr/bin/etcdctl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
keys=1000000; val=1024; servers="real ours"
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) keys=$2; shift 2;; --val-size) val=$2; shift 2;; --servers) servers=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
dotnet build "$root/bench/Etcd.BigDb" -c Release -o "$root/bench/Etcd.BigDb/out" --nologo -v q >/dev/null
bigdb="$root/bench/Etcd.BigDb/out/etcd-bigdb"
port=32379; pport=32380; ep=127.0.0.1:$port
work=$(mktemp -d /tmp/bigdb-XXXXXX); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
ctl() { ETCDCTL_API=3 /usr/bin/etcdctl --endpoints "$ep" --command-timeout=30m "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

start() { # start <binary> <data-dir>; waits until the member answers
  "$1" --name bigdb --data-dir "$2" --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bigdb=http://127.0.0.1:$pport" --quota-backend-bytes 8589934592 >"$2.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 6000); do
    ctl endpoint health >/dev/null 2>&1 && return 0
    kill -0 $pid 2>/dev/null || { echo "member exited; log:"; tail -20 "$2.log"; exit 1; }
    sleep 0.05
  done
  echo "member not healthy after 300 s" >&2; exit 1
}
stop() { kill -TERM $pid; wait $pid 2>/dev/null || true; }

for s in $servers; do
  case $s in real) bin=/usr/bin/etcd;; ours) bin="$root/bin/etcd";; esac
  dir="$work/$s.etcd"
  echo "== $s ($bin), $keys keys x $val B"
  start "$bin" "$dir"
  "$bigdb" fill --endpoints "$ep" --keys "$keys" --val-size "$val"
  ctl endpoint status -w table | sed -n 4p
  stop
  t=$(now); start "$bin" "$dir"; echo "open: $(since "$t") s (start to healthy)"
  rm -f "$work/stop"
  "$bigdb" probe --endpoints "$ep" --max-seconds 1800 --stop-file "$work/stop" > "$work/probe.txt" &
  probe=$!
  sleep 2
  t=$(now); ctl defrag >/dev/null; echo "defrag: $(since "$t") s"
  sleep 1; touch "$work/stop"; wait $probe; echo "during defrag, $(cat "$work/probe.txt")"
  ctl endpoint status -w table | sed -n 4p
  t=$(now); ctl snapshot save "$work/$s.snap.db" >/dev/null 2>&1; echo "snapshot save: $(since "$t") s ($(stat -c %s "$work/$s.snap.db") bytes)"
  rm -f "$work/$s.snap.db"
  stop
  rm -rf "$dir"
done
