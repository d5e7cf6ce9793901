package api_test

import (
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
)

// One timer per stream serves heartbeats and access re-checks: whichever
// period is shorter, the heartbeat keeps its own rhythm and the stream stays
// open while access is valid.
func TestSSEHeartbeatWithAuthCheck(t *testing.T) {
	for _, tc := range []struct {
		name             string
		heartbeat, check time.Duration
	}{
		{"check more often", 100 * time.Millisecond, 20 * time.Millisecond},
		{"check less often", 50 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTripEnv(t, api.StreamConfig{Heartbeat: tc.heartbeat, AuthCheck: tc.check})
			snap, rc := e.newTrip(t)
			c := openSSE(t, e.eventsURL(snap.Trip.ID)+"?access_token="+rc.Token(), "", nil)
			if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" {
				t.Fatalf("first event %+v, want snapshot", f)
			}
			const want = 5
			start := time.Now()
			for n := 0; n < want; {
				f, err := c.next()
				if err != nil {
					t.Fatalf("stream ended after %d heartbeats: %v", n, err)
				}
				if f.event != "" {
					t.Fatalf("unexpected event %+v", f)
				}
				if f.comment != "" {
					n++
				}
			}
			// 5 heartbeats take 5 periods; allow a loaded machine 4× that.
			if d := time.Since(start); d < (want-1)*tc.heartbeat || d > 4*want*tc.heartbeat {
				t.Fatalf("%d heartbeats took %v with period %v", want, d, tc.heartbeat)
			}
		})
	}
}
