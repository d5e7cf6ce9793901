#!/usr/bin/env bash
# make run: the server on an embedded Redis, simulated drivers, web pages.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=${HEXTRACK_ADDR:-:8080}
port=${addr##*:}
./bin/hextrack serve --addr "$addr" --map "${MAP:-synthetic}" &
srv=$!
trap 'kill $srv $sim 2>/dev/null; wait' EXIT INT TERM
sim=""
for _ in $(seq 1 50); do curl -fs "http://localhost:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
echo
echo "  rider map:      http://localhost:$port/"
echo "  ops dashboard:  http://localhost:$port/ops"
echo "  driver page:    http://localhost:$port/driver"
echo
if [ -x ./bin/drivesim ]; then
  # Speed-up 5 and trips under 1.5 km: drivers move and trips complete within a minute.
  ./bin/drivesim run --server "http://localhost:$port" --drivers "${DRIVERS:-50}" --riders "${RIDERS:-10}" --map "${MAP:-synthetic}" --speedup "${SPEEDUP:-5}" --trip-max-m "${TRIP_MAX_M:-1500}" --rider-think 5s &
  sim=$!
fi
wait $srv
