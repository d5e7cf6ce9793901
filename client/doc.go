// Package client is hextrack's Go SDK: the client of the public HTTP API,
// used by drivesim, the simulator, the fault suite and the end-to-end
// tests, and meant for any Go program that follows or drives trips. It
// speaks only the public API and imports none of the server's packages.
//
// What it covers:
//   - Trips: CreateTrip (idempotent with a key), GetTrip (ETag polling),
//     TripAction / CancelTrip / ChangeDropoff (conditional on a version),
//     SendMessage, ShareTrip / RevokeShare, TripPath.
//   - Following a trip: WatchTrip is a Stream of frames (a snapshot first,
//     then durable events with IDs and live locations). It holds an SSE
//     stream, reconnects after drops and resumes after the last event ID
//     (Last-Event-ID), honouring the server's retry: and Retry-After. When
//     an SSE stream can't be held (a proxy that buffers it, repeated
//     failures) it long-polls the same feed from the same ID, and tries SSE
//     again after a while: each durable event arrives once and in order
//     across reconnects and switches (WatchConfig, WithWatch).
//   - Long-polling by hand: TripEvents (a 410's snapshot: GoneSnapshot).
//   - Drivers over REST: SendLocations, SetStatus, GetDriver, Nearby.
//   - The driver's command channel: DialDriver is the WebSocket (pings
//     kept until acked, commands resumed by ID, trip actions on the
//     socket); DriverCommands / AckCommand are the same channel over REST.
//
// Every call takes a context; errors from the server come back as *Error
// with the HTTP status and the API's error code. A Client is safe for
// concurrent use; WithToken and WithWatch return adjusted copies.
package client
