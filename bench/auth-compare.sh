#!/usr/bin/env bash
# Auth figures beside real etcd 3.4.23, one run: Authenticate/s and put/s with auth enabled, with simple tokens and
# with JWT (RS256), for our bin/etcd and /usr/bin/etcd, one server at a time, each on a fresh temp data dir on
# 127.0.0.1:23790 (peer 23800), default --bcrypt-cost (10), the same load.
#   bench/auth-compare.sh [extra etcd-load options]
# Env: AUTH_ARGS (Authenticate load, default 64 clients / 2000 calls), PUT_ARGS (put load with a token, default
# 64 clients / 20000 puts), OURS, THEIRS. Needs scripts/publish.sh run first; etcd-load is published to a temp dir.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ours="${OURS:-$root/bin/etcd}"
theirs="${THEIRS:-/usr/bin/etcd}"
etcdctl="${ETCDCTL:-/usr/bin/etcdctl}"
work=$(mktemp -d /tmp/etcd-auth-cmp.XXXXXX)
trap 'rm -rf "$work"' EXIT
dotnet publish "$root/bench/Etcd.Load" -c Release -o "$work/load" --nologo -v q >/dev/null
load="$work/load/etcd-load"
ep=127.0.0.1:23790
AUTH_ARGS=${AUTH_ARGS:-"--clients 64 --conns 8 --total 2000 --max-seconds 120"}
PUT_ARGS=${PUT_ARGS:-"--clients 64 --conns 8 --total 20000 --key-size 8 --val-size 256 --max-seconds 120"}

# One RS256 key pair for the JWT runs (a certificate as the public key, as etcd's e2e fixtures use).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/jwt.key" -out "$work/jwt.crt" -days 1 -subj /CN=jwt 2>/dev/null

run_one() { # name binary token-kind
  local name=$1 bin=$2 kind=$3 data pid
  local token_flags=()
  if [ "$kind" = jwt ]; then token_flags=(--auth-token "jwt,pub-key=$work/jwt.crt,priv-key=$work/jwt.key,sign-method=RS256,ttl=10m"); fi
  data=$(mktemp -d "$work/data.XXXXXX")
  "$bin" --name cmp --data-dir "$data" "${token_flags[@]}" \
    --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster cmp=http://127.0.0.1:23800 >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://$ep/health" >/dev/null && break; sleep 0.2; done
  for c in "user add root:rootpw" "role add root" "user grant-role root root" "user add bench:benchpw" \
           "role add bench" "role grant-permission bench readwrite 0 :" "user grant-role bench bench" "auth enable"; do
    # etcd-load's keys are decimal digits: [0, :) covers them all. shellcheck disable=SC2086
    ETCDCTL_API=3 "$etcdctl" --endpoints "$ep" $c >/dev/null
  done
  echo "== $name, $kind tokens ($bin)"
  "$load" authenticate --endpoints "$ep" --user bench:benchpw $AUTH_ARGS "$@"
  "$load" put --endpoints "$ep" --user bench:benchpw $PUT_ARGS "$@"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for kind in simple jwt; do
  run_one ours "$ours" "$kind" "$@"
  run_one etcd-3.4.23 "$theirs" "$kind" "$@"
done
