package pollcache

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Cache remembers, for a short time, the validator a poll of a trip or
// a payment was answered with, per resource and caller, so that a poller
// whose If-None-Match still matches gets its 304 without a Redis read.
//
// The guarantee (any number of nodes, no invalidation needed for it): a
// 304 is answered from a tag that a read begun at most ttl before the
// request found in Redis. A change is therefore never hidden from a poller
// for longer than ttl (api's Config.PollCacheTTL, 100 ms by default: a small
// part of the 2–30 s the polls are spaced by, less than a mobile round
// trip). Changes made through this node (the trip and payment routes:
// actions, payments, webhooks) forget the trip's entries at once, and a
// read begun before such a change is not kept, so a client that acted and
// polls again through the same node sees its change on the next poll.
// Changes made elsewhere (other nodes, pings, dispatch, ETAs) show within
// ttl.
//
// Only successful tag reads are kept: a refusal (401, 403, 404) or a Redis
// error is decided anew on every request. Viewer (share-link) tokens are
// never served from here, so a revoked share is refused at once. The
// cache holds at most maxTrips trips; past that, expired ones are
// swept, and if none is, an arbitrary one goes.
type Cache struct {
	ttl time.Duration // > 0; a nil *Cache is off
	now func() time.Time

	mu    sync.RWMutex
	trips map[string]*tripEntries
}

// maxTrips bounds the trips a node's Cache holds (~200 B each).
const maxTrips = 50_000

// tripEntries is the cache of one trip: its trip and payment tags, per caller.
type tripEntries struct {
	// forgot is when a change made through this node forgot the trip's
	// entries: a read begun before it may predate the change.
	forgot  time.Time
	entries []entry
}

// Key names a cached tag: a trip (Res "") or a payment (Res its ID),
// as seen by one caller.
type Key struct {
	Res, Role, Sub string
}

// entry is one cached tag: the ETag (as the header's value, shared by
// every response built from the entry: see api's secureHeaders on
// sharing them), what the handler needs to answer without the domain call (the
// poll interval of a trip, whether a payment is final), and when the read
// it came from began.
type entry struct {
	key  Key
	etag []string
	aux  int
	at   time.Time
}

// New returns a cache of tags for ttl; nil (off) for ttl < 0.
func New(ttl time.Duration) *Cache {
	if ttl < 0 {
		return nil
	}
	if ttl == 0 {
		ttl = 100 * time.Millisecond
	}
	return &Cache{ttl: ttl, now: time.Now, trips: make(map[string]*tripEntries)}
}

// Get returns the cached tag of k on trip, if one was read less than ttl
// ago.
func (pc *Cache) Get(trip string, k Key) (etag []string, aux int, ok bool) {
	if pc == nil {
		return nil, 0, false
	}
	now := pc.now()
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	t := pc.trips[trip]
	if t == nil {
		return nil, 0, false
	}
	for i := range t.entries {
		if e := &t.entries[i]; e.key == k {
			if now.Sub(e.at) >= pc.ttl {
				return nil, 0, false
			}
			return e.etag, e.aux, true
		}
	}
	return nil, 0, false
}

// Put keeps the tag of k on trip (a header value: []string{etag}, not
// written to afterwards) that a read begun at `at` returned, unless a newer
// one is kept or the trip changed through this node since `at`.
func (pc *Cache) Put(trip string, k Key, etag []string, aux int, at time.Time) {
	if pc == nil {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	t := pc.tripLocked(trip)
	if !t.forgot.IsZero() && !at.After(t.forgot) {
		return
	}
	for i := range t.entries {
		if e := &t.entries[i]; e.key == k {
			if at.After(e.at) {
				*e = entry{key: k, etag: etag, aux: aux, at: at}
			}
			return
		}
	}
	t.entries = append(t.entries, entry{key: k, etag: etag, aux: aux, at: at})
}

// tripLocked returns trip's entries, made (room made first) when it has
// none. pc.mu is held.
func (pc *Cache) tripLocked(trip string) *tripEntries {
	t := pc.trips[trip]
	if t == nil {
		if len(pc.trips) >= maxTrips {
			pc.sweep()
		}
		t = &tripEntries{}
		pc.trips[trip] = t
	}
	return t
}

// Forget drops the entries of trip: it changed through this node. Reads
// begun before now are not kept afterwards.
func (pc *Cache) Forget(trip string) {
	if pc == nil || trip == "" {
		return
	}
	now := pc.now()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	t := pc.tripLocked(trip)
	t.forgot, t.entries = now, nil
}

// sweep drops the trips with nothing unexpired (pc.mu held); if that
// frees too little, arbitrary trips go (an eighth of the cache, so that a
// full cache is not swept on every put). A trip forgotten less than ttl
// ago is kept while there is room: a read begun before its change may
// still come back (if it goes, such a read may be kept: stale for ttl at
// most, the guarantee still holds).
func (pc *Cache) sweep() {
	now := pc.now()
	for id, t := range pc.trips {
		live := now.Sub(t.forgot) < pc.ttl
		for i := range t.entries {
			live = live || now.Sub(t.entries[i].at) < pc.ttl
		}
		if !live {
			delete(pc.trips, id)
		}
	}
	for id := range pc.trips {
		if len(pc.trips) < maxTrips-maxTrips/8 {
			break
		}
		delete(pc.trips, id)
	}
}

// ForgetTripChanges is echo middleware: a request that may change a trip
// (any method but GET and HEAD on a route under /v1/trips/:id, api's own
// or a package's like api/stops) forgets the trip's entries before its
// answer is written (the change is made by then), and again after.
func (pc *Cache) ForgetTripChanges(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		m, id := c.Request().Method, c.Param("id")
		if pc == nil || m == http.MethodGet || m == http.MethodHead || id == "" || !strings.HasPrefix(c.Path(), "/v1/trips/:id") {
			return next(c)
		}
		c.Response().Before(func() { pc.Forget(id) })
		defer pc.Forget(id)
		return next(c)
	}
}
