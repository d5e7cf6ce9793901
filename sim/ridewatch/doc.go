// Package ridewatch follows one trip the way a rider's app does, over one
// of the rider transports (SSE, long-poll, poll), and delivers what arrives
// as typed Items: snapshots, resets, durable events and live locations,
// with every reconnect reported. It speaks only the client package
// (client.WatchTrip, TripEvents, GetTrip with its ETag).
//
// It must not import sim or any hextrack server package.
package ridewatch
