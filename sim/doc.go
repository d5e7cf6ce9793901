// Package sim is the simulation side of drivesim: driver and rider
// behaviour models, the movement of simulated cars over a road graph, GPS
// noise and network loss, the driver and rider transports (REST, WebSocket,
// SSE, long-poll, poll), the replay of recorded GPS traces, the load
// generator, and the measurements they report (latency histograms, counters,
// and the checker that finds lost or duplicated durable events by ID).
//
// It talks to a hextrack server only through the client package (the Go
// SDK), and never imports the server's packages (api, driver, rider, feed): WebSocket drivers are
// client.DialDriver (resume by command ID, pings kept until acked, actions
// over the socket); REST drivers upload with SendLocations and long-poll
// the command channel with DriverCommands/AckCommand; riders watch with
// client.WatchTrip (SSE), TripEvents (long-poll) or GetTrip (poll, ETag);
// trip actions are the client's trip calls. With the server's dispatch
// (the default) offers arrive on the driver's command channel and only the
// offered driver accepts; DispatchSim is for servers without dispatch. It
// may import geo and eta for the map and routing of simulated cars: that is
// simulation-side geometry, not a shortcut into the server.
//
// # Time
//
// A simulation runs on a clock that goes SpeedUp times faster than the wall
// clock: cars move, riders wait and pings are generated in simulated
// seconds. Ping timestamps are always wall-clock time (the server rejects
// timestamps in the future and judges freshness by them), so at speed-up X
// consecutive 1 Hz pings are 1/X s apart on the wire and a car covers X
// times more ground per wall second; the server's jump check (70 m/s plus
// 50 m of slack per fix by default) still passes because each simulated
// second moves a car only a few tens of metres — and a driver whose tick
// comes late (a loaded machine, a slow upload) catches up in one-period
// steps, one fix each, rather than one long jump. At speed-up X a driver
// sends X fixes per wall second: beyond the server's per-driver ping rate
// (HEXTRACK_PING_RATE, 10/s by default) uploads are refused with 429;
// drivers keep the fixes and send them later, and the report counts the
// throttled uploads.
//
// # Shutdown
//
// Every Run takes a context; cancelling it (Ctrl-C in drivesim) stops all
// drivers and riders, closes their connections and still returns the
// report of what happened so far.
package sim
