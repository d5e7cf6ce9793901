package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/geo/road"
)

// runETATrain is `hextrack eta-train`: learn the ETA model eta-eval scores
// and write it to a file the server serves (--eta-model).
func runETATrain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eta-train", flag.ContinueOnError)
	fs.SetOutput(stdout)
	tripsPath := fs.String("trips", "", "trips CSV (Porto or NYC taxi format); the model learns its training part (--seed, --test-fraction), as eta-eval does")
	trainPath := fs.String("train", "", "training trips CSV, learned whole (instead of --trips)")
	mapPath := fs.String("map", "", "OpenStreetMap PBF road network (optional; the server must then serve the same map)")
	out := fs.String("out", "eta.model", "model file to write")
	seed := fs.Int64("seed", 1, "split seed (with --trips)")
	frac := fs.Float64("test-fraction", 0.3, "share of trips held out for testing (with --trips)")
	tz := fs.String("tz", "UTC", "time zone of the trips (time-of-day buckets), e.g. Europe/Lisbon; kept in the model")
	fs.Usage = func() {
		fmt.Fprint(stdout, `usage: hextrack eta-train --trips FILE [flags]
       hextrack eta-train --train FILE [flags]

Eta-train learns hextrack's ETA model from real taxi trips and writes it to
a file (--out) that the server serves (hextrack serve --eta-model FILE) and
eta-eval scores (hextrack eta-eval --model FILE): the same bytes, named by
the version and the fingerprint (the first 12 hex digits of the file's
sha256) shown in /metrics and in every trip.eta event.

It reads the trips, drops invalid ones and splits them exactly as eta-eval
does with the same flags (--trips, --seed, --test-fraction, --map, --tz),
and learns the speed model, the detour factor and the learned correction
(boosted trees) on the training part only; eta-eval --model then scores the
model on the held-out part it never saw. With --train the whole file is
learned. Nothing is read from or written to Redis.

Example (the repository's vendored samples):
  hextrack eta-train --trips testdata/porto_trips.csv --map testdata/porto.osm.pbf --tz Europe/Lisbon --out porto.model
  hextrack eta-eval --trips testdata/porto_trips.csv --map testdata/porto.osm.pbf --model porto.model

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*tripsPath == "") == (*trainPath == "") {
		return errors.New("eta-train: give --trips FILE or --train FILE")
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("eta-train: --tz: %w", err)
	}
	info := etamodel.Info{TZ: loc.String()}
	var g *road.Graph
	if *mapPath != "" {
		if g, err = road.LoadOSMFile(*mapPath); err != nil {
			return err
		}
		src, err := etamodel.SourceOf(*mapPath)
		if err != nil {
			return err
		}
		info.Map = &src
	}
	path := *trainPath
	if *tripsPath != "" {
		path, info.Seed, info.TestFraction = *tripsPath, *seed, *frac
		if info.TestFraction <= 0 {
			info.TestFraction = 0.3 // eta.Split's default
		}
	}
	src, err := etamodel.SourceOf(path)
	if err != nil {
		return err
	}
	info.Data = []etamodel.Source{src}
	trips, err := readTrips(path, loc, stdout)
	if err != nil {
		return err
	}
	train, invalid := eta.Prepare(trips)
	if *tripsPath != "" {
		train, _ = eta.Split(train, info.Seed, info.TestFraction)
	}
	start := time.Now()
	m, err := etamodel.Train(ctx, train, g, info)
	if err != nil {
		return fmt.Errorf("eta-train: %w", err)
	}
	if err := m.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained on %d trips (dropped %d invalid) in %s\n",
		m.Info.TrainTrips, invalid, time.Since(start).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "wrote %s: model %s, fingerprint %s, %d bytes, correction %v, edge speeds %v\n",
		*out, m.Info.Version, m.Fingerprint(), len(m.Bytes()), m.HasCorrection(), m.HasEdgeSpeeds())
	return nil
}

// checkModelFor refuses to score m on data it was trained on: the same
// trips file split otherwise (with --trips), or the test file itself; and
// a map other than the model's (its correction learned raw estimates
// routed over that map, or none).
func checkModelFor(m *etamodel.Model, mapPath, tripsPath, testPath string, seed int64, frac float64) error {
	switch {
	case m.Info.Map == nil && mapPath != "":
		return fmt.Errorf("eta-eval: model %s was trained without a map; drop --map", m.Info.Version)
	case m.Info.Map != nil && mapPath == "":
		return fmt.Errorf("eta-eval: model %s was trained with the map %s; give it with --map", m.Info.Version, m.Info.Map.Name)
	case m.Info.Map != nil:
		src, err := etamodel.SourceOf(mapPath)
		if err != nil {
			return err
		}
		if src.SHA256 != m.Info.Map.SHA256 {
			return fmt.Errorf("eta-eval: --map %s is not the map model %s was trained with (%s)", mapPath, m.Info.Version, m.Info.Map.Name)
		}
	}
	if frac <= 0 {
		frac = 0.3
	}
	data := tripsPath
	if data == "" {
		data = testPath
	}
	src, err := etamodel.SourceOf(data)
	if err != nil {
		return err
	}
	for _, d := range m.Info.Data {
		if d.SHA256 != src.SHA256 {
			continue
		}
		if tripsPath == "" || m.Info.TestFraction == 0 {
			return fmt.Errorf("eta-eval: model %s was trained on all of %s: scoring it there is scoring on training trips", m.Info.Version, data)
		}
		if m.Info.Seed != seed || m.Info.TestFraction != frac {
			return fmt.Errorf("eta-eval: model %s was trained on %s split by --seed %d --test-fraction %g; give the same split",
				m.Info.Version, data, m.Info.Seed, m.Info.TestFraction)
		}
	}
	return nil
}

// loadEvalModel reads eta-eval's --model and checks it may be scored on
// the given data; tz becomes the model's time zone unless --tz was given
// (then it must be the same).
func loadEvalModel(fs *flag.FlagSet, path, mapPath, tripsPath, testPath string, tz *string, out io.Writer) (*etamodel.Model, error) {
	m, err := etamodel.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, _ := strconv.ParseInt(fs.Lookup("seed").Value.String(), 10, 64)
	frac, _ := strconv.ParseFloat(fs.Lookup("test-fraction").Value.String(), 64)
	if err := checkModelFor(m, mapPath, tripsPath, testPath, seed, frac); err != nil {
		return nil, err
	}
	tzSet := false
	fs.Visit(func(f *flag.Flag) { tzSet = tzSet || f.Name == "tz" })
	switch {
	case !tzSet && m.Info.TZ != "":
		*tz = m.Info.TZ
	case tzSet && m.Info.TZ != "" && *tz != m.Info.TZ:
		return nil, fmt.Errorf("eta-eval: --tz %s, but model %s reads times in %s", *tz, m.Info.Version, m.Info.TZ)
	}
	fmt.Fprintf(out, "scoring model %s (fingerprint %s, trained on %d trips of %s)\n",
		m.Info.Version, m.Fingerprint(), m.Info.TrainTrips, dataNames(m.Info.Data))
	return m, nil
}

func dataNames(ds []etamodel.Source) string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += ", "
		}
		s += d.Name
	}
	return s
}
