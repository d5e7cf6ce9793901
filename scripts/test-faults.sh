#!/usr/bin/env bash
# The fault suite (issue 9): real redis-server (3-master Cluster, and a
# standalone one with AOF), 2-3 hextrack processes and nginx on loopback,
# riders on SSE and drivers on WebSocket through nginx; kill -9 a node,
# rolling restart, Redis restart, CLIENT KILL TYPE pubsub, a node cut off
# from Redis; with PostgreSQL (127.0.0.1:5432 db test, or
# HEXTRACK_TEST_DATABASE_URL; required when CI=true) the archive's database
# cut off and kill -9 of the archiving node. Each scenario prints one
# "FAULT ..." verdict line.
#
#   scripts/test-faults.sh            # every scenario
#   scripts/test-faults.sh KillNode   # one (regexp on the test name)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
for tool in redis-server redis-cli nginx; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "test-faults: $tool is not installed (apt-get install redis-server nginx)" >&2
    exit 1
  fi
done
export PATH="$PATH:/usr/sbin"
run=${1:-.}
$GO vet -tags faults ./faults
log="${TMPDIR:-/tmp}/hextrack-faults.$$.log"
set +e
$GO test -tags faults -count=1 -timeout 9m -run "TestFault.*(${run})" -v ./faults 2>&1 | tee "$log" |
  grep -E '^(=== RUN|--- (PASS|FAIL)|PASS|FAIL|ok|panic|\s+faults_test.go)'
status=${PIPESTATUS[0]}
set -e
echo "---- fault suite verdicts ----"
grep -E '^FAULT ' "$log" | sort -u
[ "$status" -eq 0 ] || echo "test-faults: FAILED (full output: $log)"
[ "$status" -ne 0 ] || rm -f "$log"
exit "$status"
