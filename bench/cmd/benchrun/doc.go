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
// It imports only api (token minting), geo (the same point helpers and
// index writer the server uses) and the standard library plus go-redis and
// gorilla/websocket; it never imports the server's wiring.
package main
