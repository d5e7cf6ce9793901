package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// TestTripEventsReachTheArchive: with an archive configured (the embedded
// Redis and the data directory's SQLite, as `make run`), a trip's durable
// events and its record reach the archive through the pipeline, each event
// once and in the stream's order.
func TestTripEventsReachTheArchive(t *testing.T) {
	m, _ := runMainWith(t, Config{DataDir: filepath.Join(t.TempDir(), "state")})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	tok, err := anon.DevToken(ctx, "rider", "r_pipe", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := anon.WithToken(tok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	topic := trip.Topic(id)
	entries, err := m.Redis().XRange(ctx, feed.StreamKey("", topic), "-", "+").Result()
	if err != nil || len(entries) == 0 {
		t.Fatalf("the trip's stream: %d entries, %v", len(entries), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := m.Archive()
		var evs []archive.Event
		var rec archive.Trip
		var rerr error = archive.ErrNotFound
		if s != nil {
			evs, err = s.Events(ctx, archive.EventQuery{Topic: topic, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			rec, rerr = s.Trip(ctx, id)
		}
		if len(evs) >= len(entries) && rerr == nil {
			if len(evs) != len(entries) {
				t.Fatalf("archived %d events, the stream holds %d", len(evs), len(entries))
			}
			for i, e := range entries {
				if evs[i].ID != e.ID || evs[i].TripID != id {
					t.Fatalf("archived event %d = %+v, want id %s", i, evs[i], e.ID)
				}
			}
			if rec.RiderID != "r_pipe" || rec.Version < 1 {
				t.Fatalf("trip record %+v", rec)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the archive holds %d of %d events, trip record: %v", len(evs), len(entries), rerr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
