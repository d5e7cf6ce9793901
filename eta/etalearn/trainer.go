package etalearn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/geo/road"
)

// Files of a model directory (Config.Dir).
const (
	CurrentFile  = "current.model"
	PreviousFile = "previous.model"
)

// Served is a model as served: its file (nil: none, the speeds learned
// online from pings with no learned correction), its estimator and the time
// zone its time-of-day features are read in.
type Served struct {
	Model *etamodel.Model
	Est   *eta.Estimator
	Loc   *time.Location
}

// Version and Fingerprint name the served model ("online" and "none"
// without a model file).
func (s *Served) Version() string {
	if s.Model == nil {
		return "online"
	}
	return s.Model.Info.Version
}

// Fingerprint: see Version.
func (s *Served) Fingerprint() string {
	if s.Model == nil {
		return "none"
	}
	return s.Model.Fingerprint()
}

// Config configures a Trainer. Zero values are documented per field.
type Config struct {
	Archive Archive
	// Graph is the served road map (nil: none) and Map its file, recorded
	// in the models (nil with a synthetic map: models then estimate along
	// the line, as served models trained without a map do).
	Graph *road.Graph
	Map   *etamodel.Source
	// Loc is the time zone trips are read in (time-of-day features). Nil: UTC.
	Loc *time.Location
	// Dir keeps the installed model (CurrentFile) and the one it replaced
	// (PreviousFile). Empty: models are kept in memory only.
	Dir string
	// HoldOut is the share of the trips read, the latest by start time,
	// kept back to validate on. Zero: 0.2.
	HoldOut float64
	// MinTrips: with fewer valid trips a round trains nothing. Zero: 50.
	MinTrips int
	// MaxTrips bounds the trips read, newest first. Zero: DefaultMaxTrips.
	MaxTrips int
	// Window: only trips created within it are read. Zero: 30 days.
	Window time.Duration
	// Load reads a model file as the server serves it (checking its map
	// and time zone): Run serves Dir's current file with it when another
	// process replaced it. Zero: the file is not watched.
	Load func(path string) (*Served, error)
	// DirPoll is how often Run looks at Dir's current file. Zero: 30s.
	DirPoll time.Duration
	// OnInstall is told of every model installed (a round, a rollback, a
	// model file changed in Dir). Zero: nothing.
	OnInstall func(*Served)
	// Registry receives the trainer's metrics. Zero: none.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Now is the clock (the window's end). Zero: time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Loc == nil {
		c.Loc = time.UTC
	}
	if c.HoldOut <= 0 || c.HoldOut >= 1 {
		c.HoldOut = 0.2
	}
	if c.MinTrips <= 0 {
		c.MinTrips = 50
	}
	if c.MaxTrips <= 0 {
		c.MaxTrips = DefaultMaxTrips
	}
	if c.Window <= 0 {
		c.Window = 30 * 24 * time.Hour
	}
	if c.DirPoll <= 0 {
		c.DirPoll = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Outcome is how a training round ended.
type Outcome string

// Outcomes.
const (
	// Installed: the candidate's validation error was not worse than the
	// served model's; it is served now and the old one kept as previous.
	Installed Outcome = "installed"
	// Refused: the candidate was worse; the served model stays.
	Refused Outcome = "refused"
	// Skipped: too few trips to train and validate on.
	Skipped Outcome = "skipped"
	// Failed: reading or training failed (Train's error).
	Failed Outcome = "failed"
)

// Result reports a training round.
type Result struct {
	Outcome Outcome
	Reason  string // why, in words
	Read    ReadStats
	// Valid trips (eta.Prepare's rules), and how they were split: the
	// older ones trained the candidate, the latest validated it.
	Valid, Invalid, Train, Validation int
	// Errors on the validation slice (every query: each fix but the last
	// of each trip, to its last), and the number of queries scored.
	Candidate, Current eta.Metrics
	Queries            int
	Model              *etamodel.Model // the candidate (nil when none was trained)
	Took               time.Duration
}

// Trainer learns ETA models from the archive's completed trips, validates
// each against the served one on the latest trips, installs it when it is
// not worse, and keeps the model it replaced for Rollback. Safe for
// concurrent use; rounds run one at a time.
type Trainer struct {
	cfg     Config
	cur     atomic.Pointer[Served]
	mu      sync.Mutex // a round, a rollback, an install; guards prev
	prev    *Served
	dirFile os.FileInfo // Dir's current file when reloadDir last read it
	metrics *trainerMetrics
}

// New makes a trainer serving initial (the model file given at start, or
// the online estimator). A model in cfg.Dir's CurrentFile, when there is
// one, is served instead (it was installed by an earlier run): see
// LoadDir.
func New(cfg Config, initial *Served) *Trainer {
	t := &Trainer{cfg: cfg.withDefaults()}
	if initial.Loc == nil {
		initial.Loc = time.UTC
	}
	t.cur.Store(initial)
	t.metrics = newTrainerMetrics(t.cfg.Registry)
	return t
}

// Current is the served model.
func (t *Trainer) Current() *Served { return t.cur.Load() }

// Previous is the model the current one replaced (nil: none).
func (t *Trainer) Previous() *Served {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prev
}

// ErrNoPrevious: there is no model to roll back to.
var ErrNoPrevious = errors.New("etalearn: no previous model to roll back to")

// Rollback serves the previous model again, keeping the current one as
// previous (so a second Rollback undoes the first); in Dir the two files
// are swapped (rolling back to no model file, the online estimator, moves
// the current file to the previous one).
func (t *Trainer) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.prev == nil {
		return ErrNoPrevious
	}
	if t.cfg.Dir != "" {
		var err error
		if t.prev.Model == nil {
			err = os.Rename(filepath.Join(t.cfg.Dir, CurrentFile), filepath.Join(t.cfg.Dir, PreviousFile))
		} else {
			err = SwapFiles(t.cfg.Dir)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("etalearn: rollback: %w", err)
		}
	}
	cur := t.cur.Load()
	t.install(t.prev)
	t.metrics.forget()
	t.cfg.Logger.Info("eta model: rolled back", "version", t.prev.Version(), "fingerprint", t.prev.Fingerprint(),
		"replaced", cur.Fingerprint())
	t.prev = cur
	return nil
}

