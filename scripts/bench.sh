#!/usr/bin/env bash
# make bench: hextrack's end-to-end benchmark (issue 11). Builds the server
# with the pprof side listener, the bench orchestrator, and runs every
# scenario against a dedicated redis-server on port 6390 (started and
# stopped here; the shared Redis on 6379 is never touched). Arguments go to
# benchrun, e.g.  scripts/bench.sh -only nearby   or   scripts/bench.sh -quick
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
for tool in redis-server redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install -y redis-server redis-tools)"; exit 1; }
done
# 19,000 SSE riders need ~19,100 descriptors in one process.
ulimit -n 20000 2>/dev/null || true
mkdir -p bench/bin bench/out
$GO build -tags pprof -o bench/bin/hextrack ./cmd/hextrack
$GO build -o bench/bin/benchrun ./bench/cmd/benchrun
exec bench/bin/benchrun -out bench/results.json -dir bench/out "$@"
