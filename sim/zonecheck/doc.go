// Package zonecheck is drivesim's oracle of zone events: it keeps every
// honest fix each simulated driver sent (the deliberate outliers the
// server must refuse are left out), works out from them alone which
// zone.entered and zone.exited events the server owes, and checks the
// events the server published on each zone's stream against them.
//
// The oracle's geometry is its own: point-in-polygon by ray casting and
// segment–edge intersection by orientation tests, over (lng, lat) as
// GeoJSON's edges are, written without the server's zone package. For a
// driver and a zone, each pair of consecutive fixes owes an entered (out,
// then in), an exited (in, then out), or both, in that order, when the
// segment between two fixes outside cuts the zone. The server's events of
// the pair must alternate (entered, then exited; dwell only while inside)
// in event-ID order, and each owed transition must be found among them,
// in order, stamped no later than the fix that showed it (a small
// tolerance for rounding). The server may also owe events the fixes
// cannot show: a driver set offline, or stale, inside a zone is exited
// then and entered again with its next fix; those come as extra pairs,
// counted, not failures.
//
// It never imports the server's packages.
package zonecheck
