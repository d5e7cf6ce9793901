// Package live keeps the ETAs of running trips current (the live side of
// eta).
//
// Service (live.go) keeps a trip's ETA current: to the pickup while
// driver_assigned or driver_arrived, to the dropoff while in_progress. It
// is a driver.Listener that only queues moves (latest wins per trip,
// bounded; a full queue drops and counts); workers estimate through a
// RouteEstimator at most once per Config.Every per trip across all
// nodes (the gate lives in the trip hash, behind TripETAs, which tripredis.ETAs
// implements; a gated move waits for the gate unless an estimate from a
// newer fix was made meanwhile). The estimate is stored in the trip hash
// (so snapshots carry it as "eta") and the durable trip.eta is appended
// when the leg or its target changed or Config.ShouldEmit (ShouldEmit:
// ≥ 15 s or ≥ 10%) says the change matters. As a trip.Observer it hears of
// transitions: pickup and dropoff changes are estimated at once, and on
// completion Config.Accuracy gets the actual duration of each leg
// against its first promise. A router that is also a MovingEstimator
// (cmd's, when the served model has a learned correction) gets the
// driver's recent fixes on the trip (motion.go: kept per trip from the
// moves this node hears, dropped when the trip ends), so the correction
// sees a vehicle under way as eta-eval's remaining-time queries do; each
// trip.eta names the model (Config.Model).
//
// live imports driver (driver.Move), trip (types, and the ETA storage it
// declares TripETAs for) and internal/conflate (cmd passes eta.ShouldEmit as Config.ShouldEmit), and never
// api, dispatch, payment, ops, web, echo or gorilla.
package live
