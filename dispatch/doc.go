// Package dispatch is the domain of matching requested trips with drivers
// and of the driver command channel: the command types (CmdOffer,
// CmdCancelled, …, CmdReplaced) and the Offer they carry, a driver's
// command topic (DriverTopic), the trip.arriving event, the sentinel
// error ErrInvalid, and the pure rules of a dispatch round: which search
// radii are allowed so far (Radii) and how candidates rank (Rank).
//
// It declares what dispatch needs of the rest: Trips (tripredis.Service
// implements it) and Finder (driver.Service). The Redis-backed Dispatcher,
// its offers, the arrival detection and the command channel live in
// dispatch/dispatchredis.
//
// It also draws the route a driver is sent after accept and after every
// address change (Router, route.go: the trip.route command's Route, a
// Google encoded polyline made by the kept twpayne/go-polyline), over the
// Paths (the road graph, wired by cmd) and Positions it declares.
//
// dispatch imports only root packages (trip, driver, geo for their types)
// and go-polyline, and never go-redis, even transitively; it never imports
// dispatchredis, payment, ops, eta, api, echo or gorilla.
package dispatch
