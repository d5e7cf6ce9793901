// Package client is the Go client of the hextrack HTTP API: a small SDK used
// by drivesim and the end-to-end tests. It speaks only the public API.
//
// Every call takes a context; errors from the server come back as *Error
// with the HTTP status and the API's error code.
package client
