//go:build unix

package etalearn_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/eta/etalearn"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// memArchive is an archive of completed trips in memory (the trainer's
// Archive): a benchmark measures training, not a database.
type memArchive struct {
	trips  []archive.Trip
	trails map[string][]archive.Point
}

func (a *memArchive) ListTrips(_ context.Context, q archive.TripQuery) (archive.TripPage, error) {
	from, _ := strconv.Atoi(q.Cursor)
	to := min(from+q.Limit, len(a.trips))
	page := archive.TripPage{Trips: a.trips[from:to]}
	if to < len(a.trips) {
		page.Next = strconv.Itoa(to)
	}
	return page, nil
}

func (a *memArchive) Trail(_ context.Context, q archive.TrailQuery) ([]archive.Point, error) {
	return a.trails[q.TripID], nil
}

// cityTrips makes n completed rides in a 10 km square, a fix every 15 s,
// at speeds that vary by place (slower downtown) and hour (rush hours),
// with a little GPS noise: Porto-like traces, in the shape the archive
// keeps them.
func cityTrips(n int, end time.Time) *memArchive {
	rng := rand.New(rand.NewPCG(42, 1))
	a := &memArchive{trails: make(map[string][]archive.Point, n)}
	first := end.Add(-25 * 24 * time.Hour)
	step := 25 * 24 * time.Hour / time.Duration(n)
	for i := range n {
		p := offset(center, rng.Float64()*10000-5000, rng.Float64()*10000-5000)
		ang, d := rng.Float64()*2*math.Pi, 1000+rng.ExpFloat64()*3000
		q := offset(p, d*math.Cos(ang), d*math.Sin(ang))
		start := first.Add(time.Duration(i) * step)
		h := start.Hour()
		v := 7 * (0.6 + 0.4*math.Min(1, geo.Distance(p, center)/4000)) // slower downtown
		if h == 8 || h == 9 || h == 17 || h == 18 {
			v *= 0.6
		}
		v *= 0.8 + 0.4*rng.Float64()
		id := fmt.Sprintf("c%06d", i)
		dur := d / v
		var pts []archive.Point
		for s := 0.0; ; s += 15 {
			s = math.Min(s, dur)
			f := s / dur
			pts = append(pts, archive.Point{TripID: id, Seq: int64(len(pts) + 1), DriverID: "d",
				Lat: p.Lat + (q.Lat-p.Lat)*f + rng.NormFloat64()*3e-5, Lng: p.Lng + (q.Lng-p.Lng)*f + rng.NormFloat64()*4e-5,
				TS: start.Add(time.Duration(s * float64(time.Second)))})
			if s >= dur {
				break
			}
		}
		a.trails[id] = pts
		a.trips = append(a.trips, archive.Trip{ID: id, Status: archive.StatusCompleted, CreatedAt: start})
	}
	// Newest first, as the archive lists them.
	for i, j := 0, len(a.trips)-1; i < j; i, j = i+1, j-1 {
		a.trips[i], a.trips[j] = a.trips[j], a.trips[i]
	}
	return a
}

// BenchmarkTrainRound is one training round (read, thin, train the
// candidate, validate it and the served model) over 100k completed trips
// (HEXTRACK_BENCH_TRIPS to change it), without a map. The target: under
// 60 s on the project's 2-core machine. On a machine shared with other
// work the wall time says little, so the round's CPU time (user + system,
// all threads) is reported too: the folds train in parallel, so an idle
// 2-core machine takes less than it in wall time. Reports the valid trips and the
// validation MAPE of the candidate and of the online speeds it replaces.
// Run it alone (it is not part of make bench): go test -run XXX -bench
// TrainRound -benchtime 1x ./eta/etalearn. HEXTRACK_BENCH_MAP=path.osm.pbf
// trains over that map (the rides lie around Porto's centre): the
// training trails are then map-matched (eta.Learn caps it at 100k fixes)
// and every correction query is routed.
func BenchmarkTrainRound(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("HEXTRACK_BENCH_TRIPS")); err == nil && v > 0 {
		n = v
	}
	cfg := etalearn.Config{}
	if path := os.Getenv("HEXTRACK_BENCH_MAP"); path != "" {
		g, err := road.LoadOSMFile(path)
		if err != nil {
			b.Fatal(err)
		}
		src, err := etamodel.SourceOf(path)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Graph, cfg.Map = g, &src
	}
	now := t0.Add(30 * 24 * time.Hour)
	arch := cityTrips(n, now)
	b.ResetTimer()
	for range b.N {
		cfg.Archive, cfg.Now = arch, func() time.Time { return now }
		tr := etalearn.New(cfg, online())
		cpu0 := cpuSeconds()
		res, err := tr.Train(context.Background())
		b.ReportMetric(cpuSeconds()-cpu0, "cpu_s/op")
		if err != nil || res.Outcome != etalearn.Installed {
			b.Fatalf("round: %v %s %s", err, res.Outcome, res.Reason)
		}
		b.ReportMetric(float64(res.Valid), "trips")
		b.ReportMetric(res.Candidate.MAPE, "val_mape")
		b.ReportMetric(res.Current.MAPE, "online_mape")
	}
}

// cpuSeconds is the process's CPU time so far (user + system).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
