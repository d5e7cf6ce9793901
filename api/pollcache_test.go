package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/client"
)

// TestPollCacheNodes: two nodes over the same Redis, each with its own
// poll cache. Node a answers polls from tags it read less than its
// PollCacheTTL ago; a change made through node b shows on a within that
// TTL, one made through a at once; a revoked share is refused at once.
func TestPollCacheNodes(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{}) // node b
	const ttl = 3 * time.Second
	a := api.New(api.Config{JWTSecret: []byte(secret), Dev: true, Limits: unlimited, PollCacheTTL: ttl},
		newDeps(e.rdb, "", e.drivers, e.trips, e.feed))
	tsA := httptest.NewServer(a.Handler())
	defer tsA.Close()
	ctx := context.Background()

	snap, rcB := e.newTrip(t)
	id := snap.Trip.ID
	rcA := client.New(tsA.URL, rcB.Token(), nil)
	p, err := rcA.GetTrip(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("change on another node", func(t *testing.T) {
		seeded := time.Now() // the poll's read begins after this
		if p2, err := rcA.GetTrip(ctx, id, p.ETag); err != nil || !p2.NotModified {
			t.Fatalf("unchanged: %+v %v", p2, err)
		}
		_, dc := e.newDriver(t)
		if _, err := dc.TripAction(ctx, id, "accept", ""); err != nil {
			t.Fatal(err)
		}
		changed := time.Now()
		if b, err := rcB.GetTrip(ctx, id, p.ETag); err != nil || b.NotModified {
			t.Fatalf("node b after its change: %+v %v", b, err)
		}
		p3, err := rcA.GetTrip(ctx, id, p.ETag)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(seeded) < ttl-100*time.Millisecond && !p3.NotModified {
			t.Fatal("node a read Redis although it had read the tag less than PollCacheTTL ago")
		}
		// The stale 304 lasts less than ttl from the read that seeded it.
		time.Sleep(time.Until(seeded.Add(ttl)))
		p4, err := rcA.GetTrip(ctx, id, p.ETag)
		if err != nil || p4.NotModified || p4.Snapshot.Trip.Status != "driver_assigned" {
			t.Fatalf("node a %v after the change (%v after its read): %+v %v", time.Since(changed), time.Since(seeded), p4, err)
		}
		p = p4
	})

	t.Run("change on this node", func(t *testing.T) {
		if p2, err := rcA.GetTrip(ctx, id, p.ETag); err != nil || !p2.NotModified {
			t.Fatalf("unchanged: %+v %v", p2, err)
		}
		if _, err := rcA.TripAction(ctx, id, "cancel", "changed my mind"); err != nil {
			t.Fatal(err)
		}
		p3, err := rcA.GetTrip(ctx, id, p.ETag)
		if err != nil || p3.NotModified || p3.Snapshot.Trip.Status != "cancelled" {
			t.Fatalf("after a change through this node: %+v %v", p3, err)
		}
	})

	t.Run("revoked share", func(t *testing.T) {
		snap, rc := e.newTrip(t)
		link, err := rc.ShareTrip(ctx, snap.Trip.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		vc := client.New(tsA.URL, link.Token, nil)
		v, err := vc.GetTrip(ctx, snap.Trip.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if v2, err := vc.GetTrip(ctx, snap.Trip.ID, v.ETag); err != nil || !v2.NotModified {
			t.Fatalf("viewer poll: %+v %v", v2, err)
		}
		if err := rc.RevokeShare(ctx, snap.Trip.ID, link.ID); err != nil { // through node b
			t.Fatal(err)
		}
		_, err = vc.GetTrip(ctx, snap.Trip.ID, v.ETag)
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
			t.Fatalf("revoked viewer polled: %v", err)
		}
	})
}
