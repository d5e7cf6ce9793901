package dispatchredis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// offers runs one round of a trip's dispatch at a time for the lease
// holder (Dispatcher.work): it re-sends a pending offer after a takeover,
// retires a declined or timed-out one, expires the trip at the dispatch
// timeout, and otherwise searches widening radii for the best free driver,
// locks it and records and sends the offer.
type offers struct {
	rdb    redis.UniversalClient
	trips  dispatch.Trips
	finder dispatch.Finder
	cmds   *Commands
	cfg    Config
	sent   func(d time.Duration) // metric hook: offer sent (latency of the send)
}

func (d *offers) key(f func(string, string) string, id string) string { return f(d.cfg.Prefix, id) }

var errLeaseLost = errors.New("dispatch: lease lost")

// waitEmpty is step's wait when no driver was found at all: the worker
// backs off (Retry, doubling up to 4×; expiry may come that much late),
// since a wide empty search is the costliest query there is.
const waitEmpty = time.Duration(-1)

// offerScript records an offer if this node still holds the lease.
//
// KEYS: dispatch hash, lease. ARGV: node, driver, deadline ms, eta s,
// distance m, ttl s. Returns the offer number, or 0 without the lease.
var offerScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'offer', ARGV[2], 'deadline', ARGV[3], 'eta', ARGV[4], 'dist', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return n`)

// step does one round of a trip's dispatch: it returns done when the trip
// no longer needs dispatching, else how long to wait before the next.
func (d *offers) step(ctx context.Context, id string, published map[int64]bool) (bool, time.Duration, error) {
	t, err := d.trips.Get(ctx, id)
	if errors.Is(err, trip.ErrNotFound) {
		return true, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	st, err := d.rdb.HGetAll(ctx, d.key(dispatchKey, id)).Result()
	if err != nil {
		return false, 0, err
	}
	if t.Status != trip.StatusRequested {
		if o := st["offer"]; o != "" {
			d.unlockOffer(ctx, o, id)
		}
		return true, 0, nil
	}
	now := d.cfg.Now()
	ttl := int64((d.cfg.Timeout + time.Hour) / time.Second)
	started, _ := strconv.ParseInt(st["started"], 10, 64)
	if started == 0 {
		started = now.UnixMilli()
		if err := d.rdb.HSetNX(ctx, d.key(dispatchKey, id), "started", started).Err(); err != nil {
			return false, 0, err
		}
		d.rdb.Expire(ctx, d.key(dispatchKey, id), time.Duration(ttl)*time.Second)
	}
	excluded, err := d.trips.Excluded(ctx, id)
	if err != nil {
		return false, 0, err
	}
	exclude := map[string]bool{}
	for _, x := range excluded {
		exclude[x] = true
	}
	if o := st["offer"]; o != "" {
		deadline, _ := strconv.ParseInt(st["deadline"], 10, 64)
		n, _ := strconv.ParseInt(st["n"], 10, 64)
		if !exclude[o] && now.UnixMilli() < deadline {
			if !published[n] {
				// Taken over (or the send failed): re-send, idempotently.
				if err := d.sendOffer(ctx, t, o, n, deadline, st["eta"], st["dist"]); err != nil {
					return false, 0, err
				}
				published[n] = true
			}
			return false, min(time.Duration(deadline-now.UnixMilli())*time.Millisecond, d.cfg.Poll), nil
		}
		// Declined or timed out: not offered again in this round.
		_, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, d.key(dispatchKey, id), "tried:"+o, "1")
			p.HDel(ctx, d.key(dispatchKey, id), "offer", "deadline")
			return nil
		})
		if err != nil {
			return false, 0, err
		}
		d.unlockOffer(ctx, o, id)
		st["tried:"+o] = "1"
	}
	if now.UnixMilli()-started >= d.cfg.Timeout.Milliseconds() {
		if _, err := d.trips.Expire(ctx, id); err != nil && !errors.Is(err, trip.ErrInvalidTransition) {
			return false, 0, err
		}
		return true, 0, nil
	}
	for k := range st {
		if drv, ok := strings.CutPrefix(k, "tried:"); ok {
			exclude[drv] = true
		}
	}
	center := geo.Point{Lat: t.Pickup.Lat, Lng: t.Pickup.Lng}
	// The radius widens with time (dispatch.Radii).
	elapsed := time.Duration(now.UnixMilli()-started) * time.Millisecond
	for _, r := range dispatch.Radii(d.cfg.Radii, elapsed, d.cfg.Timeout) {
		cands, err := d.finder.Nearby(ctx, driver.NearbyQuery{Center: center, RadiusM: r, Limit: d.cfg.Candidates, Exclude: exclude})
		if err != nil {
			return false, 0, err
		}
		if len(cands) == 0 {
			continue // widen
		}
		dispatch.Rank(cands)
		for _, c := range cands {
			ok, err := d.rdb.SetNX(ctx, d.key(offerLockKey, c.ID), id, d.cfg.OfferTimeout+2*time.Second).Result()
			if err != nil {
				return false, 0, err
			}
			if !ok {
				continue // busy with another offer
			}
			deadline := now.Add(d.cfg.OfferTimeout).UnixMilli()
			eta := strconv.FormatFloat(c.ETAS, 'f', 0, 64)
			dist := strconv.FormatFloat(c.DistanceM, 'f', 1, 64)
			n, err := offerScript.Run(ctx, d.rdb, []string{d.key(dispatchKey, id), d.key(leaseKey, id)},
				d.cfg.NodeID, c.ID, deadline, eta, dist, ttl).Int64()
			if err != nil || n == 0 {
				d.unlockOffer(ctx, c.ID, id)
				if err == nil {
					err = errLeaseLost
				}
				return false, 0, err
			}
			if err := d.sendOffer(ctx, t, c.ID, n, deadline, eta, dist); err != nil {
				return false, 0, err // the next step re-sends it
			}
			published[n] = true
			return false, d.cfg.Poll, nil
		}
		return false, d.cfg.Retry, nil // candidates exist but all are busy: retry soon
	}
	return false, waitEmpty, nil
}

func (d *offers) sendOffer(ctx context.Context, t trip.Trip, drv string, n, deadline int64, eta, dist string) error {
	start := time.Now()
	o := dispatch.Offer{TripID: t.ID, OfferNo: n, Kind: t.Kind, Pickup: t.Pickup, Dropoff: t.Dropoff,
		ExpiresAt: time.UnixMilli(deadline).UTC()}
	o.ETAS, _ = strconv.ParseFloat(eta, 64)
	o.DistanceM, _ = strconv.ParseFloat(dist, 64)
	if _, err := d.cmds.Send(ctx, drv, dispatch.CmdOffer, o, "offer:"+t.ID+":"+strconv.FormatInt(n, 10)); err != nil {
		return err
	}
	if d.sent != nil {
		d.sent(time.Since(start))
	}
	return nil
}

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func (d *offers) unlockOffer(ctx context.Context, drv, tripID string) {
	unlockScript.Run(ctx, d.rdb, []string{d.key(offerLockKey, drv)}, tripID)
}
