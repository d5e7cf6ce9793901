package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/internal/redistest"
)

// mustRunNodes starts n Mains on one real Redis with one key prefix and one
// JWT secret: a cluster of nodes behind no load balancer.
func mustRunNodes(tb testing.TB, n int) []*Main {
	tb.Helper()
	url := realRedis(tb)
	prefix := redistest.Prefix(tb)
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	var ms []*Main
	for range n {
		m := NewMain(Config{Addr: "127.0.0.1:0", RedisURL: url, Dev: true, LogLevel: "warn", Prefix: prefix,
			JWTSecret: "e2e-secret-0123456789abcdef0123456789", DrainWindow: 200 * time.Millisecond}, w)
		if err := m.Run(context.Background()); err != nil {
			tb.Fatalf("main: %v", err)
		}
		tb.Cleanup(func() { _ = m.Close() })
		ms = append(ms, m)
	}
	tb.Cleanup(func() {
		rdb, _ := openRedis(url)
		redistest.Clean(rdb, prefix)
		_ = rdb.Close()
	})
	return ms
}

// TestTripAcrossNodes: a rider follows a trip over SSE on node B while the
// trip is created, accepted, driven, messaged and cancelled through node A.
// B receives every durable event in order and live locations.
func TestTripAcrossNodes(t *testing.T) {
	nodes := mustRunNodes(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := client.New("http://"+nodes[0].Addr(), "", nil)
	b := client.New("http://"+nodes[1].Addr(), "", nil)
	rtok, err := a.DevToken(ctx, "rider", "r_e2e", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dtok, _ := a.DevToken(ctx, "driver", "d_e2e", time.Hour)
	ra, da, rb := a.WithToken(rtok), a.WithToken(dtok), b.WithToken(rtok)
	// The driver is available near the pickup first: dispatch offers it the
	// trip, and it accepts once the offer is there.
	if _, err := da.SetStatus(ctx, "d_e2e", "available"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := da.SendLocation(ctx, "d_e2e", client.Ping{Lat: 41.1400, Lng: -8.6109, TS: now.Add(-10 * time.Second), Seq: 1}); err != nil {
		t.Fatal(err)
	}
	snap, err := ra.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "e2e-"+time.Now().Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	stream := rb.WatchTrip(ctx, id, "")
	f := <-stream.C
	if f.Type != "snapshot" || f.Snapshot == nil || f.Snapshot.Trip.ID != id {
		t.Fatalf("first frame on B: %+v", f)
	}
	for {
		_, err := da.TripAction(ctx, id, "accept", "")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("accept: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // until dispatch's offer is there
	}
	for i := range 5 {
		p := client.Ping{Lat: 41.1400 + float64(i+1)*0.0002, Lng: -8.6109, TS: now.Add(time.Duration(i-8) * time.Second), Seq: int64(i + 2)}
		if _, err := da.SendLocation(ctx, "d_e2e", p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ra.SendMessage(ctx, id, "m1", "see you"); err != nil {
		t.Fatal(err)
	}
	if _, err := da.TripAction(ctx, id, "arrived", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ra.CancelTrip(ctx, id, "too late"); err != nil {
		t.Fatal(err)
	}
	want := []string{"trip.assigned", "trip.message", "trip.status", "trip.cancelled"}
	var got []string
	locations, etas := 0, 0
	for len(got) < len(want) {
		select {
		case f, ok := <-stream.C:
			if !ok {
				t.Fatalf("stream on B ended: %v", stream.Err())
			}
			if f.Type == "trip.location" {
				locations++
				continue
			}
			if f.Type == "trip.eta" { // live ETA from the driver's pings (its own tests: eta/live_test.go)
				etas++
				continue
			}
			got = append(got, f.Type)
		case <-ctx.Done():
			t.Fatalf("B got %v, want %v", got, want)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("B got %v, want %v", got, want)
		}
	}
	if locations == 0 {
		t.Fatal("no trip.location reached node B")
	}
	if etas == 0 {
		t.Fatal("no trip.eta reached node B")
	}
	// The driver was released by the cancel, through node B's view too.
	st, err := b.WithToken(dtok).GetDriver(ctx, "d_e2e")
	if err != nil || st.Status != "available" || st.TripID != "" {
		t.Fatalf("driver after cancel: %+v %v", st, err)
	}
}
