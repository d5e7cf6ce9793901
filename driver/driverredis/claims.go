package driverredis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
)

// Claims set a driver's status and give it to, and take it from, a trip;
// each is one script on the driver's state, then the index's status.
type Claims struct {
	rdb   redis.UniversalClient
	idx   *georedis.Index
	cfg   driver.Config
	reads *Reads
	log   StatusLog // nil: status changes are not recorded
}

// StatusLog keeps drivers' status changes for the archive (cmd/hextrack
// implements it over feedredis): each change is appended, by the script
// that makes it, to the driver's status stream, after the driver was
// marked for the archive.
type StatusLog interface {
	// StatusStream is driver id's status stream: a key in the driver's slot
	// (its hash tag is the driver ID).
	StatusStream(driverID string) string
	// MarkStatus announces an append to it; the append runs right after.
	MarkStatus(ctx context.Context, driverID string) error
}

// statusLogTTL is how long a driver's status stream is kept after its last
// change (the archive drains it within seconds; its entries are deleted
// once archived).
const statusLogTTL = 7 * 24 * time.Hour

// RecordStatuses makes every later status change of SetStatus, Claim and
// Release be recorded in l. Call it once, before the service is used.
func (s *Claims) RecordStatuses(l StatusLog) { s.log = l }

// logKeys marks driverID for the archive and returns the status stream
// key and ARGV flag the scripts take ("0": not recorded).
func (s *Claims) logKeys(ctx context.Context, driverID string) (string, string, error) {
	if s.log == nil {
		return stateKey(s.cfg.Prefix, driverID), "0", nil
	}
	if err := s.log.MarkStatus(ctx, driverID); err != nil {
		return "", "", fmt.Errorf("driver: status: %w", err)
	}
	return s.log.StatusStream(driverID), "1", nil
}

// SetStatus makes a driver available or offline. A driver on a trip cannot
// change status (ErrConflict): the trip ends or is reassigned first; a
// suspended driver cannot either (ErrSuspended) until ops reinstate it.
func (s *Claims) SetStatus(ctx context.Context, driverID, status string) (driver.State, error) {
	if err := driver.CheckID(driverID); err != nil {
		return driver.State{}, err
	}
	if status != driver.StatusAvailable && status != driver.StatusOffline {
		return driver.State{}, fmt.Errorf("%w: status must be %q or %q", driver.ErrInvalid, driver.StatusAvailable, driver.StatusOffline)
	}
	logKey, rec, err := s.logKeys(ctx, driverID)
	if err != nil {
		return driver.State{}, err
	}
	v, err := runScript(ctx, s.rdb, statusScript, []string{stateKey(s.cfg.Prefix, driverID), logKey, suspKey(s.cfg.Prefix, driverID)}, status,
		int64(s.cfg.StateTTL/time.Second), rec, int64(statusLogTTL/time.Second))
	if err != nil {
		return driver.State{}, fmt.Errorf("driver: status: %w", err)
	}
	if arr, ok := v.([]any); ok && len(arr) == 3 {
		if c, err := geo.ParseCell(str(arr[2])); err == nil {
			if err := s.idx.SetStatus(ctx, driverID, c, status); err != nil {
				return driver.State{}, err
			}
		}
	}
	return s.reads.Get(ctx, driverID)
}

// Claim gives driverID to tripID if the driver is available and free; it
// is atomic in Redis, so one driver never holds two trips. Claiming again
// for the same trip succeeds. ErrConflict when the driver is not free,
// ErrSuspended when ops suspended it.
func (s *Claims) Claim(ctx context.Context, driverID, tripID string) error {
	if err := driver.CheckID(driverID); err != nil {
		return err
	}
	logKey, rec, err := s.logKeys(ctx, driverID)
	if err != nil {
		return err
	}
	v, err := runScript(ctx, s.rdb, claimScript, []string{stateKey(s.cfg.Prefix, driverID), logKey, suspKey(s.cfg.Prefix, driverID)}, tripID,
		rec, int64(statusLogTTL/time.Second))
	if err != nil {
		return fmt.Errorf("driver: claim: %w", err)
	}
	arr, _ := v.([]any)
	if len(arr) != 3 {
		return fmt.Errorf("driver: claim: unexpected reply %v", v)
	}
	if ok, _ := arr[0].(int64); ok != 1 {
		return fmt.Errorf("%w: driver %s is %s", driver.ErrConflict, driverID, str(arr[1]))
	}
	if c, err := geo.ParseCell(str(arr[2])); err == nil {
		return s.idx.SetStatus(ctx, driverID, c, driver.StatusOnTrip)
	}
	return nil
}

// Release frees a driver held by tripID (no-op if another trip holds it) and
// sets its status (available, or offline).
func (s *Claims) Release(ctx context.Context, driverID, tripID, status string) error {
	if status == "" {
		status = driver.StatusAvailable
	}
	logKey, rec, err := s.logKeys(ctx, driverID)
	if err != nil {
		return err
	}
	v, err := runScript(ctx, s.rdb, releaseScript, []string{stateKey(s.cfg.Prefix, driverID), logKey}, tripID, status,
		rec, int64(statusLogTTL/time.Second))
	if err != nil {
		return fmt.Errorf("driver: release: %w", err)
	}
	arr, _ := v.([]any)
	if len(arr) == 2 {
		if ok, _ := arr[0].(int64); ok == 1 {
			if c, err := geo.ParseCell(str(arr[1])); err == nil {
				return s.idx.SetStatus(ctx, driverID, c, status)
			}
		}
	}
	return nil
}
