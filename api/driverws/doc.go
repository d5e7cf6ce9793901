// Package driverws is the driver WebSocket: one connection per driver
// (newer wins across nodes), hello/resume of the command feed, pings
// (locations, acked by seq), command acks and trip actions, server pings,
// the close codes, drain and token expiry.
//
// The caller (package api) authenticates the driver and refuses what can
// be refused before the upgrade with an HTTP error, then calls
// Channel.Serve. Errors of the services reach the client as error
// replies rendered by the caller's error table (Deps.Errors); a refused
// client message is a MessageError. driverws reaches the services through
// the small interfaces it declares (Commands, Drivers, Trips); it must not
// import api or any Redis client.
package driverws