// SetPrevious makes s the model a Rollback returns to (at start: the
// previous file of Dir, kept by an earlier run).
func (t *Trainer) SetPrevious(s *Served) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prev = s
}

// install serves s (t.mu held) and tells the hook.
func (t *Trainer) install(s *Served) {
	t.cur.Store(s)
	if t.cfg.OnInstall != nil {
		t.cfg.OnInstall(s)
	}
}

// Run trains at once and then every period until ctx ends. With Dir and
// Config.Load it also looks at Dir's current file every DirPoll: a file
// other than the served model's (`hextrack eta-model rollback` swapped
// them) is loaded and served, the served one kept as previous.
func (t *Trainer) Run(ctx context.Context, every time.Duration) {
	_, _ = t.Train(ctx)
	tick := time.NewTicker(every)
	defer tick.Stop()
	poll := time.NewTicker(t.cfg.DirPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_, _ = t.Train(ctx)
		case <-poll.C:
			t.reloadDir()
		}
	}
}

// reloadDir serves Dir's current file if it is not the served model.
func (t *Trainer) reloadDir() {
	if t.cfg.Dir == "" || t.cfg.Load == nil {
		return
	}
	path := filepath.Join(t.cfg.Dir, CurrentFile)
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dirFile != nil && os.SameFile(fi, t.dirFile) && fi.ModTime().Equal(t.dirFile.ModTime()) {
		return // the file read last time (a swap or a write renames another one in)
	}
	t.dirFile = fi
	cur := t.cur.Load()
	s, err := t.cfg.Load(path)
	if err != nil {
		t.cfg.Logger.Error("eta model: cannot serve the model dir's current file", "file", path, "err", err)
		return
	}
	if s.Fingerprint() == cur.Fingerprint() {
		return
	}
	t.install(s)
	t.metrics.forget()
	t.prev = cur
	t.cfg.Logger.Info("eta model: serving the model dir's current file", "file", path,
		"version", s.Version(), "fingerprint", s.Fingerprint(), "replaced", cur.Fingerprint())
}

