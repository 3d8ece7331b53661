#!/usr/bin/env bash
# One-time set-up on a fresh clone: the Debian packages the tests compare against (real etcd 3.4.23,
# etcdctl, and etcd's e2e suite with Go), the NuGet restore, and the published binaries in ./bin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
[ -x /usr/bin/etcd ] || need+=(etcd-server)
[ -x /usr/bin/etcdctl ] || need+=(etcd-client)
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/etcd/tests/e2e ] || need+=(golang-etcd-server-dev)
# Prometheus' own text-format parser, which checks our /metrics output
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need+=(python3-prometheus-client)
# A third gRPC stack (grpcio's C core) in the in-process tests, beside grpc-go and grpc-dotnet
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
# The browser the dashboard tests drive through Playwright (tests/Etcd.Dashboard.Tests)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian's package starts a system etcd where systemd runs; our tests bring their own
  $SUDO systemctl stop etcd >/dev/null 2>&1 || true
  $SUDO pkill -x etcd >/dev/null 2>&1 || true
fi
dotnet restore "$root/Etcd.slnx" --nologo -v q
"$root/scripts/publish.sh"
