package driver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// ingestFixedArgs is the number of ARGV before the pings (newIngestCall).
const ingestFixedArgs = 8

// ingestErr turns the script's RATELIMIT reply into a *RateLimitError and
// remembers the refusal locally until the bucket can pay again.
func (s *Service) ingestErr(id string, now time.Time, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "RATELIMIT "); ok {
		ms, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		wait := time.Duration(max(ms, 1)) * time.Millisecond
		// Only a refusal of a single-ping-sized cost says the bucket is
		// empty for everyone; a big batch may be refused while small ones
		// still fit, so cache the refusal for one token's time at most.
		s.denied.Store(id, now.Add(min(wait, time.Duration(float64(time.Second)/s.cfg.PingRate))))
		return &RateLimitError{Wait: wait}
	}
	return fmt.Errorf("driver: ingest: %w", err)
}

// limited refuses at once, without Redis, while a recent refusal for this
// driver still holds.
func (s *Service) limited(id string, now time.Time) error {
	if s.cfg.PingRate < 0 {
		return nil
	}
	v, ok := s.denied.Load(id)
	if !ok {
		return nil
	}
	until := v.(time.Time)
	if !now.Before(until) {
		s.denied.CompareAndDelete(id, v)
		return nil
	}
	return &RateLimitError{Wait: until.Sub(now)}
}
