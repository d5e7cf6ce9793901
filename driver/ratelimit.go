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

// ingestKeys are ingestScript's keys: state hash, seq window, ping bucket.
// All carry the driver's hash tag, so they share a Cluster slot.
func (s *Service) ingestKeys(id string) []string {
	p := s.cfg.Prefix
	return []string{stateKey(p, id), seqsKey(p, id), p + "drv:{" + id + "}:rl"}
}

// ingestArgs are ingestScript's fixed arguments; cost is the batch size as
// sent (invalid pings included), n the number of pings that follow.
func (s *Service) ingestArgs(now time.Time, cost, n int) []any {
	args := make([]any, 0, ingestFixedArgs+8*n)
	return append(args, s.cfg.Limits.MaxJumpSpeed, s.cfg.SeqWindow, int64(s.cfg.StateTTL/time.Second), StatusAvailable,
		now.UnixMilli(), s.cfg.PingRate, s.cfg.PingBurst, cost)
}

// ingestFixedArgs is the number of ARGV before the pings.
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
