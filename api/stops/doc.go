// Package stops serves the routes of a trip's stops (api.Routes, wired by
// cmd): the rider's and ops' edits of pending stops, conditional on
// If-Match (POST /v1/trips/{id}/stops, DELETE …/stops/{stop}, PUT
// …/stops/order), and the stop actions: complete and fail (the trip's
// driver, or ops), skip (ops or the trip's rider). Handlers are thin:
// bind, one call of the Edits or Actions interface it declares
// (tripredis.Stops), render the snapshot; errors are trip's sentinels,
// mapped by api's error table.
//
// It imports trip and the api helpers (caller, tokens); never go-redis or
// tripredis.
package stops
