// Package history serves the archive-backed history routes: the paged list
// of trips (GET /v1/trips), a trip's receipt (GET /v1/trips/{id}/receipt,
// JSON or printable HTML), a driver's trips and shifts
// (GET /v1/drivers/{id}/trips, /shifts). It implements api.Routes; cmd
// wires it into api.Deps.Routes with the node's archive.
//
// Every read goes to the archive (package archive's queries, through the
// small interfaces this package declares), never to Redis: a trip reaches
// the archive within about a second of a change through the pipeline
// (archive/archiveredis). The trip reads that must keep working once a
// trip's Redis keys expired (GET /v1/trips/{id}, /events, /path) stay in
// package api; cmd/hextrack decorates their interfaces with the archive.
//
// Scoping: a rider sees only their own trips, a driver theirs, ops all; a
// viewer (share link) none of these routes. A list asked for another
// rider's or driver's trips is 403, never an empty page. Errors are the
// archive's sentinels (bad cursor, range, limit: 400; not found: 404),
// caller.ErrForbidden (403) and ErrNotEnded (409), mapped by api's one
// error table.
//
// history imports archive, api/caller and api/tokens; it must not import
// api (api imports it for ErrNotEnded), any Redis client, or the domain
// packages' Redis adapters.
package history
