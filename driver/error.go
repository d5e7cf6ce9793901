package driver

import (
	"errors"
	"fmt"
	"time"
)

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
	// ErrSuspended: ops suspended the driver; it may not go available or
	// accept a trip until reinstated.
	ErrSuspended = errors.New("driver suspended")
)

// ErrRateLimited: the driver sent more pings than its rate allows. The error
// is a *RateLimitError telling when to try again.
var ErrRateLimited = errors.New("too many pings")

// RateLimitError is returned by Ingest when the driver's ping bucket cannot
// pay for the batch. Nothing of the batch was applied: resend it after
// RetryAfter.
type RateLimitError struct {
	Wait time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s: retry in %s", ErrRateLimited.Error(), e.Wait.Round(time.Millisecond))
}

// Unwrap makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// RetryAfter is how long to wait before the batch fits the bucket.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Wait }
