package etalearn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/etalearn"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/pgtest"
)

var (
	center = geo.Point{Lat: 41.1579, Lng: -8.6291}
	t0     = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
)

// forEachArchive runs f against a fresh SQLite and a fresh PostgreSQL
// archive.
func forEachArchive(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	for _, b := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "archive.db") }},
		{"postgres", pgtest.URL},
	} {
		t.Run(b.name, func(t *testing.T) {
			s, err := sqlstore.Open(context.Background(), b.url(t))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}
}

// synthTrip is a completed trip driven in a straight line at a known
// speed: the driver comes from 600 m away to the pickup, waits a minute
// there, then rides to the dropoff, a fix every 5 s.
type synthTrip struct {
	id              string
	pickup, dropoff geo.Point
	start           time.Time // the ride's start (leaving the pickup)
	speedMS         float64
}

func offset(p geo.Point, east, north float64) geo.Point {
	return geo.Point{Lat: p.Lat + north/111_320, Lng: p.Lng + east/(111_320*math.Cos(p.Lat*math.Pi/180))}
}

// synthTrips makes n trips starting every 10 minutes from first, at speed
// (m/s) as a function of the trip's index.
func synthTrips(seed uint64, first time.Time, n int, speed func(i int) float64) []synthTrip {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]synthTrip, n)
	for i := range out {
		a := offset(center, rng.Float64()*6000-3000, rng.Float64()*6000-3000)
		ang, d := rng.Float64()*2*math.Pi, 1500+rng.Float64()*3000
		out[i] = synthTrip{id: fmt.Sprintf("t%d-%04d", seed, i), pickup: a,
			dropoff: offset(a, d*math.Cos(ang), d*math.Sin(ang)), start: first.Add(time.Duration(i) * 10 * time.Minute),
			speedMS: speed(i)}
	}
	return out
}

// fixes of a straight drive from a to b at v m/s leaving at t, every 5 s.
func drive(a, b geo.Point, v float64, t time.Time) []eta.Fix {
	d := geo.Distance(a, b)
	dur := d / v
	var out []eta.Fix
	for s := 0.0; ; s += 5 {
		s = math.Min(s, dur)
		f := s / dur
		out = append(out, eta.Fix{Point: geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*f, Lng: a.Lng + (b.Lng-a.Lng)*f},
			Time: t.Add(time.Duration(s * float64(time.Second)))})
		if s >= dur {
			return out
		}
	}
}

// fill archives the trips as completed, with their trails (approach, wait
// and ride).
func fill(t *testing.T, s *sqlstore.Store, trips []synthTrip) {
	t.Helper()
	ctx := context.Background()
	var recs []archive.Trip
	var pts []archive.Point
	for _, tr := range trips {
		from := offset(tr.pickup, 600, 0)
		approach := drive(from, tr.pickup, 8, tr.start.Add(-135*time.Second))
		var trail []eta.Fix
		trail = append(trail, approach...)
		for w := 5; w < 60; w += 5 { // waiting at the pickup
			trail = append(trail, eta.Fix{Point: tr.pickup, Time: approach[len(approach)-1].Time.Add(time.Duration(w) * time.Second)})
		}
		ride := drive(tr.pickup, tr.dropoff, tr.speedMS, tr.start)
		trail = append(trail, ride...)
		snap, _ := json.Marshal(map[string]any{"trip": map[string]any{"id": tr.id, "status": "completed",
			"pickup":  map[string]float64{"lat": tr.pickup.Lat, "lng": tr.pickup.Lng},
			"dropoff": map[string]float64{"lat": tr.dropoff.Lat, "lng": tr.dropoff.Lng}}})
		end := ride[len(ride)-1].Time
		recs = append(recs, archive.Trip{ID: tr.id, Kind: "ride", RiderID: "r1", DriverID: "d1", Status: archive.StatusCompleted,
			Version: 5, CreatedAt: trail[0].Time, UpdatedAt: end, EndedAt: end, Snapshot: snap})
		for i, f := range trail {
			pts = append(pts, archive.Point{TripID: tr.id, Seq: int64(i + 1), DriverID: "d1", Lat: f.Point.Lat, Lng: f.Point.Lng, TS: f.Time})
		}
	}
	for len(recs) > 0 {
		n := min(len(recs), 200)
		if _, err := s.UpsertTrips(ctx, recs[:n]); err != nil {
			t.Fatalf("upsert trips: %v", err)
		}
		recs = recs[n:]
	}
	for len(pts) > 0 {
		n := min(len(pts), 2000)
		if _, err := s.AppendPoints(ctx, pts[:n]); err != nil {
			t.Fatalf("append points: %v", err)
		}
		pts = pts[n:]
	}
}

