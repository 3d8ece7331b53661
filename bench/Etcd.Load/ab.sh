#!/usr/bin/env bash
# A/B throughput of two builds of our etcd (e.g. before and after a change) under etcd-load's put and range modes:
# each round starts a fresh single member of A, then of B, on a temp data dir at 127.0.0.1:23790 (peer 23800) and
# runs the same bounded load; rounds alternate the order (AB, BA, AB, ...) so that drifting machine load hits both.
#   A=/path/to/old/bin/etcd B=bin/etcd ROUNDS=3 bench/Etcd.Load/ab.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
a="${A:?set A to the first etcd binary}"
b="${B:-$root/bin/etcd}"
rounds="${ROUNDS:-3}"
PUT_ARGS=${PUT_ARGS:-"--clients 64 --conns 8 --total 20000 --val-size 256 --max-seconds 60"}
RANGE_ARGS=${RANGE_ARGS:-"--clients 64 --conns 8 --total 50000 --consistency s --max-seconds 60"}
load_dir=$(mktemp -d /tmp/etcd-load.XXXXXX)
dotnet publish "$root/bench/Etcd.Load" -c Release -o "$load_dir" --nologo -v q >/dev/null
load="$load_dir/etcd-load"
ep=127.0.0.1:23790

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks() { awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }'; }

run_one() { # label binary
  local label=$1 bin=$2 data pid
  data=$(mktemp -d /tmp/etcd-ab.XXXXXX)
  "$bin" --name ab --data-dir "$data" \
    --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster ab=http://127.0.0.1:23800 >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://$ep/health" >/dev/null && break; sleep 0.2; done
  # Server CPU per mode (user+system, from /proc) is steadier than throughput on a shared machine.
  local c0 c1 c2
  c0=$(cpu "$pid"); echo "== $label put";   "$load" put   --endpoints "$ep" $PUT_ARGS
  c1=$(cpu "$pid"); echo "== $label range"; "$load" range --endpoints "$ep" $RANGE_ARGS
  c2=$(cpu "$pid")
  echo "== $label server cpu: put $(ticks "$c0" "$c1") s, range $(ticks "$c1" "$c2") s"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data" "$data.log"
}

for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then
    run_one "A#$r" "$a"; run_one "B#$r" "$b"
  else
    run_one "B#$r" "$b"; run_one "A#$r" "$a"
  fi
done
rm -rf "$load_dir"
