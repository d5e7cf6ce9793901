package driver

import "errors"

// Errors returned by this package; wrap them with %w to add detail. The api
// package maps each to one HTTP status in its error table.
var (
	// ErrInvalid: the request is malformed or a value is out of range.
	ErrInvalid = errors.New("invalid request")
	// ErrTooManyPings: a batch holds more pings than allowed.
	ErrTooManyPings = errors.New("too many pings in one batch")
	// ErrNotFound: the driver has never pinged nor set a status.
	ErrNotFound = errors.New("driver not found")
	// ErrConflict: the driver's state forbids the change (e.g. busy on a trip).
	ErrConflict = errors.New("driver state conflict")
)
