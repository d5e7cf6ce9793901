package webhookriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/webhook"
)

// Store is the webhooks' tables (webhook/webhooksql.Store).
type Store interface {
	Route(ctx context.Context, limit int) (int, []string, error)
	Heads(ctx context.Context, endpointID string, topics []string) ([]webhook.Head, error)
	Head(ctx context.Context, endpointID, topic string) (webhook.Head, bool, error)
	Delivery(ctx context.Context, endpointID, topic, eventID string) (webhook.Delivery, error)
	Endpoint(ctx context.Context, id string) (webhook.Endpoint, error)
	Record(ctx context.Context, d webhook.Delivery, o webhook.Outcome) (bool, time.Time, error)
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

// deliverArgs is one River job: send the head of a queue, if it still is
// the head at this generation.
type deliverArgs struct {
	EndpointID string `json:"endpoint_id"`
	Topic      string `json:"topic"`
	EventID    string `json:"event_id"`
	Gen        int64  `json:"gen"`
}

func (deliverArgs) Kind() string { return "hextrack_webhook_delivery" }

// InsertOpts: one live job per head (unique by args among the states a
// job waits or runs in; completed is left out, so a head queued again
// after its job ended, by a resume, gets a new job). River's attempt limit
// is far beyond DeadAfter's: the worker dead-letters, not River.
func (deliverArgs) InsertOpts() river.InsertOpts {
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

	pruned time.Time // the log's last pruning (Run's goroutine)
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
	r := &Runner{cfg: cfg, store: store, sender: sender, conn: c, m: newMetrics(cfg.Registerer), log: cfg.Logger}
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{r: r})
	rc := &river.Config{
		Queues:               map[string]river.QueueConfig{queue: {MaxWorkers: cfg.Workers}},
		Workers:              workers,
		RetryPolicy:          backoff{base: cfg.RetryBase, max: cfg.MaxBackoff},
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

// route runs one routing step and queues the heads of the topics it
// touched; busy: a full batch, more may wait.
func (r *Runner) route(ctx context.Context) (bool, error) {
	n, topics, err := r.store.Route(ctx, r.cfg.Batch)
	if err != nil || n == 0 {
		return false, err
	}
	r.m.routed.Add(float64(n))
	if len(topics) > 0 {
		heads, err := r.store.Heads(ctx, "", topics)
		if err != nil {
			return false, err
		}
		if err := r.enqueue(ctx, heads); err != nil {
			return false, err
		}
	}
	return n == r.cfg.Batch, nil
}

// sweep refreshes the paused gauge and, on the lease holder, queues every
// queue's head again (unique: a head with a live job is skipped).
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
	heads, err := r.store.Heads(ctx, "", nil)
	if err != nil {
		return err
	}
	return r.enqueue(ctx, heads)
}

// Kick queues the heads of an endpoint's queues (webhook.Kicker).
func (r *Runner) Kick(ctx context.Context, endpointID string) error {
	heads, err := r.store.Heads(ctx, endpointID, nil)
	if err != nil {
		return err
	}
	return r.enqueue(ctx, heads)
}

var _ webhook.Kicker = (*Runner)(nil)

// insertBatch bounds the jobs of one InsertMany.
const insertBatch = 500

func (r *Runner) enqueue(ctx context.Context, heads []webhook.Head) error {
	for len(heads) > 0 {
		n := min(len(heads), insertBatch)
		ps := make([]river.InsertManyParams, n)
		for i, h := range heads[:n] {
			ps[i] = river.InsertManyParams{Args: deliverArgs{EndpointID: h.EndpointID, Topic: h.Topic, EventID: h.EventID, Gen: h.Gen}}
		}
		if _, err := r.jobs.InsertMany(ctx, ps); err != nil {
			return fmt.Errorf("webhooks: queue jobs: %w", err)
		}
		heads = heads[n:]
	}
	return nil
}

// backoff is River's retry policy for deliveries: RetryBase doubled per
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

// errAttempt is a failed attempt returned to River, which retries it.
type errAttempt struct{ err error }

func (e errAttempt) Error() string { return "delivery failed: " + e.err.Error() }

// worker delivers the head of a queue.
type worker struct {
	river.WorkerDefaults[deliverArgs]
	r *Runner
}

func (w *worker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	r, a := w.r, job.Args
	d, err := r.store.Delivery(ctx, a.EndpointID, a.Topic, a.EventID)
	if errors.Is(err, webhook.ErrNotFound) {
		return nil // the endpoint was deleted
	}
	if err != nil {
		return err
	}
	if d.State != webhook.StatePending || d.Gen != a.Gen {
		return nil // done already, or replayed since (the replay queued its own job)
	}
	ep, err := r.store.Endpoint(ctx, a.EndpointID)
	if errors.Is(err, webhook.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ep.Enabled || ep.Paused {
		return nil // a resume queues the heads again
	}
	head, ok, err := r.store.Head(ctx, a.EndpointID, a.Topic)
	if err != nil {
		return err
	}
	if !ok || head.EventID != a.EventID {
		// An earlier event of the trip is pending (routed, or replayed,
		// after this job was queued): it goes first.
		if ok {
			return r.enqueue(ctx, []webhook.Head{head})
		}
		return nil
	}
	res := r.sender.Send(ctx, ep.URL, ep.Secret, d.Event)
	now := time.Now()
	o := webhook.Outcome{State: webhook.StatePending, At: now, Result: res}
	switch {
	case res.OK():
		o.State = webhook.StateDelivered
	case !d.FirstAttempt.IsZero() && now.Sub(d.FirstAttempt) >= r.cfg.DeadAfter:
		o.State = webhook.StateDead
	}
	recorded, failingSince, err := r.store.Record(ctx, d, o)
	if err != nil {
		return err // retried: at least once, a success may be sent again
	}
	if !recorded {
		return nil
	}
	switch o.State {
	case webhook.StateDelivered:
		r.m.deliveries.WithLabelValues(outcomeDelivered).Inc()
		r.m.latency.Observe(now.Sub(d.Event.TS).Seconds())
	case webhook.StateDead:
		r.m.deliveries.WithLabelValues(outcomeDead).Inc()
		r.log.Warn("webhooks: delivery dead-lettered", "endpoint", ep.ID, "topic", d.Event.Topic, "event", d.Event.ID,
			"attempts", d.Attempts+1, "err", res.Err)
	default:
		r.m.deliveries.WithLabelValues(outcomeFailed).Inc()
		if !failingSince.IsZero() && now.Sub(failingSince) >= r.cfg.PauseAfter {
			if err := r.store.Pause(ctx, ep.ID, failingSince, now); err != nil {
				return err
			}
			r.log.Warn("webhooks: endpoint paused: every attempt failed", "endpoint", ep.ID,
				"since", failingSince, "err", res.Err)
			return nil
		}
		return errAttempt{res.Err}
	}
	// Delivered or dead: the trip's next event may go.
	next, ok, err := r.store.Head(ctx, a.EndpointID, a.Topic)
	if err != nil || !ok {
		return nil //nolint:nilerr // the sweep queues it
	}
	_ = r.enqueue(ctx, []webhook.Head{next}) // if it fails, the sweep queues it
	return nil
}

// Timeout bounds one job: an attempt lasts at most the sender's timeout.
func (w *worker) Timeout(*river.Job[deliverArgs]) time.Duration { return jobTimeout(w.r.cfg) }

// jobTimeout bounds a job: a minute (an attempt lasts at most 10 s), less
// when RescueAfter is shorter (River wants it no longer).
func jobTimeout(cfg Config) time.Duration { return min(time.Minute, cfg.RescueAfter) }