// Train runs one round: read the completed trips of the window, drop the
// invalid ones, keep the latest HoldOut share (by start time) back, train
// a candidate on the rest, score it and the served model on the kept-back
// trips, and install it if its MAPE there is not worse. The error is
// reading's or training's (Outcome Failed); a round with too few trips is
// Skipped, not an error.
func (t *Trainer) Train(ctx context.Context) (Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := time.Now()
	res, err := t.train(ctx)
	res.Took = time.Since(start)
	if err != nil {
		res.Outcome, res.Reason = Failed, err.Error()
	}
	t.metrics.round(res)
	log := t.cfg.Logger.With("outcome", string(res.Outcome), "took", res.Took.Round(time.Millisecond),
		"completed_trips", res.Read.Completed, "valid", res.Valid, "train", res.Train, "validation", res.Validation)
	switch res.Outcome {
	case Installed, Refused:
		log.Info("eta training: "+res.Reason, "candidate", res.Model.Fingerprint(),
			"candidate_mape", res.Candidate.MAPE, "served_mape", res.Current.MAPE, "queries", res.Queries)
	case Skipped:
		log.Info("eta training: " + res.Reason)
	default:
		log.Error("eta training failed", "err", err)
	}
	return res, err
}

func (t *Trainer) train(ctx context.Context) (Result, error) {
	var res Result
	now := t.cfg.Now()
	trips, st, err := ReadTrips(ctx, t.cfg.Archive, ReadOptions{Since: now.Add(-t.cfg.Window), MaxTrips: t.cfg.MaxTrips, Loc: t.cfg.Loc})
	res.Read = st
	if err != nil {
		return res, err
	}
	trips, res.Invalid = eta.Prepare(trips)
	res.Valid = len(trips)
	if len(trips) < t.cfg.MinTrips {
		res.Outcome = Skipped
		res.Reason = fmt.Sprintf("%d valid completed trips with trails in the archive (of %d completed), fewer than the %d needed: nothing trained",
			len(trips), st.Completed, t.cfg.MinTrips)
		return res, nil
	}
	slices.SortStableFunc(trips, func(a, b eta.Trip) int { return a.Fixes[0].Time.Compare(b.Fixes[0].Time) })
	nVal := max(1, int(float64(len(trips))*t.cfg.HoldOut))
	train, val := trips[:len(trips)-nVal], trips[len(trips)-nVal:]
	res.Train, res.Validation = len(train), len(val)
	info := etamodel.Info{TZ: t.cfg.Loc.String(), Map: t.cfg.Map, TrainedAt: now,
		Data: []etamodel.Source{{Name: "archive", SHA256: tripsDigest(train)}}}
	cand, err := etamodel.Train(ctx, train, t.graph(), info)
	if err != nil {
		return res, fmt.Errorf("etalearn: train: %w", err)
	}
	res.Model = cand
	est, err := cand.Estimator(t.graph())
	if err != nil {
		return res, err
	}
	next := &Served{Model: cand, Est: est, Loc: t.cfg.Loc}
	cur := t.cur.Load()
	if res.Candidate, res.Queries, err = Score(ctx, next, val); err != nil {
		return res, fmt.Errorf("etalearn: score the candidate: %w", err)
	}
	if res.Current, _, err = Score(ctx, cur, val); err != nil {
		return res, fmt.Errorf("etalearn: score the served model: %w", err)
	}
	t.metrics.validated(res)
	if res.Candidate.MAPE > res.Current.MAPE {
		res.Outcome = Refused
		res.Reason = fmt.Sprintf("candidate %s refused: validation MAPE %.3f, worse than the served %s's %.3f",
			cand.Info.Version, res.Candidate.MAPE, cur.Version(), res.Current.MAPE)
		return res, nil
	}
	if t.cfg.Dir != "" {
		if err := keepFiles(t.cfg.Dir, cand); err != nil {
			return res, err
		}
	}
	t.install(next)
	t.prev = cur
	res.Outcome = Installed
	res.Reason = fmt.Sprintf("installed %s: validation MAPE %.3f, served %s's %.3f",
		cand.Info.Version, res.Candidate.MAPE, cur.Version(), res.Current.MAPE)
	return res, nil
}

