// Package pod serves the proof-of-delivery routes (an api.Routes wired by
// cmd):
//
//	POST /v1/trips/{id}/stops/{stop_id}/proof/{kind}   multipart/form-data:
//	     part "file" (the photo or signature), optional "lat" and "lng"
//	     (photos only, in any order around the file). The trip's driver
//	     only, for a drop stop of the trip not yet final (Stops.DropStop).
//	     201 with the proof's metadata; a re-upload replaces it.
//	GET  /v1/trips/{id}/stops/{stop_id}/proof          the stop's proofs'
//	     metadata ({"proofs": [...]})
//	GET  /v1/trips/{id}/stops/{stop_id}/proof/{kind}   the file, with its
//	     stored (sniffed) content type, X-Content-Type-Options: nosniff,
//	     Content-Disposition: attachment and a private, no-store cache
//	     policy
//
// {kind} is photo or signature. Reads are for the trip's rider, its driver
// and ops (and API keys with trips:read), checked by the Trips interface
// it declares (api's TripViews: Authorize); share-link viewers may not see
// proofs. The request body is bounded by http.MaxBytesReader (the kind's
// limit plus 64 KiB of form) and the file by package pod while it streams.
//
// Handlers are thin: bind the form, one service call, render; errors are
// the sentinels of pod, trip and api/caller, mapped by api's one error
// table. The package imports the domain package pod under the same name;
// it must not import api, go-redis or any adapter.
package pod
