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
// eta imports geo and never api, web, echo, gorilla, nor h3-go (cells come
// from geo).
package eta
