package eta

import (
	"context"
	"math"
	"sync"

	"github.com/hextrack/hextrack/driver"
)

// SpeedListener turns consecutive accepted pings of moving drivers into
// speed observations for a Feeder. It keeps each driver's last fix
// (bounded: the map is reset when it grows past maxTracked) and never
// blocks ingest: Offer drops when the feeder's queue is full.
type SpeedListener struct {
	feeder *Feeder
	mu     sync.Mutex
	last   map[string]Fix
}

var _ driver.Listener = (*SpeedListener)(nil)

// NewSpeedListener returns a listener feeding f.
func NewSpeedListener(f *Feeder) *SpeedListener {
	return &SpeedListener{feeder: f, last: map[string]Fix{}}
}

const maxTracked = 200000

// DriverMoved implements driver.Listener.
func (l *SpeedListener) DriverMoved(ctx context.Context, m driver.Move) {
	l.mu.Lock()
	first, ok := l.last[m.DriverID]
	if len(l.last) >= maxTracked {
		l.last = map[string]Fix{}
	}
	last, lok := first, ok
	for _, p := range m.Accepted {
		if t := p.TS; !lok || t.After(last.Time) {
			last, lok = Fix{Point: p.Pos, Time: t}, true
		}
	}
	l.last[m.DriverID] = last
	l.mu.Unlock()
	// The same walk again, outside the lock and without collecting the
	// pairs: each fix newer than the newest before it pairs with that one.
	prev := first
	for _, p := range m.Accepted {
		f := Fix{Point: p.Pos, Time: p.TS}
		if !ok || f.Time.After(prev.Time) {
			if ok {
				if dt := f.Time.Sub(prev.Time).Seconds(); dt > 0 && !math.IsNaN(dt) {
					l.feeder.Offer(prev, f)
				}
			}
			prev, ok = f, true
		}
	}
}
