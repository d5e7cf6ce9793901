package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/shareddata"
)

// trainPortoModel runs `hextrack eta-train` on the vendored Porto sample
// (no map: a few seconds) and returns the model file.
func trainPortoModel(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "porto.model")
	var out bytes.Buffer
	err := run(context.Background(), []string{"eta-train", "--trips", shareddata.Path(t, "porto_trips.csv"),
		"--tz", "Europe/Lisbon", "--out", path}, &out, io.Discard)
	if err != nil {
		t.Fatalf("eta-train: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	return path
}

// TestETAModelServedAndScored: the file eta-train writes is the model
// eta-eval scores (--model) and the server serves (--eta-model): /metrics
// names it, every trip.eta carries its version and fingerprint, and nearby
// drivers' eta_s is its estimate.
func TestETAModelServedAndScored(t *testing.T) {
	path := trainPortoModel(t)
	mdl, err := etamodel.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fp, version := mdl.Fingerprint(), mdl.Info.Version
	if !mdl.HasCorrection() || mdl.Info.TZ != "Europe/Lisbon" || mdl.Info.Seed != 1 || mdl.Info.TestFraction != 0.3 {
		t.Fatalf("model info %+v (correction %v)", mdl.Info, mdl.HasCorrection())
	}

	// Scored: eta-eval --model names the file's model and scores it; a
	// different split of the same trips is refused (it would test on
	// training trips).
	var out bytes.Buffer
	trips := shareddata.Path(t, "porto_trips.csv")
	if err := run(context.Background(), []string{"eta-eval", "--trips", trips, "--model", path}, &out, io.Discard); err != nil {
		t.Fatalf("eta-eval --model: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "scoring model "+version+" (fingerprint "+fp) || !strings.Contains(out.String(), "whole trip") {
		t.Fatalf("eta-eval --model output:\n%s", out.String())
	}
	err = run(context.Background(), []string{"eta-eval", "--trips", trips, "--model", path, "--seed", "2"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "same split") {
		t.Fatalf("eta-eval --model on another split: %v", err)
	}

	// Served.
	var logs logBuffer
	m := NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "info", ETAModel: path}, &logs)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("main: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if !strings.Contains(logs.String(), "eta model: serving") || !strings.Contains(logs.String(), fp) {
		t.Errorf("log does not say which model is served:\n%s", logs.String())
	}
	if m.ETA.served.Load().Est.Correction() == nil {
		t.Fatal("served estimator has no correction")
	}
	base := "http://" + m.Addr()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `hextrack_eta_model_info{fingerprint="` + fp + `",version="` + version + `"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	anon := client.New(base, "", nil)
	rtok, err := anon.DevToken(ctx, "rider", "r_model", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dtok, _ := anon.DevToken(ctx, "driver", "d_model", time.Hour)
	rider, drv := anon.WithToken(rtok), anon.WithToken(dtok)
	if _, err := drv.SetStatus(ctx, "d_model", "available"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := drv.SendLocation(ctx, "d_model", client.Ping{Lat: 41.1400, Lng: -8.6109, TS: now.Add(-10 * time.Second), Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// Nearby's eta_s is the served model's (line estimate + correction).
	pickup := client.Place{Lat: 41.1496, Lng: -8.6109}
	list, err := rider.Nearby(ctx, pickup.Lat, pickup.Lng, 3000, 5)
	if err != nil || len(list) != 1 {
		t.Fatalf("nearby: %+v %v", list, err)
	}
	if want, _ := m.ETA.EstimateSeconds(ctx, geo.Point{Lat: 41.1400, Lng: -8.6109}, geo.Point{Lat: pickup.Lat, Lng: pickup.Lng}); list[0].ETAS <= 0 || math.Abs(list[0].ETAS-want) > 60 {
		t.Errorf("nearby eta_s %v, the served model says %v", list[0].ETAS, want)
	}

	snap, err := rider.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride", Pickup: pickup,
		Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "model-e2e")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	stream := rider.WatchTrip(ctx, id, "")
	for {
		if _, err = drv.TripAction(ctx, id, "accept", ""); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("accept: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // until dispatch's offer is there
	}
	for i := range 3 {
		p := client.Ping{Lat: 41.1400 + float64(i+1)*0.0005, Lng: -8.6109, TS: now.Add(time.Duration(i-8) * time.Second), Seq: int64(i + 2)}
		if _, err := drv.SendLocation(ctx, "d_model", p); err != nil {
			t.Fatal(err)
		}
	}
	for {
		select {
		case f, ok := <-stream.C:
			if !ok {
				t.Fatalf("stream ended: %v", stream.Err())
			}
			if f.Type != "trip.eta" {
				continue
			}
			var d struct {
				Leg   string  `json:"leg"`
				ETAS  float64 `json:"eta_s"`
				Model *struct {
					Version     string `json:"version"`
					Fingerprint string `json:"fingerprint"`
				} `json:"model"`
			}
			if err := json.Unmarshal(f.Event.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.Model == nil || d.Model.Fingerprint != fp || d.Model.Version != version || d.Leg != "pickup" || d.ETAS <= 0 {
				t.Fatalf("trip.eta %s: want model %s %s", f.Event.Data, version, fp)
			}
			return
		case <-ctx.Done():
			t.Fatal("no trip.eta")
		}
	}
}

// TestETAModelRefusals: a missing or malformed model file fails the
// server at start instead of serving something else.
func TestETAModelRefusals(t *testing.T) {
	m := NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "warn", ETAModel: filepath.Join(t.TempDir(), "none.model")}, io.Discard)
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "eta model") {
		t.Fatalf("missing model file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.model")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	m = NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "warn", ETAModel: bad}, io.Discard)
	err = m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "etamodel: decode") {
		t.Fatalf("bad model file: %v", err)
	}
}

// TestETAModelMap: a model trained over a map is served over that map
// (routed, corrected) and refused with another map or none; a model
// trained without one is served along the line even when a map is drawn.
func TestETAModelMap(t *testing.T) {
	pbf := shareddata.Path(t, "porto.osm.pbf")
	path := filepath.Join(t.TempDir(), "porto-map.model")
	err := run(context.Background(), []string{"eta-train", "--trips", shareddata.Path(t, "porto_trips.csv"),
		"--map", pbf, "--tz", "Europe/Lisbon", "--out", path}, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("eta-train --map: %v", err)
	}
	start := func(mapFile, model string) (*Main, string, error) {
		var logs logBuffer
		m := NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "info", MapFile: mapFile, ETAModel: model}, &logs)
		err := m.Run(context.Background())
		t.Cleanup(func() { _ = m.Close() })
		return m, logs.String(), err
	}
	m, logs, err := start(pbf, path)
	if err != nil {
		t.Fatalf("serving the model over its map: %v", err)
	}
	if !strings.Contains(logs, "routed=true") || m.ETA.served.Load().Est.Correction() == nil {
		t.Errorf("model not served routed with its correction:\n%s", logs)
	}
	for _, other := range []string{"", "synthetic"} {
		if _, _, err := start(other, path); err == nil || !strings.Contains(err.Error(), "trained with the map porto.osm.pbf") {
			t.Errorf("--map %q with a model of porto.osm.pbf: %v", other, err)
		}
	}
	_, logs, err = start("synthetic", trainPortoModel(t))
	if err != nil || !strings.Contains(logs, "trained without a map") || !strings.Contains(logs, "routed=false") {
		t.Errorf("line model with a drawn map: %v\n%s", err, logs)
	}
}
