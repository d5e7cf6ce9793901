package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/etalearn"
	"github.com/hextrack/hextrack/eta/etamodel"
)

// fillCompletedTrips archives n completed rides around Porto, each driven
// in a straight line at 5 m/s with a fix every 15 s, ending before now.
func fillCompletedTrips(t *testing.T, u string, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := openStore(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 1))
	first := time.Now().Add(-time.Duration(n+1) * 10 * time.Minute).UTC()
	var recs []archive.Trip
	var pts []archive.Point
	for i := range n {
		a := syntheticCenter
		a.Lat += (rng.Float64() - 0.5) * 0.05
		a.Lng += (rng.Float64() - 0.5) * 0.07
		ang, d := rng.Float64()*2*math.Pi, 1500+rng.Float64()*3000
		b := a
		b.Lat += d * math.Sin(ang) / 111_320
		b.Lng += d * math.Cos(ang) / (111_320 * math.Cos(a.Lat*math.Pi/180))
		start, dur := first.Add(time.Duration(i)*10*time.Minute), d/5
		id := fmt.Sprintf("learn%04d", i)
		seq := int64(0)
		for s := 0.0; ; s += 15 {
			s = math.Min(s, dur)
			seq++
			pts = append(pts, archive.Point{TripID: id, Seq: seq, DriverID: "d1", Lat: a.Lat + (b.Lat-a.Lat)*s/dur,
				Lng: a.Lng + (b.Lng-a.Lng)*s/dur, TS: start.Add(time.Duration(s * float64(time.Second)))})
			if s >= dur {
				break
			}
		}
		snap, _ := json.Marshal(map[string]any{"trip": map[string]any{"id": id, "pickup": map[string]float64{"lat": a.Lat, "lng": a.Lng}}})
		end := start.Add(time.Duration(dur * float64(time.Second)))
		recs = append(recs, archive.Trip{ID: id, Kind: "ride", RiderID: "r1", DriverID: "d1", Status: archive.StatusCompleted,
			Version: 5, CreatedAt: start, UpdatedAt: end, EndedAt: end, Snapshot: snap})
	}
	if _, err := s.UpsertTrips(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendPoints(ctx, pts); err != nil {
		t.Fatal(err)
	}
}

// TestServerTrainsETAModelFromArchive: a server with an archive of
// completed trips trains at start, installs the model (it beats the
// online speeds on the latest trips), serves it, names it in /metrics and
// keeps it in the model directory, where the next start serves it again.
func TestServerTrainsETAModelFromArchive(t *testing.T) {
	dir := t.TempDir()
	fillCompletedTrips(t, filepath.Join(dir, archiveFile), 150)
	var logs logBuffer
	m := NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "info", DataDir: dir, ETATrainEvery: time.Hour, ETATZ: "UTC"}, &logs)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("main: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close()
		}
	})
	base := "http://" + m.Addr()
	var body string
	// Training 150 trips (the boosted trees' cross-validation) takes
	// 30-70 s under -race on 2 cores; with another make test on the same
	// cores it once took over 2 minutes.
	for deadline := time.Now().Add(6 * time.Minute); ; {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = string(b)
		if strings.Contains(body, `hextrack_eta_train_rounds_total{outcome="installed"} 1`) {
			break
		}
		if time.Now().After(deadline) || strings.Contains(body, `hextrack_eta_train_rounds_total{outcome="failed"} 1`) {
			t.Fatalf("no model installed:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	served := m.ETA.served.Load()
	if served.Model == nil || !served.Model.HasCorrection() {
		t.Fatalf("served after training: %+v", served)
	}
	file, err := etamodel.ReadFile(filepath.Join(dir, "eta-models", etalearn.CurrentFile))
	if err != nil || file.Fingerprint() != served.Fingerprint() || !strings.HasSuffix(file.Info.Version, "-archive") {
		t.Fatalf("current.model %v, %v; served %s", file, err, served.Fingerprint())
	}
	if want := `hextrack_eta_model_info{fingerprint="` + served.Fingerprint() + `",version="` + served.Version() + `"} 1`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if !strings.Contains(body, `hextrack_eta_model_validation_error{metric="mape",model="served"}`) {
		t.Errorf("/metrics lacks the served model's validation error")
	}
	if !strings.Contains(logs.String(), "eta training: installed") {
		t.Errorf("log does not say the model was installed:\n%s", logs.String())
	}
	// The served model answers as trained (5 m/s): a 3 km line, within a
	// factor of the truth; the online speeds' prior is far off.
	from := syntheticCenter
	to := from
	to.Lat += 3000 / 111_320.0
	if secs, _ := m.ETA.EstimateSeconds(context.Background(), from, to); secs < 300 || secs > 1200 {
		t.Errorf("served estimate for 3 km: %.0f s, want about 600", secs)
	}
	closed = true
	_ = m.Close()

	// The next start serves the installed model before training again.
	var logs2 logBuffer
	m2 := NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "info", DataDir: dir, ETATrainEvery: time.Hour, ETATZ: "UTC"}, &logs2)
	if err := m2.Run(context.Background()); err != nil {
		t.Fatalf("main: %v", err)
	}
	t.Cleanup(func() { _ = m2.Close() })
	if got := m2.ETA.served.Load().Fingerprint(); got != file.Fingerprint() && !strings.Contains(logs2.String(), "eta training: installed") {
		t.Fatalf("second start serves %s, want the kept %s", got, file.Fingerprint())
	}
	if !strings.Contains(logs2.String(), "serving the model dir's current model") {
		t.Errorf("second start's log:\n%s", logs2.String())
	}
}

// TestETAModelRollbackCommand: eta-model rollback swaps the model
// directory's current and previous files (twice: back), show names them,
// and with no previous file it refuses.
func TestETAModelRollbackCommand(t *testing.T) {
	dir := t.TempDir()
	est := eta.NewEstimator(eta.NewSpeedModel(eta.SpeedConfig{}), nil)
	var fps []string
	for i, name := range []string{etalearn.PreviousFile, etalearn.CurrentFile} {
		mdl, err := etamodel.New(est, etamodel.Info{Version: fmt.Sprintf("v%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := mdl.WriteFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		fps = append(fps, mdl.Fingerprint())
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"eta-model", "rollback", "--dir", dir}, &out, io.Discard); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	cur, _ := etamodel.ReadFile(filepath.Join(dir, etalearn.CurrentFile))
	if cur == nil || cur.Info.Version != "v1" || !strings.Contains(out.String(), "current.model   v1") {
		t.Fatalf("after rollback: current %v; output:\n%s", cur, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"eta-model", "rollback", "--dir", dir}, &out, io.Discard); err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"eta-model", "show", "--dir", dir}, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), "current.model   v2 fingerprint "+fps[1]) || !strings.Contains(out.String(), "previous.model  v1") {
		t.Fatalf("show: %v\n%s", err, out.String())
	}
	empty := t.TempDir()
	if err := run(context.Background(), []string{"eta-model", "rollback", "--dir", empty}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "no previous model") {
		t.Fatalf("rollback without a previous model: %v", err)
	}
}
