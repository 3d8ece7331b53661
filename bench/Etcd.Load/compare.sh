#!/usr/bin/env bash
# Runs etcd-load's watch and keepalive modes against our bin/etcd and real etcd (/usr/bin/etcd), one server at a
# time, each on a fresh temp data dir on 127.0.0.1:23790 (peer 23800), with the same load; prints both results.
#   bench/Etcd.Load/compare.sh [extra etcd-load options for both modes]
# Needs: scripts/publish.sh run first (bin/etcd); the load tool is published to a temp dir here.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ours="${OURS:-$root/bin/etcd}"
theirs="${THEIRS:-/usr/bin/etcd}"
load_dir=$(mktemp -d /tmp/etcd-load.XXXXXX)
dotnet publish "$root/bench/Etcd.Load" -c Release -o "$load_dir" --nologo -v q >/dev/null
load="$load_dir/etcd-load"
ep=127.0.0.1:23790
WATCH_ARGS=${WATCH_ARGS:-"--watchers 1000 --streams 100 --conns 8 --clients 8 --total 2000 --val-size 256 --max-seconds 120"}
KEEPALIVE_ARGS=${KEEPALIVE_ARGS:-"--clients 64 --conns 8 --total 50000 --max-seconds 60"}

run_one() { # name binary
  local name=$1 bin=$2 data
  data=$(mktemp -d /tmp/etcd-cmp.XXXXXX)
  "$bin" --name cmp --data-dir "$data" \
    --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster cmp=http://127.0.0.1:23800 >"$data.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://$ep/health" >/dev/null && break; sleep 0.2; done
  echo "== $name ($bin)"
  "$load" watch --endpoints "$ep" $WATCH_ARGS "$@"
  "$load" keepalive --endpoints "$ep" $KEEPALIVE_ARGS "$@"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data" "$data.log"
}

run_one ours "$ours" "$@"
run_one etcd-3.4.23 "$theirs" "$@"
rm -rf "$load_dir"
