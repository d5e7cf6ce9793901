// Package sim is the simulation side of drivesim: driver and rider
// behaviour models, the movement of simulated cars over a road graph, GPS
// noise and network loss, the replay of recorded GPS traces and the load
// generator. Its parts with a job of their own are subpackages: the
// driver transports (driverlink: REST, WebSocket), the rider transports
// (ridewatch: SSE, long-poll, poll), the measurements and the report
// (metrics), and the checker that finds lost or duplicated durable events
// by ID (eventcheck).
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
// seconds. Ping timestamps stay close to the wall clock (the server rejects
// timestamps in the future and judges freshness by them), so at speed-up X
// consecutive 1 Hz fixes are due 1/X s apart and a car covers X times more
// ground per wall second than its stamps would allow a real one. The
// server's jump check (70 m/s from the last accepted fix plus 50 m, by
// default) must still never refuse an honest fix: one refusal leaves the
// server measuring every later fix from a position the car has left, for
// good. So a car drives exactly one ping period between fixes (a late tick
// makes up the fixes it owes, never one long step), and each fix is stamped
// with the wall time it was due or, when that is too soon after the last
// honest fix for the distance between them, the earliest time at which the
// distance is plausible by a stricter rule than the server's (stamps); a car
// whose stamps run 3 s ahead of the wall clock stands still until they are
// back (Pings.Held in the report). Deliberate GPS outliers (GPS.OutlierRate)
// are the only fixes the server should refuse; the report counts rejections
// by the server's reason and tells the outliers from unexpected ones. An
// outlier is sent only where the server must refuse it: never as a
// driver's first fix (the server accepts that whatever it is) nor long
// after the last honest fix (where a wild fix is a plausible jump); there
// the fix is an honest one. An accepted outlier would be the position the
// server measures every later honest fix from, and refuse them all.
//
// At speed-up X a driver sends X fixes per wall second: beyond the server's
// per-driver ping rate (HEXTRACK_PING_RATE, 10/s by default) uploads are
// refused with 429; drivers keep the fixes and send them later, and the
// report counts the throttled uploads.
//
// # Shutdown
//
// Every Run takes a context; cancelling it (Ctrl-C in drivesim) stops all
// drivers and riders, closes their connections and still returns the
// report of what happened so far.
package sim
