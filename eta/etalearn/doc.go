// Package etalearn trains the served ETA model from what hextrack sees:
// the completed trips in the archive, their GPS trails and real
// durations.
//
// A round (Trainer.Train) reads the completed trips of a window (30 days;
// at most 100k, newest first) through Archive, an interface declared here
// that archive/sqlstore's Store satisfies. Each trail is cut to the ride
// (from the last fix within 300 m of the trip's pickup: a trail also holds
// the drive to the pickup and the wait there) and thinned to a fix per
// 15 s, the spacing of the Porto traces the model was tuned on. Trips are
// then filtered by eta-eval's validity rules (eta.Prepare), sorted by start
// time, and the latest 20% held back: a candidate model is trained on the
// older ones exactly as `hextrack eta-train` trains one from a CSV
// (etamodel.Train), and the candidate and the served model are both scored
// on the held-back trips, every query (each fix but the last, to the
// last, with the fixes so far as motion; at most 10,000 queries). The
// candidate is installed when its MAPE there is not worse than the served
// model's, else refused. Fewer than 50 valid trips: the round is skipped
// and says so.
//
// An installed model is served at once (Trainer.Current, an atomic
// pointer read on every estimate) and written as Dir/current.model, the
// file it replaced renamed previous.model; the replaced model stays in
// memory for Trainer.Rollback, which swaps the two (again: undone).
// Trainer.Run trains at start and then on a period, and looks at
// Dir/current.model every 30 s, so `hextrack eta-model rollback` (which
// swaps the files) reaches a running server. Rounds run one at a time, in
// the trainer's goroutine, off the request path; their memory is bounded
// by the trips read (a thinned trail each) and eta.Learn's caps on the
// correction's training queries and journeys.
//
// Metrics: hextrack_eta_train_rounds_total{outcome},
// hextrack_eta_train_last_seconds, hextrack_eta_train_last_trips{part},
// hextrack_eta_model_validation_error{model="served"|"candidate",metric};
// the served model's version and fingerprint are cmd/hextrack's
// hextrack_eta_model_info, updated through Config.OnInstall.
//
// etalearn imports archive (its record types), eta, eta/etamodel and
// geo; never a database driver, Redis or echo.
package etalearn
