package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/trip"
)

// TestTripEventsReachWebhook: in dev mode, an endpoint created over the
// API on a local receiver gets a trip's durable events through the
// archive, signed with the secret the creation showed, in the trip's
// order, each as the feed's envelope.
func TestTripEventsReachWebhook(t *testing.T) {
	var (
		mu  sync.Mutex
		wh  *standardwebhooks.Webhook
		got []string
		bad []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct{ ID, Topic string }
		_ = json.Unmarshal(body, &env)
		mu.Lock()
		defer mu.Unlock()
		if wh == nil || wh.Verify(body, r.Header) != nil || r.Header.Get("webhook-id") != env.Topic+"/"+env.ID {
			bad = append(bad, string(body))
		}
		if !slices.Contains(got, env.ID) {
			got = append(got, env.ID)
		}
	}))
	defer recv.Close()

	m, _ := runMainWith(t, Config{DataDir: filepath.Join(t.TempDir(), "state")})
	ctx := context.Background()
	base := "http://" + m.Addr()
	anon := client.New(base, "", nil)
	opsTok, err := anon.DevToken(ctx, "ops", "ops_e2e", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"url": recv.URL + "/hooks", "filter": []string{"trip.*"}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/webhooks/endpoints", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+opsTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID, Secret string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.Secret == "" {
		t.Fatalf("create endpoint: %d %+v", resp.StatusCode, created)
	}
	mu.Lock()
	if wh, err = standardwebhooks.NewWebhook(created.Secret); err != nil {
		t.Fatal(err)
	}
	mu.Unlock()

	tok, err := anon.DevToken(ctx, "rider", "r_hook", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := anon.WithToken(tok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	topic := trip.Topic(snap.Trip.ID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var want []string
		if s := m.Archive(); s != nil {
			evs, err := s.Events(ctx, archive.EventQuery{Topic: topic, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				want = append(want, ev.ID)
			}
		}
		mu.Lock()
		done := len(want) > 0 && slices.Equal(got, want)
		gotNow, badNow := slices.Clone(got), len(bad)
		mu.Unlock()
		if badNow > 0 {
			t.Fatalf("%d deliveries failed verification", badNow)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the receiver got %v, the archive holds %v", gotNow, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
