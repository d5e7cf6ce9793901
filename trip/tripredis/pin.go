package tripredis

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/trip"
)

// Delivery PINs: a drop stop whose proof policy asks for a PIN gets 6
// random digits (crypto/rand) when it is created. The trip hash keeps
// "pin:<stop>", SHA-256 of the trip id, the stop id and the PIN (what the
// driver's PIN is compared with), "pinv:<stop>", the PIN itself, read only
// to show it to the trip's rider and its share-link viewers, and
// "pina:<stop>", the wrong attempts so far.

// pinAttempts is how many wrong PINs a stop takes before only ops can
// complete it (with override).
const pinAttempts = 5

// pinPairs are the trip hash fields of stop stopID's PIN (pin "": the
// fields deleted).
func pinPairs(tripID, stopID, pin string) []string {
	if pin == "" {
		return []string{"pin:" + stopID, "", "pinv:" + stopID, "", "pina:" + stopID, ""}
	}
	return []string{"pin:" + stopID, trip.PINHash(tripID, stopID, pin), "pinv:" + stopID, pin}
}

// pinScript compares a PIN's hash with the stop's, counting wrong ones.
//
// KEYS: trip hash. ARGV: stop id, hash of the PIN given ("" none given:
// wrong, not counted), attempts allowed.
// Returns 'ok' | 'none' (the stop has no PIN) | 'wrong' | 'exhausted'.
var pinScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'pin:' .. ARGV[1], 'pina:' .. ARGV[1])
if not f[1] then return 'none' end
if (tonumber(f[2]) or 0) >= tonumber(ARGV[3]) then return 'exhausted' end
if ARGV[2] == '' then return 'wrong' end
if f[1] == ARGV[2] then return 'ok' end
redis.call('HINCRBY', KEYS[1], 'pina:' .. ARGV[1], 1)
return 'wrong'
`)

// withPINs sets the PINs of snap's PIN-protected drop stops: for the trip's
// rider and its share-link viewers only (the callers decide).
func (b *base) withPINs(ctx context.Context, snap *trip.Snapshot) error {
	var fields []string
	var at []int
	for i, st := range snap.Trip.Stops {
		if st.Proof != nil && st.Proof.PIN && !st.Final() {
			fields, at = append(fields, "pinv:"+st.ID), append(at, i)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	v, err := b.rdb.HMGet(ctx, tripKey(b.cfg.Prefix, snap.Trip.ID), fields...).Result()
	if err != nil {
		return fmt.Errorf("trip: pins of %s: %w", snap.Trip.ID, err)
	}
	stops := make([]trip.Stop, len(snap.Trip.Stops))
	copy(stops, snap.Trip.Stops)
	for k, i := range at {
		stops[i].PIN, _ = v[k].(string)
	}
	snap.Trip.Stops = stops
	return nil
}
