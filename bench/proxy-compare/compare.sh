#!/usr/bin/env bash
# Figures of our grpc-proxy beside etcd 3.4.23's, one run, both in front of one real etcd member:
#   W watchers of one key over C client connections through each proxy, P puts: events/s delivered, the member's
#   watcher count while they watch (etcd_debugging_mvcc_watcher_total; 1 upstream watch is the goal), the proxy's CPU
#   per 1000 events; then serializable gets of one key (the proxy's cache) for D: ops/s and CPU per 1000 gets.
# The client is a Go program on clientv3 (Debian's golang-etcd-server-dev, as run-e2e builds etcd's suite).
# Usage: bench/proxy-compare/compare.sh [WATCHERS=10000] [CLIENTS=100] [PUTS=50] [RANGE_SECONDS=10]
# Ports 42379/42380 (member), 43790 (ours), 43791 (etcd's). CPU figures are the meaningful ones on a busy machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-10000}; C=${2:-100}; P=${3:-50}; D=${4:-10}
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/src/proxybench" && cp "$root/bench/proxy-compare/main.go" "$work/src/proxybench/"
(cd "$work/src/proxybench" && GOPATH=/usr/share/gocode:$work GO111MODULE=off GOCACHE=$work/gocache go build -o "$work/bench" .)
/usr/bin/etcd --data-dir "$work/m.etcd" --listen-client-urls http://127.0.0.1:42379 --advertise-client-urls http://127.0.0.1:42379 \
  --listen-peer-urls http://127.0.0.1:42380 --initial-advertise-peer-urls http://127.0.0.1:42380 \
  --initial-cluster default=http://127.0.0.1:42380 >"$work/m.log" 2>&1 & echo $! >"$work/m.pid"
sleep 2
"$root/bin/etcd" grpc-proxy start --endpoints=127.0.0.1:42379 --listen-addr 127.0.0.1:43790 >"$work/ours.log" 2>&1 & echo $! >"$work/ours.pid"
/usr/bin/etcd grpc-proxy start --endpoints=127.0.0.1:42379 --listen-addr 127.0.0.1:43791 >"$work/etcd.log" 2>&1 & echo $! >"$work/etcd.pid"
sleep 3
for side in ours:43790 etcd:43791; do
  name=${side%%:*}; port=${side##*:}
  echo "== $name"
  "$work/bench" -endpoint 127.0.0.1:$port -member-metrics http://127.0.0.1:42379/metrics -watchers "$W" -clients "$C" -puts "$P" -proxy-pid "$(cat "$work/$name.pid")"
  "$work/bench" -endpoint 127.0.0.1:$port -clients 32 -ranges "${D}s" -proxy-pid "$(cat "$work/$name.pid")"
done
