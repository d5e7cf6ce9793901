// Command benchrun is hextrack's end-to-end benchmark (make bench). It
// starts a dedicated redis-server and the real hextrack binary, drives
// each scenario of issue 11 through the public API from load-generator
// processes on 127.0.0.x, measures a reference in the same run, and prints
// a table and bench/results.json.
//
// Subcommands (the orchestrator runs them as child processes so that no
// process holds more than ~19,900 sockets):
//
//	benchrun [flags]            run the scenarios (default: all)
//	benchrun ref                a minimal net/http reference server
//	benchrun riders             SSE riders + pinging drivers (idle and fan-out)
//	benchrun ingest             drivers pushing batched pings (ws|rest)
//
// The orchestrator's parts: servers (servers.go) starts and stops the
// bench's redis-server, a fresh hextrack per scenario and the reference
// server, and mints tokens; recorder (results.go) keeps the rows and
// profiles and writes results.json and the table; each scenario is its
// own type with a run method (pollScenario, resumeScenario,
// nearbyScenario, fanoutScenario for idle and fan-out, ingestScenario,
// archiveScenario: the fan-out load with the archive in PostgreSQL;
// natsScenario for the NATS export's lag against the machine's NATS, in
// scen_*.go), given both as a rig; tripSetup (tripsetup.go) assigns trips
// through the API for poll and fan-out. Processes, free ports and
// deadlines are proc.go and wait.go.
//
// It imports only api (token minting), geo (the same point helpers and
// index writer the server uses) and the standard library plus go-redis,
// gorilla/websocket, pgx (to read the archive scenario's events table) and
// nats.go (the nats scenario's subscriber); it never imports the server's
// wiring.
package main
