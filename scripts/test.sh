#!/usr/bin/env bash
# Runs every test: the unit and in-process tests (dotnet test; this includes the process-based projects
# tests/Etcd.Compat.Tests and tests/Etcd.Cluster.Tests, which run bin/etcd, published first, unless ETCD_UNDER_TEST
# names another executable), then the e2e tests of etcd's own suite listed in tests/e2e-passing.txt against
# bin/etcd and the real etcdctl, each in its own process group (--each: a test that fails before closing its cluster,
# e.g. a TestV3Curl_MaxStreams_* one, cannot leave members holding the fixed ports of the tests after it).
# Prints closing lines 'unit: N passed, N failed, N skipped; e2e: N passed, N failed, N skipped' and 'total: ...'.
# Tests that need a missing tool (real etcd, Go, etcd's source) are skipped locally but run, and fail, under CI=true
# (tests/MissingTool.cs); the skipped count says what a local run left out.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fail=0
dotnet build Etcd.slnx -c Release --nologo -v q || exit 1
"$root/scripts/publish.sh" || exit 1
log=$(mktemp)
dotnet test Etcd.slnx -c Release --no-build --nologo 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail=1
unit_passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
unit_failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
unit_skipped=$(grep -oE 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
e2e_passed=0; e2e_failed=0; e2e_skipped=0
shared="$root/../shared/conformance/run-e2e"
if [ -f tests/e2e-passing.txt ] && [ -x "$shared" ]; then
  regex=$(grep -vE '^\s*(#|$)' tests/e2e-passing.txt | sed 's/$/$/' | paste -sd'|' -)
  if [ -n "$regex" ]; then
    elog=$(mktemp)
    "$shared" --server "$root/bin/etcd" --each --last-release /usr/bin/etcd --run "$regex" --timeout 40m 2>&1 | tee "$elog"
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail=1
    e2e_passed=$(sed -nE 's/^e2e: ([0-9]+) passed, ([0-9]+) failed.*/\1/p' "$elog" | tail -1)
    e2e_failed=$(sed -nE 's/^e2e: ([0-9]+) passed, ([0-9]+) failed.*/\2/p' "$elog" | tail -1)
    e2e_skipped=$(sed -nE 's/^e2e: [0-9]+ passed, [0-9]+ failed, ([0-9]+) skipped.*/\1/p' "$elog" | tail -1)
    e2e_passed=${e2e_passed:-0}; e2e_failed=${e2e_failed:-1}; e2e_skipped=${e2e_skipped:-0}
  fi
elif [ -f tests/e2e-passing.txt ]; then
  echo "test: $shared not found; e2e tests not run" >&2
  fail=1
fi
# Name the failures last, where a truncated CI log still shows them.
grep -E '^\s*Failed [A-Za-z_.]+' "$log" | sed -E 's/^\s*Failed /unit failed: /; s/ \[[0-9].*$//' | sort -u
[ -n "${elog:-}" ] && grep -E '^--- FAIL: ' "$elog" | sed 's/^/e2e /' | sort -u
echo "unit: $unit_passed passed, $unit_failed failed, $unit_skipped skipped; e2e: $e2e_passed passed, $e2e_failed failed, $e2e_skipped skipped"
echo "total: $((unit_passed + e2e_passed)) passed, $((unit_failed + e2e_failed)) failed, $((unit_skipped + e2e_skipped)) skipped"
exit $fail
