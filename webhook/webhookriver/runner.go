package webhookriver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/webhook"
)

// Store is the webhooks' tables (webhook/webhooksql.Store).
type Store interface {
	Route(ctx context.Context, limit int) (int, []string, error)
	PendingEndpoints(ctx context.Context) ([]string, error)
	Claim(ctx context.Context, endpointID string, now, until time.Time, limit int) ([]webhook.Delivery, error)
	NextDue(ctx context.Context, endpointID string) (time.Time, bool, error)
	Endpoint(ctx context.Context, id string) (webhook.Endpoint, error)
	RecordAll(ctx context.Context, ds []webhook.Delivery, os []webhook.Outcome) ([]bool, time.Time, error)
	Pause(ctx context.Context, id string, since, now time.Time) error
	CountPaused(ctx context.Context) (int, error)
	PruneLog(ctx context.Context, before time.Time) (int64, error)
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, name, holder string) error
}

// Sender posts one delivery (webhook.Sender).
type Sender interface {
	Send(ctx context.Context, url string, secret webhook.Secret, ev feed.Event) webhook.Result
}

// queue is the River queue of deliveries.
const queue = "webhooks"

// leaseName is the routing lease.
const leaseName = "router"

// drainArgs is one River job: send an endpoint's due queue heads until
// none is due. At is 0 for the job routing, the sweep and a resume
// insert; a job that ends while a head waits for its retry inserts one
// scheduled at that time (unix ms), unique by it.
type drainArgs struct {
	EndpointID string `json:"endpoint_id"`
	At         int64  `json:"at,omitempty"`
}

func (drainArgs) Kind() string { return "hextrack_webhook_drain" }

// InsertOpts: one live job per endpoint and At (unique by args among the
// states a job waits or runs in; completed is left out, so an endpoint
// gets a new job once its last one ended). River's attempt limit is far
// beyond DeadAfter's: the worker dead-letters, not River.
func (drainArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue, MaxAttempts: 100_000, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
			rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// Runner routes archived events into the delivery queues and runs the
// node's River client that delivers them. See the package doc.
type Runner struct {
	cfg    Config
	store  Store
	sender Sender
	conn   conn
	jobs   jobs
	m      *metrics
	log    *slog.Logger
	// backoff spaces a delivery's retries, and River's of a drain job
	// that failed (the database).
	backoff backoff

	pruned time.Time // the log's last pruning (Run's goroutine)

	mu    sync.Mutex
	again map[string]bool // endpoints whose drain job was skipped as a duplicate

	// stopping: Run is ending; drains stop claiming and hand their job
	// over (River's soft stop does not cancel a running job).
	stopping atomic.Bool
}

// Open connects River to the archive at url (the same database the
// Store is over), applies River's migrations and returns a Runner. Close
// it after Run returned.
func Open(ctx context.Context, url string, store Store, sender Sender, cfg Config) (*Runner, error) {
	c, err := dial(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := c.migrate(ctx); err != nil {
		c.close()
		return nil, err
	}
	cfg = cfg.withDefaults(c.db != nil)
	r := &Runner{cfg: cfg, store: store, sender: sender, conn: c, m: newMetrics(cfg.Registerer), log: cfg.Logger,
		again: map[string]bool{}, backoff: backoff{base: cfg.RetryBase, max: cfg.MaxBackoff}}
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{r: r})
	rc := &river.Config{
		Queues:               map[string]river.QueueConfig{queue: {MaxWorkers: cfg.Workers}},
		Workers:              workers,
		RetryPolicy:          r.backoff,
		RescueStuckJobsAfter: cfg.RescueAfter,
		JobTimeout:           jobTimeout(cfg),
		FetchPollInterval:    cfg.FetchPollInterval,
		Logger:               cfg.Logger.With("component", "river"),
	}
	if cfg.FetchPollInterval > 0 && cfg.FetchPollInterval < 100*time.Millisecond {
		rc.FetchCooldown = cfg.FetchPollInterval
	}
	if r.jobs, err = c.client(rc); err != nil {
		c.close()
		return nil, fmt.Errorf("webhooks: river client: %w", err)
	}
	return r, nil
}

// Close closes River's connection.
func (r *Runner) Close() { r.conn.close() }

// Run starts the River client (this node's workers) and, while this node
// holds the routing lease, routes archived events and sweeps the queues,
// until ctx ends; then it stops the client, letting running deliveries
// finish (up to 15 s), and hands the lease back.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("webhooks: river start: %w", err)
	}
	defer func() {
		r.stopping.Store(true)
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := r.jobs.Stop(sctx); err != nil {
			r.log.Warn("webhooks: river stop", "err", err)
		}
		_ = r.store.Release(sctx, leaseName, r.cfg.NodeID)
	}()
	var (
		held      bool
		lastLease time.Time
		lastSweep time.Time
		failing   error
	)
	for {
		busy, err := false, error(nil)
		if time.Since(lastLease) >= r.cfg.LeaseTTL/3 || !held {
			held, err = r.store.Lease(ctx, leaseName, r.cfg.NodeID, r.cfg.LeaseTTL)
			if err == nil {
				lastLease = time.Now()
			}
		}
		if err == nil && held {
			busy, err = r.route(ctx)
		}
		if err == nil {
			err = r.retry(ctx)
		}
		if err == nil && time.Since(lastSweep) >= r.cfg.Sweep {
			if err = r.sweep(ctx, held); err == nil {
				lastSweep = time.Now()
			}
		}
		if err != nil && ctx.Err() == nil && (failing == nil || failing.Error() != err.Error()) {
			r.log.Warn("webhooks: routing", "err", err)
		}
		failing = err
		if busy && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.Interval):
		}
	}
}

