package driverredis

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hextrack/hextrack/driver"
)

// ingestFixedArgs is the number of ARGV before the pings (newIngestCall).
const ingestFixedArgs = 8

// refusals caches, per driver, until when its ping bucket is known to be
// empty, so a flood is refused without a Redis round trip.
type refusals struct {
	rate   float64 // Config.PingRate; negative: no limit
	denied sync.Map
}

// ingestErr turns the script's RATELIMIT reply into a *RateLimitError and
// remembers the refusal locally until the bucket can pay again.
func (r *refusals) ingestErr(id string, now time.Time, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "RATELIMIT "); ok {
		ms, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		wait := time.Duration(max(ms, 1)) * time.Millisecond
		// Only a refusal of a single-ping-sized cost says the bucket is
		// empty for everyone; a big batch may be refused while small ones
		// still fit, so cache the refusal for one token's time at most.
		r.denied.Store(id, now.Add(min(wait, time.Duration(float64(time.Second)/r.rate))))
		return &driver.RateLimitError{Wait: wait}
	}
	return fmt.Errorf("driver: ingest: %w", err)
}

// limited refuses at once, without Redis, while a recent refusal for this
// driver still holds.
func (r *refusals) limited(id string, now time.Time) error {
	if r.rate < 0 {
		return nil
	}
	v, ok := r.denied.Load(id)
	if !ok {
		return nil
	}
	until := v.(time.Time)
	if !now.Before(until) {
		r.denied.CompareAndDelete(id, v)
		return nil
	}
	return &driver.RateLimitError{Wait: until.Sub(now)}
}
