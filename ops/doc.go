// Package ops is the ops dashboard's vocabulary in plain Go: the summary
// (Summary, DriverCounts), the fleet (FleetDriver, Fleet), the supply map
// (SupplyCell), viewports (CellSet, ParseCells: H3 cells of resolution up
// to r9; a driver is in a cell when its r9 cell descends from it), the
// list bound MaxTripList and ErrInvalid for a malformed query. The views
// that answer from Redis, the trip index and the node reports are in
// ops/opsredis.
//
// ops imports trip (types) and geo (cells); it never imports go-redis,
// api, dispatch, payment, eta, echo or gorilla.
package ops