// graph is the map models are trained over: the served one when it is a
// map file (Config.Map), else none.
func (t *Trainer) graph() *road.Graph {
	if t.cfg.Map == nil {
		return nil
	}
	return t.cfg.Graph
}

// tripsDigest names the training data: the sha256 of its trip IDs.
func tripsDigest(trips []eta.Trip) string {
	h := sha256.New()
	for _, t := range trips {
		h.Write([]byte(t.ID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// maxValidationQueries bounds the queries a model is scored on (each
// costs an estimate): past it, every k-th query of each trip is scored
// (its first, the whole trip, always).
const maxValidationQueries = 10_000

// Score is s's error on trips' queries: from each fix but the last (the
// vehicle's fixes so far known, as live) to the last, at most
// maxValidationQueries of them; n is the number scored.
func Score(ctx context.Context, s *Served, trips []eta.Trip) (m eta.Metrics, n int, err error) {
	total := 0
	for _, t := range trips {
		total += len(t.Fixes) - 1
	}
	stride := max(1, (total+maxValidationQueries-1)/maxValidationQueries)
	var actual, pred []float64
	for _, t := range trips {
		last := t.Fixes[len(t.Fixes)-1]
		for i := 0; i < len(t.Fixes)-1; i += stride {
			f := t.Fixes[i]
			e, err := s.Est.EstimateMoving(ctx, f.Point, last.Point, f.Time.In(s.Loc), eta.MotionOf(t.Fixes[:i+1]))
			if errors.Is(err, road.ErrUnreachable) {
				e = s.Est.Line(f.Point, last.Point, f.Time.In(s.Loc)) // as the server answers
				if c := s.Est.Correction(); c != nil {
					e.Seconds = c.Seconds(f.Point, last.Point, f.Time.In(s.Loc), eta.Motion{}, e)
				}
			} else if err != nil {
				return eta.Metrics{}, 0, err
			}
			actual = append(actual, last.Time.Sub(f.Time).Seconds())
			pred = append(pred, e.Seconds)
		}
	}
	return eta.ErrorMetrics(actual, pred), len(actual), nil
}

// keepFiles writes m as Dir's current model, the current one (if any)
// becoming the previous.
func keepFiles(dir string, m *etamodel.Model) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: models are not secret
		return fmt.Errorf("etalearn: model dir: %w", err)
	}
	cur := filepath.Join(dir, CurrentFile)
	if _, err := os.Stat(cur); err == nil {
		if err := os.Rename(cur, filepath.Join(dir, PreviousFile)); err != nil {
			return fmt.Errorf("etalearn: keep the previous model: %w", err)
		}
	}
	return m.WriteFile(cur)
}

// SwapFiles swaps dir's current and previous model files (a rollback on
// disk; a second swap undoes it). With no previous file the current one
// becomes the previous, so none is current. Errors: no previous file
// (ErrNoPrevious), the file system's.
func SwapFiles(dir string) error {
	cur, prev := filepath.Join(dir, CurrentFile), filepath.Join(dir, PreviousFile)
	if _, err := os.Stat(prev); errors.Is(err, os.ErrNotExist) {
		return ErrNoPrevious
	}
	tmp := filepath.Join(dir, "swap.model.tmp")
	_, curErr := os.Stat(cur)
	if curErr == nil {
		if err := os.Rename(cur, tmp); err != nil {
			return fmt.Errorf("etalearn: swap: %w", err)
		}
	}
	if err := os.Rename(prev, cur); err != nil {
		return fmt.Errorf("etalearn: swap: %w", err)
	}
	if curErr == nil {
		if err := os.Rename(tmp, prev); err != nil {
			return fmt.Errorf("etalearn: swap: %w", err)
		}
	}
	return nil
}