// route runs one routing step and queues the drain jobs of the
// endpoints it queued deliveries for; busy: a full batch, more may wait.
func (r *Runner) route(ctx context.Context) (bool, error) {
	n, endpoints, err := r.store.Route(ctx, r.cfg.Batch)
	if err != nil || n == 0 {
		return false, err
	}
	r.m.routed.Add(float64(n))
	if err := r.enqueue(ctx, endpoints); err != nil {
		return false, err
	}
	return n == r.cfg.Batch, nil
}

// sweep refreshes the paused gauge and, on the lease holder, queues the
// drain job of every endpoint with pending deliveries (unique: one with a
// live job is skipped).
func (r *Runner) sweep(ctx context.Context, held bool) error {
	n, err := r.store.CountPaused(ctx)
	if err != nil {
		return err
	}
	r.m.paused.Set(float64(n))
	if !held {
		return nil
	}
	if r.cfg.KeepLog > 0 && time.Since(r.pruned) >= time.Hour {
		if _, err := r.store.PruneLog(ctx, time.Now().Add(-r.cfg.KeepLog)); err != nil {
			return err
		}
		r.pruned = time.Now()
	}
	endpoints, err := r.store.PendingEndpoints(ctx)
	if err != nil {
		return err
	}
	return r.enqueue(ctx, endpoints)
}

// Kick queues the drain job of an endpoint (webhook.Kicker).
func (r *Runner) Kick(ctx context.Context, endpointID string) error {
	return r.enqueue(ctx, []string{endpointID})
}

var _ webhook.Kicker = (*Runner)(nil)

// insertBatch bounds the jobs of one InsertMany.
const insertBatch = 500

// enqueue inserts the drain job of each endpoint. One skipped as a
// duplicate is kept in r.again and inserted again at every step of Run
// until a new job is in: the live job may be a drain that has just found
// nothing due and is ending, before the deliveries routed after its last
// look.
func (r *Runner) enqueue(ctx context.Context, endpoints []string) error {
	for len(endpoints) > 0 {
		n := min(len(endpoints), insertBatch)
		ps := make([]river.InsertManyParams, n)
		for i, id := range endpoints[:n] {
			ps[i] = river.InsertManyParams{Args: drainArgs{EndpointID: id}}
		}
		res, err := r.jobs.InsertMany(ctx, ps)
		if err != nil {
			r.mu.Lock()
			for _, id := range endpoints {
				r.again[id] = true
			}
			r.mu.Unlock()
			return fmt.Errorf("webhooks: queue jobs: %w", err)
		}
		r.mu.Lock()
		for i, id := range endpoints[:n] {
			if i < len(res) && res[i].UniqueSkippedAsDuplicate {
				r.again[id] = true
			} else {
				delete(r.again, id)
			}
		}
		r.mu.Unlock()
		endpoints = endpoints[n:]
	}
	return nil
}

