// Package dispatch matches requested trips with drivers and owns the
// driver command channel.
//
// Dispatcher (dispatcher.go) runs on every node: a trip to dispatch is a
// member of a Redis sorted set (the queue, scored by when it is due); a
// node takes a due trip by acquiring its lease and keeps it by renewing;
// the lease holder alone makes offers (offers.go), recording each in the
// trip's dispatch hash before sending it, so a node taking over re-sends a
// pending offer at most once. A driver holds at most one pending offer (a
// per-driver offer lock); assignment itself is atomic in Redis
// (tripredis.Service.Assign). The Dispatcher is the trip service's Hook: it
// hears of new, re-requested, cancelled and changed trips and tells the
// drivers concerned, and vetoes the accept of a driver the trip was not
// offered to.
//
// Arrivals (arrival.go), a driver.Listener, detects a driver dwelling at
// the pickup (→ driver_arrived) and sends trip.arriving once the ETA to the
// pickup falls under Config.ArrivingETA.
//
// Commands (commands.go) is the command channel to drivers: durable
// commands on each driver's feed "driver:<id>", the acknowledged position
// (shared by the WebSocket and REST transports) and which connection of a
// driver is current.
//
// dispatch reaches trips only through Trips, an interface it declares
// (tripredis.Service implements it). It imports trip (types), driver, feed and
// geo; it never imports payment, ops, eta, api, echo or gorilla.
package dispatch
