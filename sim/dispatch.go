package sim

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
)

// dispatcher is the simulator's own dispatch (DispatchSim, for servers
// without one): it knows where every driver is and whether it is idle,
// and offers a requested trip to the nearest idle driver not yet tried for
// it. With the server's dispatch it only keeps the drivers' state.
type dispatcher struct {
	enabled bool                // cfg.Dispatch == DispatchSim
	anon    *client.Client      // re-reads a declined trip, with token's answer
	token   func(string) string // a token that may read the trip ("": none)

	mu      sync.Mutex
	drivers []*simDriver
	tried   map[string]map[string]bool
	idle    []atomic.Bool
	pos     []atomic.Pointer[geo.Point]
}

// reset makes room for the state of n drivers (a run's), indexed by
// simDriver.index.
func (f *dispatcher) reset(n int) {
	f.idle = make([]atomic.Bool, n)
	f.pos = make([]atomic.Pointer[geo.Point], n)
}

// add makes d a candidate for offers.
func (f *dispatcher) add(d *simDriver) {
	f.mu.Lock()
	f.drivers = append(f.drivers, d)
	f.mu.Unlock()
}

// moved records driver i's position and whether it is free for an offer.
func (f *dispatcher) moved(i int, p geo.Point, idle bool) {
	f.pos[i].Store(&p)
	f.idle[i].Store(idle)
}

// forget drops what was tried for a trip that is no longer followed.
func (f *dispatcher) forget(trip string) {
	f.mu.Lock()
	delete(f.tried, trip)
	f.mu.Unlock()
}

// dispatch offers a trip to the nearest idle driver not yet tried for it.
func (f *dispatcher) dispatch(trip string, pickup client.Place, exclude string) {
	p := geo.Point{Lat: pickup.Lat, Lng: pickup.Lng}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tried == nil {
		f.tried = map[string]map[string]bool{}
	}
	tried := f.tried[trip]
	if tried == nil {
		tried = map[string]bool{}
		f.tried[trip] = tried
	}
	if exclude != "" {
		tried[exclude] = true
	}
	var best *simDriver
	bestD := math.Inf(1)
	for _, d := range f.drivers {
		if tried[d.id] || !f.idle[d.index].Load() {
			continue
		}
		q := f.pos[d.index].Load()
		if q == nil {
			continue
		}
		if dist := geo.Distance(p, *q); dist < bestD {
			best, bestD = d, dist
		}
	}
	if best == nil {
		return // nobody free: the trip expires on the server (or waits)
	}
	tried[best.id] = true
	select {
	case best.work.offers <- offer{trip: trip}:
	default:
	}
}

// again re-offers a trip a driver turned down (DispatchSim only).
func (f *dispatcher) again(trip, exclude string) {
	if !f.enabled {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := f.anon.WithToken(f.token(trip)).GetTrip(ctx, trip, "")
		if err != nil || p.Snapshot.Trip.Status != StatusRequested {
			return
		}
		f.dispatch(trip, p.Snapshot.Trip.Pickup, exclude)
	}()
}
