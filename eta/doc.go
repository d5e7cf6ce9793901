// Package eta owns travel-time estimation: the speed model learned per H3
// cell, the router over the road graph, the ETA estimator, live-ETA emission
// rules and accuracy evaluation (eta-eval).
//
// Speed cells are r8 (edge ~460 m, ~0.7 km²), not r9 (~174 m): a 15-second
// GPS interval at city speed covers 100–200 m, so an r9 cell would hold at
// most one or two hops of a passing car and most r9 cells would never get
// enough observations to beat the prior; an r8 cell spans a few blocks of
// similar streets, gathers evidence many times faster, and the router still
// tells roads apart inside it because each edge keeps its own free-flow speed
// (the cell only scales it by learned ÷ prior).
//
// Speeds are EWMAs of pace (s/m) from consecutive pings of moving drivers:
// pairs closer than 3 s or farther than 2 min apart, slower than 1 m/s
// (stationary) or faster than 45 m/s (GPS outliers) are ignored. There is an
// all-day value and six 4-hour time-of-day buckets per cell. The Feeder
// takes pings from the ingest path without blocking (bounded queue, drops
// counted in hextrack_eta_speed_observations_total{result="dropped"}) and
// flushes batches to Redis, one hash per r6 region with a hash-tagged key and
// a TTL (SpeedStore), merging the stored values back into memory.
//
// The raw estimate (the route with learned edge speeds, or the line
// estimate) goes through a Correction: gradient-boosted regression trees
// (gbm.go, written here: a page of code, no new module) fitted on
// log(1+seconds), whose exponential is the RMSLE-optimal prediction.
// Features are what is known when asked: straight-line and street-grid
// distance (the grid angle is learned from training trips' driven
// distances: 26° in NYC), the raw seconds and metres, bearing, both ends'
// coordinates, hour and weekday, an origin–destination kernel mean of how
// long training journeys between nearby ends took (odIndex), and, for a
// vehicle under way, its Motion: speed over the last hop and over the last
// minute of its own fixes (what the server's last pings give; nothing after
// the query point). The correction is stacked: its training queries are
// estimated out-of-fold (five folds by trip, each by speeds and journeys
// learned on the other four), and the same folds choose the number of
// trees by early stopping. Depth 3, leaves ≥ 100 rows, rate 0.1 and ≤ 200
// trees were chosen by repeated 70/30 hold-outs inside the training part
// of the seed-1 split (never the test part); a leaf of 100 rows is a few
// trips' worth of Porto points, which are strongly correlated.
//
// eta-eval's split is unchanged: 30% of trips by a seeded hash of the trip
// ID, whole trips never straddling; so are its validity filters (1 min–3 h,
// ends ≥ 100 m apart, line speed ≤ 40 m/s), applied to both parts alike.
// NYC round trips (a 300 m line for a 5 km ride) stay in: they are real
// trips, and a handful of them carry a fifth of the squared log error.
//
// # Partial maps
//
// A map (an OSM extract) may cover only part of a trip. A point is covered
// when it lies within 150 m of a road (coverM; road.MaxSnapM's 1 km would
// route points far outside an extract as if on its last road). The
// estimator routes the covered part of the straight line between the ends
// (from its first to its last covered point, sampled every 150 m) and
// estimates the parts before and after by the line and the cells' speeds
// (Estimator.partial); nothing covered, the line estimate.
//
// # Evaluation (eta-eval)
//
// Every valid test trip is scored whole (first fix to last) and, for GPS
// traces, from every fix between to the last (remaining time): no trip is
// cut to the map and no query dropped; the report counts queries posed and
// scored, train and test trips (and invalid ones) separately. Metrics:
// MAE, MAPE, RMSLE (log(1+s)) and the 90th percentile of the absolute
// error. Baselines, fitted on training trips: a straight line at their
// median per-trip speed and, with a map, the route length (routed where
// covered, line × the learned detour elsewhere) at their median per-trip
// routed speed. With a map the queries with both ends on it and the others
// are also reported, labelled, as subsets of the whole.
//
// On the vendored samples, seed 1 (go run ./cmd/hextrack eta-eval --seed 1
// --trips testdata/porto_trips.csv --tz Europe/Lisbon [--map
// testdata/porto.osm.pbf]; --trips testdata/nyc_green_2016.csv --tz
// America/New_York), MAPE / RMSLE (docs/eta.md has the tables):
//
//	                           model        line         routed
//	Porto, map, whole (70)     0.438/0.728  0.499/0.825  0.490/0.818
//	Porto, map, remaining      0.706/1.344  0.873/2.662  0.864/2.717
//	  both ends on map (9)     0.304/0.400  0.504/0.786  0.444/0.728
//	  both ends on map (286)   0.645/0.710  0.603/0.963  0.613/1.062
//	Porto, no map, whole       0.425/0.741  0.499/0.825
//	Porto, no map, remaining   0.709/1.384  0.873/2.662
//	NYC green, whole (1507)    0.266/0.383  0.363/0.494
//
// Porto's 70 test trips are few, and three of them (82–153 min) pose 37% of
// the 3,765 remaining-time queries; 61 of the 70 leave the map's extract.
//
// # Map matching and edge speeds
//
// With a map, Learn matches every training trail to the road graph once
// (eta/mapmatch, a Newson–Krumm HMM; at most maxMatchFixes fixes, every
// k-th trip past it) and learns per-edge travel times by time-of-day
// bucket from the matched hops (eta/edgespeed), for the final model and
// for each fold of the stacked correction alike (each fold from the
// other folds' hops). The router's edge time is then the edge's learned
// ratio to free flow, shrunk towards its cell's (learned cell speed ÷
// cell prior) or, where the cell learned nothing, the city's; the same
// [0.5, 10] × free-flow clamp as the cells'. The table travels in State
// and applies only over the graph it was learned on.
//
// # Relative error
//
// The trees predict the mean of log(1+seconds), which minimises RMSLE; a
// late estimate costs MAPE without bound and an early one at most 100%,
// so the MAPE-optimal estimate is lower. The correction adds a log shift
// fitted on the training queries' out-of-fold predictions (gbm.CVOutOfFold,
// mapeShift), one for queries without Motion and one under way, chosen
// to minimise MAPE/MAPE₀ + RMSLE/RMSLE₀: it trades a little RMSLE for a
// lower MAPE (Porto ×0.86 / ×0.79, NYC ×0.93).
//
// # Big training sets
//
// Learn's cost grows with the correction's training queries (each a raw
// estimate and a scan of the journey index) and the journey index itself
// (scanned by every estimate, live ones too). A server training from its
// archive may hand it 100k trips, so both are capped: at most 40,000
// training queries (past it every k-th query of each trip, the whole trip
// always kept) and 20,000 journeys in an index (every k-th). The speed
// observations of the training fixes are located once and reused by the
// five folds. The team's samples are under both caps, so eta-eval's
// results are unchanged by them.
//
// # Model files
//
// Estimator.State is the learned state (speeds, detour factor,
// correction, edge speeds) without maps; eta/etamodel encodes it as the model file that
// `hextrack eta-train` writes, `eta-eval --model` scores
// (EvalOptions.Estimator) and `hextrack serve --eta-model` serves.
//
// # Live trip ETAs
//
// The live side (keeping running trips' ETAs current as drivers move) is
// the sub-package eta/live; it estimates through this package's Estimator.
// SpeedListener (speedlistener.go) turns consecutive pings of moving
// drivers into speed observations for the Feeder.
//
// eta imports geo, geo/road, driver (driver.Move), eta/mapmatch and
// eta/edgespeed, and never api, dispatch, payment, ops, web, echo,
// gorilla, nor h3-go (cells come from geo).
package eta
