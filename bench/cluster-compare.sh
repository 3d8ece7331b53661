#!/usr/bin/env bash
# Cluster figures, ours beside real etcd 3.4.23, in one run on this machine: for each implementation, starts a
# 3-member cluster on 127.0.0.1 (free ports, temp data dirs), runs bench/Etcd.Load's put load and linearizable
# range load against it, prints throughput and latency, stops the cluster and deletes its data.
#
#   bench/cluster-compare.sh                       # ours (bin/etcd, or $ETCD_UNDER_TEST) then /usr/bin/etcd
#   CLIENTS=64 CONNS=8 TOTAL=20000 MAX_SECONDS=60 bench/cluster-compare.sh
#   IMPLS="ours" bench/cluster-compare.sh          # only one side
#   ORDER=given bench/cluster-compare.sh           # endpoints m0,m1,m2 as started (default: the leader first)
#
# etcd-load sends every request of a connection to its first reachable endpoint, so the endpoint order decides
# which member the load hits: by default the leader (puts go straight to it; linearizable ranges are served by it
# after a ReadIndex round), with ORDER=given whatever member m0 is (a follower 2 times in 3).
# Each put line is followed by every member's CPU time (user+system from /proc) per 1000 puts, leader first: on a
# shared machine CPU per request is steadier than throughput.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ours=${ETCD_UNDER_TEST:-$root/bin/etcd}
real=${REAL_ETCD:-/usr/bin/etcd}
etcdctl=${ETCDCTL:-/usr/bin/etcdctl}
clients=${CLIENTS:-64}
conns=${CONNS:-8}
total=${TOTAL:-20000}
max_seconds=${MAX_SECONDS:-60}
order=${ORDER:-leader}
impls=${IMPLS:-ours real}

[ -x "$ours" ] || { echo "cluster-compare: $ours not found (run scripts/publish.sh)" >&2; exit 1; }
[ -x "$real" ] || { echo "cluster-compare: $real not found" >&2; exit 1; }

echo "building etcd-load (Release)..." >&2
dotnet build "$root/bench/Etcd.Load/Etcd.Load.csproj" -c Release --nologo -v q >/dev/null
load_dll="$root/bench/Etcd.Load/bin/Release/net10.0/etcd-load.dll"
[ -f "$load_dll" ] || { echo "cluster-compare: $load_dll not built" >&2; exit 1; }

free_ports() { # N free 127.0.0.1 ports from the ephemeral range (clear of the e2e suite's 20000s)
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
PY
}

pids=()
work=""
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
  [ -n "$work" ] && rm -rf "$work"
  work=""
}
trap cleanup EXIT

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_impl() { # label binary
  local label=$1 bin=$2
  work=$(mktemp -d /tmp/cluster-compare.XXXXXX)
  read -r -a ports <<<"$(free_ports 6)"
  local initial="" endpoints=() i
  for i in 0 1 2; do initial+="${initial:+,}m$i=http://127.0.0.1:${ports[$((2*i+1))]}"; endpoints+=("127.0.0.1:${ports[$((2*i))]}"); done
  for i in 0 1 2; do
    local c=${ports[$((2*i))]} p=${ports[$((2*i+1))]}
    env -u ETCD_UNDER_TEST "$bin" --name "m$i" --data-dir "$work/m$i" \
      --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "compare-$label" \
      >"$work/m$i.log" 2>&1 &
    pids+=($!)
  done
  local deadline=$((SECONDS + 90))
  for i in 0 1 2; do
    until grep -q "ready to serve client requests" "$work/m$i.log"; do
      if [ $SECONDS -gt $deadline ]; then echo "cluster-compare: $label m$i not ready in 90 s" >&2; tail -20 "$work/m$i.log" >&2; return 1; fi
      sleep 0.2
    done
  done
  # The leader, from endpoint status (column 5 of the simple output is IS LEADER)
  local leader="" status
  until [ -n "$leader" ]; do
    status=$(ETCDCTL_API=3 "$etcdctl" --endpoints "$(IFS=,; echo "${endpoints[*]}")" endpoint status 2>/dev/null || true)
    leader=$(awk -F', ' '$5=="true"{print $1}' <<<"$status")
    if [ $SECONDS -gt $deadline ]; then echo "cluster-compare: $label has no leader" >&2; return 1; fi
    [ -n "$leader" ] || sleep 0.2
  done
  local ordered=("${endpoints[@]}")
  if [ "$order" = leader ]; then
    ordered=("$leader"); for e in "${endpoints[@]}"; do [ "$e" = "$leader" ] || ordered+=("$e"); done
  fi
  local eps; eps=$(IFS=,; echo "${ordered[*]}")
  local version; version=$("$bin" --version 2>/dev/null | sed -n 1p || true)
  echo "== $label: $bin ($version); 3 members; leader $leader; endpoints $eps; clients $clients conns $conns total $total max ${max_seconds}s"
  local -A cpu0=()
  for i in 0 1 2; do cpu0[$i]=$(cpu "${pids[$i]}"); done
  local line n
  line=$(dotnet "$load_dll" put --endpoints "$eps" --clients "$clients" --conns "$conns" --total "$total" --max-seconds "$max_seconds")
  echo "$label put:   $line"
  n=$(sed -nE 's/^put: ([0-9]+) requests.*/\1/p' <<<"$line")
  local cpus="" role
  for i in 0 1 2; do
    role=follower; [ "${endpoints[$i]}" = "$leader" ] && role=leader
    cpus+="${cpus:+, }m$i ($role) $(awk -v a="${cpu0[$i]}" -v b="$(cpu "${pids[$i]}")" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1000 / hz * 1000 / n; else print "-" }')"
  done
  echo "$label put cpu ms/1000 puts: $cpus"
  echo "$label range: $(dotnet "$load_dll" range --endpoints "$eps" --clients "$clients" --conns "$conns" --total "$total" --max-seconds "$max_seconds" --consistency l)"
  cleanup
}

for impl in $impls; do
  case $impl in
    ours) run_impl ours "$ours";;
    real) run_impl "etcd-3.4.23" "$real";;
    *) echo "cluster-compare: unknown implementation $impl (ours|real)" >&2; exit 2;;
  esac
done