// online is the server's estimator without a model file.
func online() *etalearn.Served {
	return &etalearn.Served{Est: eta.NewEstimator(eta.NewSpeedModel(eta.SpeedConfig{}), nil), Loc: time.UTC}
}

func newTrainer(t *testing.T, s *sqlstore.Store, initial *etalearn.Served, reg *prometheus.Registry) (*etalearn.Trainer, string, *[]string) {
	dir := filepath.Join(t.TempDir(), "models")
	var installed []string
	tr := etalearn.New(etalearn.Config{Archive: s, Dir: dir, Registry: reg, Now: func() time.Time { return t0.Add(5 * 24 * time.Hour) },
		OnInstall: func(s *etalearn.Served) { installed = append(installed, s.Fingerprint()) }}, initial)
	return tr, dir, &installed
}

// The trainer reads the completed trips (rides cut at the pickup),
// trains, beats the online estimator on the latest trips and installs its
// model, keeping the online one for rollback; rollback swaps them back and
// forth, in memory and on disk.
func TestTrainerInstallsABetterModelAndRollsBack(t *testing.T) {
	forEachArchive(t, func(t *testing.T, s *sqlstore.Store) {
		fill(t, s, synthTrips(1, t0, 150, func(int) float64 { return 4 }))
		reg := prometheus.NewRegistry()
		initial := online()
		tr, dir, installed := newTrainer(t, s, initial, reg)
		res, err := tr.Train(context.Background())
		if err != nil {
			t.Fatalf("Train: %v", err)
		}
		if res.Outcome != etalearn.Installed {
			t.Fatalf("outcome %s (%s), want installed", res.Outcome, res.Reason)
		}
		if res.Read.Completed != 150 || res.Read.Used != 150 || res.Valid != 150 || res.Train != 120 || res.Validation != 30 {
			t.Fatalf("counts: %+v valid %d train %d validation %d", res.Read, res.Valid, res.Train, res.Validation)
		}
		// The ride was cut at the pickup: the trained speeds are the
		// ride's 4 m/s, and the candidate is far better than the online
		// priors on the latest trips.
		if res.Candidate.MAPE > 0.15 || res.Candidate.MAPE >= res.Current.MAPE {
			t.Fatalf("candidate MAPE %.3f, served %.3f: want < 0.15 and better", res.Candidate.MAPE, res.Current.MAPE)
		}
		cur := tr.Current()
		if cur.Model == nil || cur.Fingerprint() != res.Model.Fingerprint() || tr.Previous() != initial {
			t.Fatalf("current %s previous %v after install", cur.Fingerprint(), tr.Previous())
		}
		if len(*installed) != 1 || (*installed)[0] != cur.Fingerprint() {
			t.Fatalf("OnInstall saw %v", *installed)
		}
		onDisk, err := etamodel.ReadFile(filepath.Join(dir, etalearn.CurrentFile))
		if err != nil || onDisk.Fingerprint() != cur.Fingerprint() {
			t.Fatalf("current file: %v %v", onDisk, err)
		}
		if cur.Model.Info.TrainTrips != 120 || cur.Model.Info.TZ != "UTC" || !cur.Model.HasCorrection() {
			t.Fatalf("model info %+v, correction %v", cur.Model.Info, cur.Model.HasCorrection())
		}
		if got := series(t, reg, "hextrack_eta_train_rounds_total", "outcome", "installed"); len(got) != 1 || got[0] != 1 {
			t.Fatalf("installed rounds %v", got)
		}
		if got := series(t, reg, "hextrack_eta_model_validation_error", "metric", "mape"); len(got) != 2 ||
			math.Abs(got[0]-res.Candidate.MAPE) > 1e-9 || math.Abs(got[1]-res.Candidate.MAPE) > 1e-9 {
			t.Fatalf("validation MAPE series %v, want the candidate's %.3f twice (candidate, served)", got, res.Candidate.MAPE)
		}

		// Rollback: the online estimator again, the file moved aside.
		if err := tr.Rollback(); err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		if tr.Current() != initial || tr.Previous() != cur {
			t.Fatalf("after rollback current %s previous %s", tr.Current().Fingerprint(), tr.Previous().Fingerprint())
		}
		if _, err := os.Stat(filepath.Join(dir, etalearn.CurrentFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("current file after rolling back to online: %v", err)
		}
		// and back.
		if err := tr.Rollback(); err != nil {
			t.Fatalf("second Rollback: %v", err)
		}
		if tr.Current() != cur {
			t.Fatalf("after the second rollback: %s", tr.Current().Fingerprint())
		}
		if m, err := etamodel.ReadFile(filepath.Join(dir, etalearn.CurrentFile)); err != nil || m.Fingerprint() != cur.Fingerprint() {
			t.Fatalf("current file after the second rollback: %v", err)
		}
	})
}

// A candidate worse than the served model on the latest trips is refused:
// here traffic changed (the older trips at 10 m/s train the candidate, the
// latest are at 4 m/s, as the served model learned).
func TestTrainerRefusesAWorseCandidate(t *testing.T) {
	forEachArchive(t, func(t *testing.T, s *sqlstore.Store) {
		trips := synthTrips(2, t0, 150, func(i int) float64 {
			if i < 120 {
				return 10
			}
			return 4
		})
		fill(t, s, trips)
		// The served model: trained elsewhere on slow trips.
		var slow []eta.Trip
		for _, st := range synthTrips(3, t0.Add(-10*24*time.Hour), 120, func(int) float64 { return 4 }) {
			fixes := drive(st.pickup, st.dropoff, st.speedMS, st.start)
			var every15 []eta.Fix // as the trainer thins trails
			for i, f := range fixes {
				if i%3 == 0 || i == len(fixes)-1 {
					every15 = append(every15, f)
				}
			}
			slow = append(slow, eta.Trip{ID: st.id, Fixes: every15})
		}
		m, err := etamodel.Train(context.Background(), slow, nil, etamodel.Info{TZ: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		est, err := m.Estimator(nil)
		if err != nil {
			t.Fatal(err)
		}
		served := &etalearn.Served{Model: m, Est: est, Loc: time.UTC}
		tr, dir, installed := newTrainer(t, s, served, nil)
		res, err := tr.Train(context.Background())
		if err != nil {
			t.Fatalf("Train: %v", err)
		}
		if res.Outcome != etalearn.Refused || res.Candidate.MAPE <= res.Current.MAPE {
			t.Fatalf("outcome %s (%s): candidate MAPE %.3f, served %.3f", res.Outcome, res.Reason, res.Candidate.MAPE, res.Current.MAPE)
		}
		if !strings.Contains(res.Reason, "refused") || tr.Current() != served || tr.Previous() != nil || len(*installed) != 0 {
			t.Fatalf("after refusal: %q current %s previous %v installs %v", res.Reason, tr.Current().Fingerprint(), tr.Previous(), *installed)
		}
		if _, err := os.Stat(filepath.Join(dir, etalearn.CurrentFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused candidate was written: %v", err)
		}
		if err := tr.Rollback(); !errors.Is(err, etalearn.ErrNoPrevious) {
			t.Fatalf("Rollback with nothing installed: %v", err)
		}
	})
}

// With no trips, or too few, a round trains nothing and says so.
func TestTrainerSkipsWithoutEnoughTrips(t *testing.T) {
	forEachArchive(t, func(t *testing.T, s *sqlstore.Store) {
		initial := online()
		reg := prometheus.NewRegistry()
		tr, _, installed := newTrainer(t, s, initial, reg)
		res, err := tr.Train(context.Background())
		if err != nil || res.Outcome != etalearn.Skipped || !strings.Contains(res.Reason, "0 valid completed trips") {
			t.Fatalf("empty archive: %v %s %q", err, res.Outcome, res.Reason)
		}
		fill(t, s, synthTrips(4, t0, 20, func(int) float64 { return 5 }))
		res, err = tr.Train(context.Background())
		if err != nil || res.Outcome != etalearn.Skipped || !strings.Contains(res.Reason, "20 valid completed trips") {
			t.Fatalf("20 trips: %v %s %q", err, res.Outcome, res.Reason)
		}
		if tr.Current() != initial || len(*installed) != 0 || res.Model != nil {
			t.Fatalf("a skipped round changed the served model")
		}
		if got := series(t, reg, "hextrack_eta_train_rounds_total", "outcome", "skipped"); len(got) != 1 || got[0] != 2 {
			t.Fatalf("skipped rounds %v", got)
		}
	})
}

// series are the values (counter or gauge) of name's series whose label
// is value, in the registry's order.
func series(t *testing.T, reg *prometheus.Registry, name, label, value string) []float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					out = append(out, m.GetCounter().GetValue()+m.GetGauge().GetValue())
				}
			}
		}
	}
	return out
}

