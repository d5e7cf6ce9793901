package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
)

// TestSSEHeartbeatOnlyWhenIdle: a stream that is sending events needs no
// heartbeat comments (the events keep proxies from closing it); once it
// falls idle the heartbeats come back, one period after the last write.
func TestSSEHeartbeatOnlyWhenIdle(t *testing.T) {
	const hb = 100 * time.Millisecond
	e := newTripEnv(t, api.StreamConfig{Heartbeat: hb})
	snap, rc := e.newTrip(t)
	c := openSSE(t, e.eventsURL(snap.Trip.ID), rc.Token(), nil)
	if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" {
		t.Fatalf("first event %+v, want snapshot", f)
	}
	type got struct {
		f  frame
		at time.Time
	}
	frames := make(chan got, 256)
	go func() {
		defer close(frames)
		for {
			f, err := c.next()
			if err != nil {
				return
			}
			frames <- got{f, time.Now()}
		}
	}()
	// A message every 30 ms for 0.6 s: six heartbeat periods with events.
	const msgs = 20
	sent := make(chan error, 1)
	go func() {
		for i := range msgs {
			if _, err := rc.SendMessage(context.Background(), snap.Trip.ID, fmt.Sprintf("m%d", i), "hi"); err != nil {
				sent <- err
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
		sent <- nil
	}()
	var lastEvent time.Time
	events, idleBeats := 0, 0
	deadline := time.After(10 * time.Second)
	for idleBeats < 2 {
		select {
		case g, ok := <-frames:
			if !ok {
				t.Fatal("stream ended")
			}
			switch {
			case g.f.event != "":
				events++
				lastEvent = g.at
			case g.f.comment != "":
				// A heartbeat goes out only after 7/8 of a period without
				// a write; allow the client half of one.
				if gap := g.at.Sub(lastEvent); events < msgs && gap < hb/2 {
					t.Fatalf("heartbeat %v after an event, with events still coming (%d of %d)", gap, events, msgs)
				}
				if events == msgs {
					idleBeats++
				}
			}
		case <-deadline:
			t.Fatalf("%d events of %d, %d heartbeats once idle", events, msgs, idleBeats)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
