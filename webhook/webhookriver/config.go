package webhookriver

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes a Runner. Zero values are the defaults.
type Config struct {
	// Workers is how many endpoints this node drains at once (River
	// workers). 0 means 20 (4 on SQLite, one writer at a time).
	Workers int
	// InFlight is how many deliveries one endpoint's drain sends at once,
	// each of a different trip, in 4 batches (lanes). 0 means 128.
	InFlight int
	// Claim is how long a node holds the deliveries it sends: no other
	// node sends them meanwhile, and past it a dead node's are due again.
	// An attempt is cut at Claim, so it must exceed the Sender's timeout.
	// 0 means 30s.
	Claim time.Duration
	// Linger is the longest wait for a retry a drain job does itself
	// (looking for new deliveries every Interval meanwhile); a later one
	// gets a job scheduled at its time. 0 means 2s.
	Linger time.Duration
	// RetryBase is the first retry's delay; each next one doubles, up to
	// MaxBackoff, with jitter (the delay is drawn in [d/2, d]). 0 means 5s.
	RetryBase time.Duration
	// MaxBackoff bounds a retry's delay. 0 means 1h.
	MaxBackoff time.Duration
	// DeadAfter is how long a delivery is retried, from its first
	// attempt, before it is dead-lettered. 0 means 24h.
	DeadAfter time.Duration
	// PauseAfter pauses an endpoint whose every attempt failed for this
	// long. 0 means 1h.
	PauseAfter time.Duration
	// KeepLog is how long delivered and dead-lettered deliveries stay in
	// the delivery log (pruned hourly by the lease holder). 0 means 30
	// days; negative: forever.
	KeepLog time.Duration
	// Batch is how many archived events one routing step reads. 0 means 500.
	Batch int
	// Interval is the routing loop's pause when nothing was new, and a
	// lingering drain's between looks. 0 means 200ms.
	Interval time.Duration
	// Sweep is how often the lease holder queues the drain job of every
	// endpoint with pending deliveries (a job lost with its node, an
	// endpoint resumed elsewhere) and every node refreshes the paused
	// gauge. 0 means 30s.
	Sweep time.Duration
	// LeaseTTL is the routing lease's life (renewed every step). 0 means 15s.
	LeaseTTL time.Duration
	// FetchPollInterval is how often River polls for jobs (on PostgreSQL
	// LISTEN/NOTIFY also wakes it). 0 means River's 1s.
	FetchPollInterval time.Duration
	// RescueAfter is how long a job may stay running before River gives it
	// to another worker (its node died mid-delivery). 0 means 5m.
	RescueAfter time.Duration
	// NodeID names this node in the lease. "" means a random ID.
	NodeID string
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults(sqlite bool) Config {
	if c.Workers <= 0 {
		c.Workers = 20
		if sqlite {
			c.Workers = 4
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.InFlight <= 0 {
		c.InFlight = 128
	}
	def(&c.Claim, 30*time.Second)
	def(&c.Linger, 2*time.Second)
	def(&c.RetryBase, 5*time.Second)
	def(&c.MaxBackoff, time.Hour)
	def(&c.DeadAfter, 24*time.Hour)
	def(&c.PauseAfter, time.Hour)
	def(&c.Interval, 200*time.Millisecond)
	def(&c.Sweep, 30*time.Second)
	def(&c.LeaseTTL, 15*time.Second)
	def(&c.RescueAfter, 5*time.Minute)
	if c.KeepLog == 0 {
		c.KeepLog = 30 * 24 * time.Hour
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
