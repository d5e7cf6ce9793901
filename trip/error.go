package trip

import (
	"errors"
	"fmt"
)

// Errors returned by this package; wrap them with %w to add detail. The api
// package maps each to one HTTP status in its error table.
var (
	// ErrInvalid: a malformed request or a value out of range (400).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such trip (or share) (404).
	ErrNotFound = errors.New("trip not found")
	// ErrForbidden: the actor may not see or change this trip (403).
	ErrForbidden = errors.New("not allowed for this trip")
	// ErrInvalidTransition: the trip's status forbids the action (409); the
	// error is a *TransitionError carrying the current status.
	ErrInvalidTransition = errors.New("transition not allowed")
	// ErrVersionMismatch: If-Match named another version (412).
	ErrVersionMismatch = errors.New("trip version does not match")
	// ErrIdempotencyMismatch: an Idempotency-Key reused with another body (422).
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrShareRevoked: the share link was revoked or has expired (401).
	ErrShareRevoked = errors.New("share link revoked or expired")
)

// TransitionError is a forbidden transition: the action, and the trip's
// status when it was refused. It matches ErrInvalidTransition.
type TransitionError struct {
	Action  string
	Current string
	Version int64
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("%s: cannot %s a trip that is %s", ErrInvalidTransition, e.Action, e.Current)
}

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// VersionError is an If-Match conflict; it matches ErrVersionMismatch and
// carries the current version.
type VersionError struct {
	Want, Current int64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("%s: If-Match %d, trip is at version %d", ErrVersionMismatch, e.Want, e.Current)
}

// Is makes errors.Is(err, ErrVersionMismatch) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersionMismatch }
