package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/geo/road"
)

// runETAEval is `hextrack eta-eval`: learn ETAs from training trips and
// report their error on held-out trips, beside two baselines.
func runETAEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eta-eval", flag.ContinueOnError)
	fs.SetOutput(stdout)
	tripsPath := fs.String("trips", "", "trips CSV (Porto or NYC taxi format), split into train/test by --seed")
	trainPath := fs.String("train", "", "training trips CSV (with --test, instead of --trips)")
	testPath := fs.String("test", "", "test trips CSV (with --train)")
	mapPath := fs.String("map", "", "OpenStreetMap PBF road network (optional)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	seed := fs.Int64("seed", 1, "split seed")
	frac := fs.Float64("test-fraction", 0.3, "share of trips held out for testing (with --trips)")
	tz := fs.String("tz", "UTC", "time zone of the trips (time-of-day buckets), e.g. Europe/Lisbon; with --model: the model's")
	modelPath := fs.String("model", "", "score this model file (from eta-train) instead of learning one; the baselines are still fitted on the training trips")
	fs.Usage = func() {
		fmt.Fprint(stdout, `usage: hextrack eta-eval --trips FILE [flags]
       hextrack eta-eval --train FILE --test FILE [flags]

Eta-eval measures how accurate hextrack's ETAs are on real taxi trips. It
reads trips from a CSV file, either format detected by its header:
  - Porto (ECML/PKDD 2015 taxi challenge): a WKT LINESTRING "shape" of
    GPS points 15 s apart, with their unix "timestamps";
  - NYC TLC taxi trip records: pickup and dropoff times and coordinates.
It splits the trips by trip into training and test parts (--seed,
--test-fraction; or --train/--test files), drops invalid trips from each
(under 1 min or over 3 h, ends under 100 m apart, over 40 m/s; counted per
part), learns the speed model on the training part only, and reports the
error (MAE, MAPE, RMSLE, p90 absolute error) of its ETAs on the test trips,
which it never saw. Every test trip is scored whole and, for GPS traces,
from every fix along the way (remaining time); no trip is cut and no query
dropped. Beside the model: a straight line at the training trips' median
per-trip speed and, with --map, the route length at their median routed
speed. A map may cover only part of a trip: the covered part is routed,
the rest estimated along the line; the queries with both ends on the map
and the others are also reported as labelled subsets.
Nothing is read from or written to Redis.

Example (the repository's vendored samples):
  hextrack eta-eval --trips testdata/porto_trips.csv --map testdata/porto.osm.pbf --tz Europe/Lisbon
  hextrack eta-eval --trips testdata/nyc_green_2016.csv --tz America/New_York

Flags:
`)
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	split := *trainPath != "" || *testPath != ""
	if split == (*tripsPath != "") || (split && (*trainPath == "" || *testPath == "")) {
		return errors.New("eta-eval: give --trips FILE, or --train FILE --test FILE")
	}
	opt := eta.EvalOptions{Seed: *seed, TestFraction: *frac}
	var model *etamodel.Model
	if *modelPath != "" {
		if model, err = loadEvalModel(fs, *modelPath, *mapPath, *tripsPath, *testPath, tz, stdout); err != nil {
			return err
		}
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("eta-eval: --tz: %w", err)
	}
	if *mapPath != "" {
		if opt.Graph, err = road.LoadOSMFile(*mapPath); err != nil {
			return err
		}
	}
	if model != nil {
		if opt.Estimator, err = model.Estimator(opt.Graph); err != nil {
			return err
		}
	}
	var rep *eta.Report
	if split {
		train, err := readTrips(*trainPath, loc, stdout)
		if err != nil {
			return err
		}
		test, err := readTrips(*testPath, loc, stdout)
		if err != nil {
			return err
		}
		train, inv1 := eta.Prepare(train)
		test, inv2 := eta.Prepare(test)
		if rep, err = eta.EvalSplit(ctx, train, test, opt); err != nil {
			return err
		}
		rep.TrainInvalid, rep.TestInvalid = inv1, inv2
	} else {
		trips, err := readTrips(*tripsPath, loc, stdout)
		if err != nil {
			return err
		}
		if rep, err = eta.Eval(ctx, trips, opt); err != nil {
			return err
		}
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("eta-eval: %w", err)
		}
	}
	return nil
}

func readTrips(path string, loc *time.Location, out io.Writer) ([]eta.Trip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eta-eval: %w", err)
	}
	defer f.Close()
	trips, skipped, err := eta.ReadTrips(f, loc)
	if err != nil {
		return nil, fmt.Errorf("eta-eval: %s: %w", path, err)
	}
	fmt.Fprintf(out, "%s: %d trips read, %d rows skipped\n", path, len(trips), skipped)
	return trips, nil
}
