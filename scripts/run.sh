#!/usr/bin/env bash
# make run: the server on an embedded Redis, simulated drivers, web pages,
# and drivesim's payment gateway simulator (GATEWAY_PORT, default 8090) at
# the address the server sends "Pay now" to, signing its webhooks with the
# dev webhook secret (or the first of HEXTRACK_PAYMENT_WEBHOOK_SECRETS).
#
# The gateway simulator fails a paid checkout only when asked (Decline on
# its checkout page; GATEWAY_FAIL=0.2 fails one in five at random too).
#
# scripts/run.sh --print-commands prints what it would run, one process a
# line, its name then its argv, tab-separated (and "rider<TAB><url>"), and
# exits: the browser test of online payment (web/test/payment_run.test.mjs)
# starts make run's processes from it, so the wiring has one source.
#
# Ctrl-C stops the simulator first (it prints its report while the server
# is still up), then the server (it drains its streams and logs each step),
# and exits 0. The two run in process groups of their own (set -m), so the
# terminal's Ctrl-C reaches this script only and the order is ours.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=${HEXTRACK_ADDR:-:8080}
port=${addr##*:}
# The demo map: real Porto roads (OpenStreetMap extract vendored in testdata/,
# ODbL, "© OpenStreetMap contributors"); MAP=synthetic for the generated city.
map=${MAP:-testdata/porto.osm.pbf}
[ "$map" = synthetic ] || [ -f "$map" ] || { echo "make run: map $map not found (MAP=synthetic for the generated city)" >&2; exit 1; }
gwport=${GATEWAY_PORT:-8090}
gwsecret=${HEXTRACK_PAYMENT_WEBHOOK_SECRETS:-dev-webhook-secret}
gwsecret=${gwsecret%%,*}
server_cmd=(./bin/hextrack serve --addr "$addr" --map "$map" --payment-gateway-url "http://localhost:$gwport")
gateway_cmd=(./bin/drivesim gateway --server "http://localhost:$port" --listen "127.0.0.1:$gwport" --secret "$gwsecret" --fail "${GATEWAY_FAIL:-0}")
# Speed-up 5 and trips under 1.5 km: drivers move at once and trips complete
# within a minute or two (Porto's roads wind more than the synthetic grid).
sim_cmd=(./bin/drivesim run --server "http://localhost:$port" --drivers "${DRIVERS:-50}" --riders "${RIDERS:-10}" --map "$map" --speedup "${SPEEDUP:-5}" --trip-max-m "${TRIP_MAX_M:-1500}" --rider-think 5s)
if [ "${1:-}" = --print-commands ]; then
  (IFS=$'\t'; echo "server${IFS}${server_cmd[*]}"; echo "gateway${IFS}${gateway_cmd[*]}"; echo "simulator${IFS}${sim_cmd[*]}")
  printf 'rider\thttp://localhost:%s/\n' "$port"
  exit 0
fi
set -m
"${server_cmd[@]}" &
srv=$!
sim=""
gw=""

stopping=""
stop() {
  [ -z "$stopping" ] || return 0
  stopping=1
  echo
  if [ -n "$sim" ] && kill -0 "$sim" 2>/dev/null; then
    echo "make run: stopping the simulator (its report follows), then the server"
    kill -INT "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
  fi
  if [ -n "$gw" ] && kill -0 "$gw" 2>/dev/null; then
    echo "make run: stopping the payment gateway simulator"
    kill -INT "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true
  fi
  if kill -0 "$srv" 2>/dev/null; then
    echo "make run: stopping the server"
    kill -TERM "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
  fi
  exit 0
}
trap stop INT TERM
trap '[ -n "$stopping" ] || kill $sim $gw $srv 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  curl -fs "http://localhost:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$srv" 2>/dev/null || { wait "$srv"; exit $?; } # it could not start (port taken?)
  sleep 0.2
done
echo
echo "  rider map:      http://localhost:$port/"
echo "  ops dashboard:  http://localhost:$port/ops"
echo "  driver page:    http://localhost:$port/driver"
[ ! -x ./bin/drivesim ] || echo "  payment gateway simulator (\"Pay now\"): http://localhost:$gwport"
echo
echo "  Ctrl-C stops the simulator (it prints a report), then the server."
echo
if [ -x ./bin/drivesim ]; then
  "${gateway_cmd[@]}" &
  gw=$!
  "${sim_cmd[@]}" &
  sim=$!
fi
# Until Ctrl-C (the trap), or until the server stops by itself (an error).
set +e
wait "$srv"
rc=$?
[ -z "$sim" ] || kill -INT "$sim" 2>/dev/null
[ -z "$gw" ] || kill -INT "$gw" 2>/dev/null
exit $rc