// retry inserts the drain jobs skipped before (enqueue).
func (r *Runner) retry(ctx context.Context) error {
	r.mu.Lock()
	ids := make([]string, 0, len(r.again))
	for id := range r.again {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	return r.enqueue(ctx, ids)
}

// wake inserts the drain job of an endpoint scheduled at at (a retry's
// time, or the end of a claim), unique by that time.
func (r *Runner) wake(ctx context.Context, endpointID string, at time.Time) error {
	ms := at.UnixMilli() + 1
	_, err := r.jobs.InsertMany(ctx, []river.InsertManyParams{{Args: drainArgs{EndpointID: endpointID, At: ms},
		InsertOpts: &river.InsertOpts{ScheduledAt: time.UnixMilli(ms)}}})
	if err != nil {
		return fmt.Errorf("webhooks: queue a retry: %w", err)
	}
	return nil
}

// backoff is the retry policy of deliveries (and River's of drain jobs):
// RetryBase doubled per
// failure, capped at MaxBackoff, drawn in [d/2, d] (jitter: receivers
// that come back are not hit by every queue at once).
type backoff struct{ base, max time.Duration }

func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(b.delay(len(job.Errors) + 1))
}

func (b backoff) delay(failures int) time.Duration {
	d := b.base
	for i := 1; i < failures && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return d/2 + rand.N(d/2+1)
}

// worker drains an endpoint: lanes (see drain) claim its due queue
// heads, one per trip, send them at once and record the outcomes in one
// statement, until none is due.
type worker struct {
	river.WorkerDefaults[drainArgs]
	r *Runner
}

func (w *worker) Work(ctx context.Context, job *river.Job[drainArgs]) error {
	r, id := w.r, job.Args.EndpointID
	// A job hands over (snoozes, at once available again, behind the
	// jobs already waiting) after drainSlice, and before River's timeout:
	// with more endpoints than Workers, each gets its turn.
	stop := time.Now().Add(min(drainSlice, jobTimeout(r.cfg)/2))
	for {
		// The endpoint (URL, secret) is read at each burst; Claim itself
		// takes nothing of one disabled or paused meanwhile.
		ep, err := r.store.Endpoint(ctx, id)
		if errors.Is(err, webhook.ErrNotFound) {
			return nil // the endpoint was deleted
		}
		if err != nil {
			return err
		}
		if !ep.Enabled || ep.Paused {
			return nil // a resume kicks the endpoint
		}
		sent, paused, err := r.drain(ctx, ep, stop)
		if err != nil || paused {
			return err
		}
		if time.Now().After(stop) || r.stopping.Load() {
			return river.JobSnooze(0) // available at once, to this node or another
		}
		if sent > 0 {
			continue // the next deliveries of those trips may be due
		}
		next, ok, err := r.store.NextDue(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return nil // nothing pending
		}
		// A retry due soon is waited for here, looking for new
		// deliveries meanwhile; a later one gets a scheduled job.
		wait := time.Until(next)
		if wait > r.cfg.Linger || time.Now().Add(wait).After(stop) {
			return r.wake(ctx, id, next)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(max(wait, time.Millisecond), r.cfg.Interval)):
		}
	}
}

// drainSlice is the longest a drain job runs before it hands over.
const drainSlice = 5 * time.Second

// lanes is how many batches of an endpoint are in flight at once: a
// lane's database round trips overlap the others' sends, and a slow
// answer holds up its own batch only.
const lanes = 4

