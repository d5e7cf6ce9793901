package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// opsCall sends an ops request to a node and decodes the JSON answer.
func opsCall(t *testing.T, base, tok, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func rectZone(name, kind string, w, s, e, n float64) string {
	return fmt.Sprintf(`{"name":%q,"kind":%q,"dwell_after_s":30,"geometry":{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}}`,
		name, kind, w, s, e, s, e, n, w, n, w, s)
}

// TestZonesAcrossNodes: zones made through node A are used by node B's
// ingest; a driver whose pings alternate between the nodes gets its zone
// events once and in order on the zone's SSE stream; who is inside is
// listed; a trip outside the service area is refused with 422.
func TestZonesAcrossNodes(t *testing.T) {
	nodes := mustRunNodes(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	baseA, baseB := "http://"+nodes[0].Addr(), "http://"+nodes[1].Addr()
	a, b := client.New(baseA, "", nil), client.New(baseB, "", nil)
	ops, err := a.DevToken(ctx, "ops", "ops1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, city := opsCall(t, baseA, ops, http.MethodPost, "/v1/zones", rectZone("Porto", "service_area", -8.70, 41.10, -8.55, 41.20))
	if st != http.StatusCreated {
		t.Fatalf("create service area = %d %v", st, city)
	}
	st, q := opsCall(t, baseA, ops, http.MethodPost, "/v1/zones", rectZone("station queue", "queue", -8.612, 41.148, -8.608, 41.151))
	if st != http.StatusCreated {
		t.Fatalf("create queue = %d %v", st, q)
	}
	qid := q["id"].(string)
	if st, bad := opsCall(t, baseA, ops, http.MethodPost, "/v1/zones", `{"name":"x","kind":"queue","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}}`); st != http.StatusUnprocessableEntity || bad["error"].(map[string]any)["code"] != "zone_self_intersecting" {
		t.Fatalf("self-intersecting = %d %v", st, bad)
	}
	// Node B picks the zones up on its next reload.
	deadline := time.Now().Add(5 * time.Second)
	for nodes[1].Zones.Index().Len() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("node B holds %d zones", nodes[1].Zones.Index().Len())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Ops follow the queue's events on node B.
	sreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseB+"/v1/zones/"+qid+"/events", nil)
	sreq.Header.Set("Authorization", "Bearer "+ops)
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil || sresp.StatusCode != http.StatusOK {
		t.Fatalf("events stream: %v %v", err, sresp)
	}
	defer sresp.Body.Close()
	frames := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(sresp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event: ") {
				frames <- strings.TrimPrefix(l, "event: ")
			}
		}
	}()

	dtok, _ := a.DevToken(ctx, "driver", "d_zone", time.Hour)
	da, db := a.WithToken(dtok), b.WithToken(dtok)
	if _, err := da.SetStatus(ctx, "d_zone", "available"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-60 * time.Second)
	track := []struct {
		c        *client.Client
		lat, lng float64
	}{
		{da, 41.1495, -8.6150}, // west of the queue
		{db, 41.1495, -8.6100}, // inside, through node B
		{da, 41.1495, -8.6050}, // east of it, through node A
	}
	for i, p := range track {
		if _, err := p.c.SendLocation(ctx, "d_zone", client.Ping{Lat: p.lat, Lng: p.lng, TS: now.Add(time.Duration(i) * 20 * time.Second), Seq: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// Wait for the step on B before the next ping: who is inside.
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, in := opsCall(t, baseA, ops, http.MethodGet, "/v1/zones/"+qid+"/drivers", "")
				if ds, _ := in["drivers"].([]any); st == http.StatusOK && len(ds) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("drivers inside = %d %v", st, in)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	var got []string
	for len(got) < 2 {
		select {
		case f := <-frames:
			got = append(got, f)
		case <-ctx.Done():
			t.Fatalf("zone events: %v", got)
		}
	}
	if got[0] != "zone.entered" || got[1] != "zone.exited" {
		t.Fatalf("zone events %v", got)
	}
	// Back inside, then set offline: exited at once (not after --stale).
	if _, err := db.SendLocation(ctx, "d_zone", client.Ping{Lat: 41.1495, Lng: -8.6100, TS: now.Add(60 * time.Second), Seq: 4}); err != nil {
		t.Fatal(err)
	}
	for len(got) < 3 {
		select {
		case f := <-frames:
			got = append(got, f)
		case <-ctx.Done():
			t.Fatalf("zone events: %v", got)
		}
	}
	if _, err := da.SetStatus(ctx, "d_zone", "offline"); err != nil {
		t.Fatal(err)
	}
	for len(got) < 4 {
		select {
		case f := <-frames:
			got = append(got, f)
		case <-ctx.Done():
			t.Fatalf("zone events after offline: %v", got)
		}
	}
	if got[2] != "zone.entered" || got[3] != "zone.exited" {
		t.Fatalf("zone events %v", got)
	}

	// Service area: a pickup outside it is refused.
	rtok, _ := a.DevToken(ctx, "rider", "r_zone", time.Hour)
	ra := a.WithToken(rtok)
	_, err = ra.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 40.0, Lng: -8.6}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "zone-out")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || ce.Code != "outside_service_area" {
		t.Fatalf("trip outside the service area: %v", err)
	}
	if _, err := ra.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "zone-in"); err != nil {
		t.Fatalf("trip inside the service area: %v", err)
	}
	if st, _ := opsCall(t, baseA, ops, http.MethodDelete, "/v1/zones/"+city["id"].(string), ""); st != http.StatusNoContent {
		t.Fatalf("delete = %d", st)
	}
}