// ReadTrips cuts a trail to the ride (from the last fix near the pickup),
// thins it to a fix per 15 s keeping the last, and leaves out trips whose
// trail never comes near the pickup or has fewer than two fixes.
func TestReadTripsCutsToTheRide(t *testing.T) {
	forEachArchive(t, func(t *testing.T, s *sqlstore.Store) {
		trips := synthTrips(5, t0, 3, func(int) float64 { return 6 })
		fill(t, s, trips)
		ctx := context.Background()
		far := offset(center, 20000, 0)
		snap, _ := json.Marshal(map[string]any{"trip": map[string]any{"pickup": map[string]float64{"lat": far.Lat, "lng": far.Lng}}})
		one, _ := json.Marshal(map[string]any{"trip": map[string]any{"pickup": map[string]float64{"lat": center.Lat, "lng": center.Lng}}})
		recs := []archive.Trip{
			{ID: "faraway", Kind: "ride", RiderID: "r", Status: archive.StatusCompleted, CreatedAt: t0, UpdatedAt: t0, Snapshot: snap},
			{ID: "onefix", Kind: "ride", RiderID: "r", Status: archive.StatusCompleted, CreatedAt: t0, UpdatedAt: t0, Snapshot: one},
			{ID: "running", Kind: "ride", RiderID: "r", Status: "in_progress", CreatedAt: t0, UpdatedAt: t0, Snapshot: one},
		}
		if _, err := s.UpsertTrips(ctx, recs); err != nil {
			t.Fatal(err)
		}
		var pts []archive.Point
		for _, id := range []string{"faraway", "onefix", "running"} {
			n := 40
			if id == "onefix" {
				n = 1
			}
			for i := range n {
				p := offset(center, float64(i)*50, 0)
				pts = append(pts, archive.Point{TripID: id, Seq: int64(i + 1), DriverID: "d", Lat: p.Lat, Lng: p.Lng, TS: t0.Add(time.Duration(i) * 5 * time.Second)})
			}
		}
		if _, err := s.AppendPoints(ctx, pts); err != nil {
			t.Fatal(err)
		}
		lisbon, _ := time.LoadLocation("Europe/Lisbon")
		got, st, err := etalearn.ReadTrips(ctx, s, etalearn.ReadOptions{Loc: lisbon})
		if err != nil {
			t.Fatal(err)
		}
		if st.Completed != 5 || st.Used != 3 || st.NoPickup != 1 || st.NoTrail != 1 || len(got) != 3 {
			t.Fatalf("stats %+v, %d trips", st, len(got))
		}
		byID := map[string]synthTrip{}
		for _, tr := range trips {
			byID[tr.id] = tr
		}
		for _, g := range got {
			want := byID[g.ID]
			ride := drive(want.pickup, want.dropoff, want.speedMS, want.start)
			first, last := g.Fixes[0], g.Fixes[len(g.Fixes)-1]
			if d := geo.Distance(first.Point, want.pickup); d > 300 || first.Time.Before(want.start) {
				t.Errorf("%s starts %.0f m from the pickup at %s, ride starts %s", g.ID, d, first.Time, want.start)
			}
			if !last.Time.Equal(ride[len(ride)-1].Time.Truncate(time.Microsecond)) || last.Time.Location() != lisbon {
				t.Errorf("%s ends at %s, want %s in Lisbon", g.ID, last.Time, ride[len(ride)-1].Time)
			}
			for i := 1; i < len(g.Fixes)-1; i++ {
				if g.Fixes[i].Time.Sub(g.Fixes[i-1].Time) < 15*time.Second {
					t.Fatalf("%s: fixes %d and %d %s apart", g.ID, i-1, i, g.Fixes[i].Time.Sub(g.Fixes[i-1].Time))
				}
			}
		}
		if _, st, _ := etalearn.ReadTrips(ctx, s, etalearn.ReadOptions{MaxTrips: 2}); st.Completed != 2 {
			t.Fatalf("MaxTrips 2 read %d", st.Completed)
		}
	})
}