// drain runs up to lanes lanes over endpoint ep, each claiming a batch
// of InFlight/lanes due heads, sending it and recording it, again until
// Claim finds nothing, the job's time is up (stop), ep is paused or an
// error stops it. Lanes start one after the other (each with a batch):
// no two race for the same heads. It returns how many deliveries were
// sent.
func (r *Runner) drain(ctx context.Context, ep webhook.Endpoint, stop time.Time) (int, bool, error) {
	per := max(1, r.cfg.InFlight/lanes)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		sent   int
		paused bool
		first  error
		halt   atomic.Bool // stop claiming: an error, a pause
	)
	claim := func() ([]webhook.Delivery, bool) {
		if halt.Load() || r.stopping.Load() || ctx.Err() != nil || time.Now().After(stop) {
			return nil, false
		}
		now := time.Now()
		ds, err := r.store.Claim(ctx, ep.ID, now, now.Add(r.cfg.Claim), per)
		if err != nil {
			mu.Lock()
			first = cmp.Or(first, err)
			mu.Unlock()
			halt.Store(true)
			return nil, false
		}
		return ds, len(ds) > 0
	}
	lane := func(ds []webhook.Delivery) {
		for ok := true; ok; ds, ok = claim() {
			p, err := r.send(ctx, ep, ds)
			mu.Lock()
			sent += len(ds)
			paused = paused || p
			first = cmp.Or(first, err)
			mu.Unlock()
			if err != nil || p {
				halt.Store(true)
				return
			}
		}
	}
	for range lanes {
		ds, ok := claim()
		if !ok {
			break
		}
		wg.Go(func() { lane(ds) })
	}
	wg.Wait()
	return sent, paused, first
}

// send sends the claimed deliveries ds of endpoint ep at once and
// records the outcomes; paused: ep was paused (every attempt failed for
// PauseAfter).
func (r *Runner) send(ctx context.Context, ep webhook.Endpoint, ds []webhook.Delivery) (bool, error) {
	os := make([]webhook.Outcome, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, r.cfg.Claim)
			defer cancel()
			res := r.sender.Send(sctx, ep.URL, ep.Secret, d.Event)
			now := time.Now()
			o := webhook.Outcome{State: webhook.StatePending, At: now, Result: res}
			switch {
			case res.OK():
				o.State = webhook.StateDelivered
			case !d.FirstAttempt.IsZero() && now.Sub(d.FirstAttempt) >= r.cfg.DeadAfter:
				o.State = webhook.StateDead
			default:
				o.NextAttempt = now.Add(r.backoff.delay(int(d.Attempts) + 1))
			}
			os[i] = o
		})
	}
	wg.Wait()
	// Recorded even when the job's time is up: the attempts were made.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	recorded, failingSince, err := r.store.RecordAll(rctx, ds, os)
	if err != nil {
		// Not recorded: the claims end and the deliveries go again (at
		// least once, a success may be sent twice).
		return false, err
	}
	var failed error
	for i, ok := range recorded {
		if !ok {
			continue // replayed since it was claimed
		}
		d, o := ds[i], os[i]
		switch o.State {
		case webhook.StateDelivered:
			r.m.deliveries.WithLabelValues(outcomeDelivered).Inc()
			r.m.latency.Observe(o.At.Sub(d.Event.TS).Seconds())
		case webhook.StateDead:
			r.m.deliveries.WithLabelValues(outcomeDead).Inc()
			r.log.Warn("webhooks: delivery dead-lettered", "endpoint", ep.ID, "topic", d.Event.Topic, "event", d.Event.ID,
				"attempts", d.Attempts+1, "err", o.Result.Err)
		default:
			r.m.deliveries.WithLabelValues(outcomeFailed).Inc()
			failed = o.Result.Err
		}
	}
	if failed != nil && !failingSince.IsZero() && time.Since(failingSince) >= r.cfg.PauseAfter {
		if err := r.store.Pause(rctx, ep.ID, failingSince, time.Now()); err != nil {
			return false, err
		}
		r.log.Warn("webhooks: endpoint paused: every attempt failed", "endpoint", ep.ID,
			"since", failingSince, "err", failed)
		return true, nil
	}
	return false, nil
}

// Timeout bounds one job.
func (w *worker) Timeout(*river.Job[drainArgs]) time.Duration { return jobTimeout(w.r.cfg) }

// jobTimeout bounds a job: a minute, less when RescueAfter is shorter
// (River wants it no longer).
func jobTimeout(cfg Config) time.Duration { return min(time.Minute, cfg.RescueAfter) }
