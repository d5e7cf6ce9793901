package archive

import "errors"

// Errors returned by archive and its stores; wrap them with %w to add
// detail. The api package maps each to one HTTP status in its error table.
var (
	// ErrNotFound: no such record in the archive (404).
	ErrNotFound = errors.New("not found in the archive")
	// ErrInvalid: a record or a query field is malformed (400 for a query;
	// a writer's bug for a record).
	ErrInvalid = errors.New("invalid archive record or query")
	// ErrInvalidCursor: a page cursor or an "after" position that this
	// archive did not hand out, or that is malformed (400).
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrInvalidRange: a time range whose end is before its start, or one
	// longer than the query allows (400).
	ErrInvalidRange = errors.New("invalid time range")
	// ErrInvalidLimit: a page size below zero or above the query's maximum
	// (400); zero means the query's default.
	ErrInvalidLimit = errors.New("invalid limit")
)
