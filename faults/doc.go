// Package faults is hextrack's fault suite: it runs the real thing on
// loopback — Redis (a 3-master Cluster started with redis-server on spare
// ports, or a standalone Redis with AOF), two or three hextrack processes
// built from cmd/hextrack, nginx in front of them (rendered by
// deploy.Local) — puts riders on SSE and drivers on WebSocket through nginx,
// all over the public API (the client package), breaks something and checks that
// no durable event is lost or duplicated.
//
// The non-test files are the harness: processes (Cluster, Redis, Node,
// Nginx), a TCP Proxy that can cut nodes off from Redis or from the
// archive's PostgreSQL, the Load (riders and drivers), the Checker that
// compares what each client received with the streams in Redis, by event
// ID, and the Archive (archive.go: a PostgreSQL schema of its own per
// scenario, dropped after) that compares the archive's events table with
// the same streams. The scenarios are Go
// tests behind the build tag "faults", so a plain `go test ./...` only runs
// the harness's quick unit tests:
//
//	make test-faults          # scripts/test-faults.sh: go test -tags faults ./faults
//
// Scenarios (faults_test.go), each printing one verdict line:
//
//	a  kill -9 one node under load
//	b  rolling restart (SIGTERM, drain, start again) of every node under load
//	c  standalone Redis killed and restarted (AOF, appendfsync always)
//	d  CLIENT KILL TYPE pubsub on every Redis master
//	e  one node cut off from Redis (its proxy stopped)
//
// and (faults_archive_test.go; PostgreSQL at HEXTRACK_TEST_DATABASE_URL or
// 127.0.0.1:5432 db test, skipped when unreachable, failed when CI=true):
//
//	f  the archive's database cut off from every node for 10 s under load
//	g  kill -9 the node holding the archive's shards while it archives
//
// Scenarios f and g also count as lost every entry of the load's streams
// missing from the archive, and as duplicated every extra row of one.
//
// It must not import the server's internals (api, rider, driver) to drive
// the system; it imports feed only for the stream key naming, deploy for
// nginx's configuration and the client package as every client does.
package faults
