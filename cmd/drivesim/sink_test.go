package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/sink"
)

// lockedBuffer is a command's stderr read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSinkCommand: drivesim sink, fed a real trip's events signed as
// hextrack's deliveries are (one twice, the last never), compares them
// with the trip's history read from the real server with an API key
// (trips:read) and reports the duplicate and the gap when stopped.
func TestSinkCommand(t *testing.T) {
	base := mustRunServer(t)
	ctx := context.Background()
	anon := client.New(base, "", nil)
	opsTok, err := anon.DevToken(ctx, "ops", "ops1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Token string }
	if _, _, err := anon.WithToken(opsTok).Do(ctx, http.MethodPost, "/v1/apikeys",
		map[string]any{"name": "sink", "scopes": []string{"trips:read"}}, &created, nil); err != nil || created.Token == "" {
		t.Fatalf("create API key: %v", err)
	}
	riderTok, _ := anon.DevToken(ctx, "rider", "r_sink", time.Hour)
	rider := anon.WithToken(riderTok)
	snap, err := rider.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.1530, Lng: -8.6109}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rider.CancelTrip(ctx, snap.Trip.ID, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	page, err := rider.TripEvents(ctx, snap.Trip.ID, "", 100, 0)
	var evs []client.Event
	for _, e := range page.Events {
		if e.ID != "" {
			evs = append(evs, e)
		}
	}
	if err != nil || len(evs) < 2 {
		t.Fatalf("the trip's events: %+v, %v; want at least 2", page, err)
	}

	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the endpoint's secret, 32 bytes!"))
	jsonOut := filepath.Join(t.TempDir(), "sink.json")
	sctx, stop := context.WithCancel(ctx)
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(sctx, []string{"sink", "--addr", "127.0.0.1:0", "--secret", secret, "--server", base,
			"--token", created.Token, "--json", jsonOut}, &stdout, stderr)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if _, a, ok := strings.Cut(stderr.String(), "sink listening on "); ok {
			addr = strings.TrimSpace(a)
		} else if time.Now().After(deadline) {
			t.Fatalf("sink did not start: %s", stderr.String())
		}
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	deliver := func(e client.Event) {
		body, _ := json.Marshal(map[string]any{"id": e.ID, "type": e.Type, "topic": e.Topic, "trip": snap.Trip.ID, "ts": e.TS, "data": e.Data})
		now := time.Now()
		sig, _ := wh.Sign(e.ID, now, body)
		req, _ := http.NewRequest(http.MethodPost, addr, bytes.NewReader(body))
		req.Header.Set("webhook-id", e.ID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delivery of %s: %v %v", e.ID, resp, err)
		}
		resp.Body.Close()
	}
	last := evs[len(evs)-1]
	for _, e := range evs[:len(evs)-1] {
		deliver(e)
	}
	deliver(evs[0]) // a redelivery
	stop()          // as SIGINT does
	if err := <-done; err != nil {
		t.Fatalf("drivesim sink: %v", err)
	}
	b, err := os.ReadFile(jsonOut)
	var r sink.Report
	if err != nil || json.Unmarshal(b, &r) != nil {
		t.Fatalf("report file: %v %s", err, b)
	}
	n := int64(len(evs))
	if r.Received != n || r.Unique != n-1 || r.Duplicates != 1 || r.OutOfOrder != 0 || r.BadSignatures != 0 ||
		r.Gaps != 1 || len(r.GapIDs[snap.Trip.ID]) != 1 || r.GapIDs[snap.Trip.ID][0] != last.ID || r.Checked != 1 {
		t.Fatalf("report = %+v, want %d received, 1 duplicate, gap %s", r, n, last.ID)
	}
	if out := stdout.String(); !strings.Contains(out, "duplicates 1") || !strings.Contains(out, "gaps 1") || !strings.Contains(out, last.ID) {
		t.Fatalf("printed report:\n%s", out)
	}
}
