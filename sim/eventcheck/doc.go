// Package eventcheck finds lost, duplicated and out-of-order durable events
// by ID: a subscriber reports where it started, every event it received and
// every reset the server sent, and Checker.Verify compares that with the
// event IDs read back from the server's history. It also parses and orders
// the event IDs (Redis Stream IDs, "ms-seq").
//
// It knows nothing of HTTP or of the server: it must not import client or
// any hextrack server package.
package eventcheck
