// Command drivesim simulates drivers and riders against a hextrack server,
// replays recorded GPS trips, and generates load, speaking only the public
// API (the client package, SSE, WebSocket). Subcommands:
//
//	drivesim run     --server URL --drivers N --riders M --map FILE|synthetic ...
//	drivesim replay  --server URL --trips testdata/porto_trips.csv --map testdata/porto.osm.pbf --speedup 10
//	drivesim load    --server URL --drivers K --hz H --subscribers R ...
//	drivesim sink    --secret whsec_… [--addr :9090] [--fail 0.5] [--stall 15s] [--fail-for 2m] [--server URL --token T]
//
// Every subcommand prints a live progress line (plain periodic lines when
// stderr is not a terminal), a final table, and with --json FILE the
// report as JSON. Ctrl-C stops cleanly and still prints the report. The
// report counts the server's ping rejections by reason: the simulator sends
// deliberate GPS outliers (--outlier-rate, 0.2% of fixes) that the server
// should refuse as implausible_jump, and labels them so; any other
// rejection is reported as unexpected.
// Simulation logic lives in package sim; this command only reads flags,
// loads maps and prints.
package main
