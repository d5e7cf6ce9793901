package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// TestTripUnderWayLostFromRedis: a trip still under way when Redis lost it
// (make run's embedded Redis restarts empty; here its keys are deleted) is
// served from the archive at its last state, marked tracking_lost and
// without an ETA: nothing moves it on any more, and clients say so instead
// of following it as if it were live. Served from Redis, it carries no
// such mark.
func TestTripUnderWayLostFromRedis(t *testing.T) {
	m, _ := runMainWith(t, Config{DataDir: filepath.Join(t.TempDir(), "state")})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	rtok, err := anon.DevToken(ctx, "rider", "r_lost", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := anon.WithToken(rtok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	waitArchived(t, m, id)
	type reply struct {
		Trip         struct{ Status string }
		ETA          json.RawMessage `json:"eta"`
		TrackingLost *bool           `json:"tracking_lost"`
	}
	read := func(when string) reply {
		r := httpGet(t, m, "/v1/trips/"+id, rtok)
		var out reply
		if err := json.Unmarshal([]byte(r.body), &out); err != nil || r.status != 200 {
			t.Fatalf("GET the trip %s: %d %s %v", when, r.status, r.body, err)
		}
		return out
	}
	if live := read("from Redis"); live.TrackingLost != nil || live.Trip.Status != "requested" {
		t.Fatalf("the live trip: %+v", live)
	}
	keys, _ := m.Redis().Keys(ctx, "*"+id+"*").Result()
	if err := m.Redis().Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	lost := read("from the archive")
	if lost.TrackingLost == nil || !*lost.TrackingLost || lost.Trip.Status != "requested" || string(lost.ETA) != "null" {
		t.Fatalf("the trip Redis lost under way, from the archive: status %q, tracking_lost %v, eta %s", lost.Trip.Status, lost.TrackingLost, lost.ETA)
	}
}
