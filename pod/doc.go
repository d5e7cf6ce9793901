// Package pod is proof of delivery's photos and signatures: what a driver
// may upload for a drop stop, how it is checked, and where it goes.
//
// Service.Put checks the upload (trip and stop ids, kind, an optional
// geotag for photos), sniffs the file's type from its first bytes — never
// the client's Content-Type — and streams it to a blob.Store while
// counting and hashing it:
//
//	photo      image/jpeg, image/png, image/webp   ≤ Config.MaxPhoto (5 MiB)
//	signature  image/png only                       ≤ Config.MaxSignature (512 KiB)
//
// SVG signatures are refused on purpose: an SVG is a document that can
// carry script, and serving it back from our origin would be a stored XSS;
// a PNG is what signature pads export. A wrong type is ErrUnsupportedType
// (415) before anything is written; a file past its limit fails its blob
// Put (ErrTooLarge, 413), which keeps nothing. Only then is the record
// written (Store: a Redis hash per trip, podredis), returning the record it
// replaced, whose file is then deleted; a failed record deletes the new
// file. Each file has a fresh key, so a record never names a half-replaced
// file and concurrent re-uploads leave exactly the last recorded one.
//
// Every recorded proof is also a durable stop.proof event (EventProof,
// data: the Proof, without the file) on the trip's feed: riders see it
// live, and the archive pipeline stores it, so the metadata outlives the
// Redis hash (which lives as long as a trip's keys). The file itself lives
// in the blob store until it is replaced; nothing deletes it when the trip
// ends (the gap is in docs/proof-of-delivery.md).
//
// Who may upload (the trip's driver, for one of its drop stops not yet
// final) and who may read (the trip's rider, driver, ops) is checked by
// the caller, api/pod. Service.Has is the stop lifecycle's question
// (trip.ProofFiles): does a stop have its photo or signature?
//
// pod imports blob, feed (the event) and trip (ids, topics); it must not
// import go-redis, api, echo or any adapter.
package pod
