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
// dispatch imports only root packages (trip, driver for their types) and
// never go-redis, even transitively; it never imports dispatchredis,
// payment, ops, eta, api, echo or gorilla.
package dispatch
