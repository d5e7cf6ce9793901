// Package podredis keeps proof-of-delivery records in Redis: one hash per
// trip, pod:{<trip id>}, a field per stop and kind ("<stop id>/photo",
// "<stop id>/signature") holding the record as JSON (pod.Record: the
// metadata and the file's blob key). The hash's TTL is the trip's
// (Config.TTL, tripredis.Config.TripTTL), refreshed on every record, so it
// goes when the trip's keys go, give or take the time between the last
// upload and the trip's last write. What outlives it is the stop.proof
// event the archive keeps (package pod).
//
// Store implements pod.Store; a record replaces the previous one and
// returns it in one script, so two concurrent uploads each learn exactly
// the file they displaced.
//
// podredis imports pod and go-redis; it must not import api, echo or other
// adapters.
package podredis
