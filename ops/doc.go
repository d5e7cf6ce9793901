// Package ops owns the ops dashboard's cluster-wide views and the node
// reports they add up.
//
// Trips: Index, a trip.Observer, moves every changed trip (create,
// transition, address change, payment) in an ops index under the hash tag
// {ops-trips}: a sorted set of all trips and one per status (score: last
// change), and a record "event id|status|pickup r9" per trip. A record only
// moves to a newer event ID, so changes indexed out of order by two nodes
// end right; a failed index write is logged and caught up at the trip's
// next change. Counts are one ZCOUNT per status; entries older than
// TripTTL are trimmed a few per write.
//
// Drivers: View reads the position index's region records (georedis.Index's
// documented layout), O(fleet), reused for Config.FleetEvery per node.
// Viewports and the supply map follow the H3 hierarchy: a driver is in a
// cell when its r9 cell descends from it.
//
// Nodes: Reporter, constructed in cmd and run by Main.Run until the node
// drains, writes this node's figures (connections, ingest rate, feed lag,
// read from its Prometheus registry) into the hash "<prefix>ops:{ops-nodes}"
// every ReportEvery; View.Summary adds up the fresh reports.
//
// ops imports trip (types, trip.Observer), geo, go-redis and prometheus; it
// never imports api, dispatch, payment, eta, echo or gorilla.
package ops
