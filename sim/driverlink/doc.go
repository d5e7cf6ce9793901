// Package driverlink is a simulated driver's link to the server, speaking
// only the client package: REST (pings by POST in chunks, the command
// channel long-polled and resumed after the last command, acks and trip
// actions by POST) and WS (a client.DriverWS: commands resumed by ID, pings
// kept until acked, actions over the socket and over REST while it is
// down). Both count what they do in a metrics.Stats: requests, ping acks
// and their latency, the server's rejections, throttled uploads,
// reconnects, command-channel resets.
//
// The simulator declares the interface it drives them through
// (sim.DriverConn). It must not import sim or any hextrack server package.
package driverlink