// Run serves the model dir's current file when another process replaced
// it (hextrack eta-model rollback swaps the files), keeping the served
// model as previous.
func TestRunServesASwappedModelFile(t *testing.T) {
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	est := eta.NewEstimator(eta.NewSpeedModel(eta.SpeedConfig{}), nil)
	var models []*etamodel.Model
	for i, name := range []string{etalearn.PreviousFile, etalearn.CurrentFile} {
		m, err := etamodel.New(est, etamodel.Info{Version: fmt.Sprintf("v%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WriteFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	load := func(path string) (*etalearn.Served, error) {
		m, err := etamodel.ReadFile(path)
		if err != nil {
			return nil, err
		}
		e, err := m.Estimator(nil)
		return &etalearn.Served{Model: m, Est: e, Loc: time.UTC}, err
	}
	initial, err := load(filepath.Join(dir, etalearn.CurrentFile))
	if err != nil {
		t.Fatal(err)
	}
	tr := etalearn.New(etalearn.Config{Archive: s, Dir: dir, Load: load, DirPoll: 20 * time.Millisecond}, initial)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Run(ctx, time.Hour) }()
	defer func() { cancel(); <-done }()
	if err := etalearn.SwapFiles(dir); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); tr.Current().Fingerprint() != models[0].Fingerprint(); {
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s after the swap", tr.Current().Version())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := tr.Previous(); p == nil || p.Fingerprint() != models[1].Fingerprint() {
		t.Fatalf("previous after the reload: %v", p)
	}
}
