// Package sse serves Server-Sent Events: a trip's feed as an SSE stream
// (Trips.Serve: snapshot or resume by Last-Event-ID, live events, the
// latest location, reset, heartbeats, token expiry, a viewer's revoked
// share, drain) and the frame writer of other streams (Writer, used by
// api's ops streams).
//
// On HTTP/1.x a trip stream takes its connection over from net/http once
// its first frames are built (conn.go) and is served by one goroutine;
// Trips tracks those connections for Wait and Close.
//
// The caller (package api) authenticates and authorizes the request and
// renders errors: Serve returns them (feed errors, ErrShuttingDown) before
// the stream starts, and ends a started stream with an SSE frame instead.
// sse must not import api or any Redis client; it reaches trips and the
// feed through the small interfaces it declares (Feed, Snapshots, Shares).
package sse
