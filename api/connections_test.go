package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
)

// TestConnectionsGauge: hextrack_connections, what deploy/ charts and
// autoscales on, counts a rider's trip SSE stream and a waiting long-poll,
// not only ops streams and driver WebSockets.
func TestConnectionsGauge(t *testing.T) {
	// A short heartbeat: the stream notices its client went within it.
	e := newTripEnv(t, api.StreamConfig{Heartbeat: 100 * time.Millisecond})
	snap, rc := e.newTrip(t)
	sse := `hextrack_connections{transport="sse"}`
	lp := `hextrack_connections{transport="longpoll"}`

	c := openSSE(t, e.eventsURL(snap.Trip.ID), rc.Token(), nil)
	if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" {
		t.Fatalf("first event %+v, want snapshot", f)
	}
	if v := metricValue(t, e, sse); v != "1" {
		t.Fatalf("%s = %q with a trip stream open, want 1", sse, v)
	}
	c.resp.Body.Close()
	waitFor(t, 3*time.Second, "the stream uncounted after the client went", func() (bool, string) {
		v := metricValue(t, e, sse)
		return v == "0", sse + " = " + v
	})

	// A long-poll with nothing to return waits, and counts while it does.
	page, err := rc.TripEvents(context.Background(), snap.Trip.ID, "", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = rc.TripEvents(ctx, snap.Trip.ID, page.Next, 100, 20*time.Second)
	}()
	waitFor(t, 3*time.Second, "the waiting long-poll counted", func() (bool, string) {
		v := metricValue(t, e, lp)
		return v == "1", lp + " = " + v
	})
	cancel()
	<-done
	waitFor(t, 3*time.Second, "the long-poll uncounted once it ended", func() (bool, string) {
		v := metricValue(t, e, lp)
		return v == "0", fmt.Sprintf("%s = %s", lp, v)
	})
}
