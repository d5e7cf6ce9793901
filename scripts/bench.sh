#!/usr/bin/env bash
# make bench: hextrack's end-to-end benchmark (issue 11). Builds the server
# with the pprof side listener, the bench orchestrator, and runs every
# scenario against a dedicated redis-server on a free port (benchrun starts
# and stops it; the shared Redis on 6379 is never touched). Arguments go to
# benchrun, e.g.  scripts/bench.sh -only nearby   or   scripts/bench.sh -quick
#
# Signals: SIGTERM/SIGINT during the builds stop the build and exit; after
# them this script becomes benchrun (exec, same pid), which stops its
# children on either signal.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
for tool in redis-server redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install -y redis-server redis-tools)"; exit 1; }
done
# 19,000 SSE riders need ~19,100 descriptors in one process.
ulimit -n 20000 2>/dev/null || true
mkdir -p bench/bin bench/out
child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 143' TERM INT
# In the background and waited for, so that a signal runs the trap at once
# rather than after the build.
run() { "$@" & child=$!; wait "$child"; child=; }
run $GO build -tags pprof -o bench/bin/hextrack ./cmd/hextrack
run $GO build -o bench/bin/benchrun ./bench/cmd/benchrun
trap - TERM INT
exec bench/bin/benchrun -out bench/results.json -dir bench/out "$@"
