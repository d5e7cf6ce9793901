package archiveredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// Archive is where the pipeline writes: every write is idempotent
// (archive/sqlstore's Store implements it).
type Archive interface {
	AppendEvents(ctx context.Context, evs []archive.Event) (int64, error)
	UpsertTrips(ctx context.Context, trips []archive.Trip) (int64, error)
	AppendPoints(ctx context.Context, pts []archive.Point) (int64, error)
	AppendLedger(ctx context.Context, es []archive.Entry) (int64, error)
	AppendStatuses(ctx context.Context, cs []archive.StatusChange) (int64, error)
}

// Trips reads a trip's current record for the archive. It returns an
// error wrapping archive.ErrNotFound when the trip is no longer in Redis.
type Trips interface {
	TripRecord(ctx context.Context, id string) (archive.Trip, error)
}

// Config tunes a Pipeline; zero values mean the documented defaults.
type Config struct {
	// Prefix is feedredis.Config.Prefix: the key prefix of the feed's
	// streams and cursors, the dirty index and the leases.
	Prefix string
	// NodeID names this node in the leases. "" means a random ID.
	NodeID string
	// Interval is the pause between two passes over the held shards. 0
	// means 250ms.
	Interval time.Duration
	// LeaseTTL is how long a shard's lease lasts without renewal: a dead
	// node's shards are taken over after it. 0 means 10s.
	LeaseTTL time.Duration
	// Batch is how many events one stream read (XRANGE COUNT) fetches and
	// one archive write takes. 0 means 500.
	Batch int
	// Topics is how many dirty topics of a shard one pass reads. 0 means
	// 1000.
	Topics int
	// CursorTTL is how long a topic's archived cursor is kept after its
	// last advance; make it longer than the feed's MaxAge. 0 means 48h.
	CursorTTL time.Duration
	// MaxBackoff bounds the wait after a failed pass (archive or Redis
	// down). 0 means 30s.
	MaxBackoff time.Duration
	// Trips, if set, is read after a trip topic's new events are archived,
	// and the trip's record upserted (version-guarded by the archive).
	Trips Trips
	// Changes reports whether a feed event of this type may change its
	// trip's record (a chat message does not); only then is the record
	// read again. nil: every type may.
	Changes func(eventType string) bool
	// Readers bounds the trip records read at once by one shard's drain.
	// 0 means 8.
	Readers int
	// Shards bounds the shards drained at once. 0 means 4.
	Shards int
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Topics <= 0 {
		c.Topics = 1000
	}
	if c.CursorTTL <= 0 {
		c.CursorTTL = 48 * time.Hour
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Readers <= 0 {
		c.Readers = 8
	}
	if c.Shards <= 0 {
		c.Shards = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Pipeline brings the feeds' durable events into the archive; see the
// package doc. Run it on every node.
type Pipeline struct {
	rdb  redis.UniversalClient
	arch Archive
	cfg  Config
	m    *metrics

	leases   *leases
	decs     []*decoder // one per shard: the shards are drained side by side
	recorder tripRecorder

	afterAppend func() // tests: runs between the archive write and the cursor advance
}

// New returns a pipeline reading rdb and writing arch.
func New(rdb redis.UniversalClient, arch Archive, cfg Config) *Pipeline {
	cfg = cfg.withDefaults()
	m := newMetrics(cfg.Registerer)
	l := &leases{rdb: rdb, prefix: cfg.Prefix, node: cfg.NodeID, ttl: cfg.LeaseTTL, shards: m.shards, nodes: m.nodes,
		held: map[int]time.Time{}}
	p := &Pipeline{rdb: rdb, arch: arch, cfg: cfg, m: m, leases: l,
		recorder: tripRecorder{trips: cfg.Trips, arch: arch, readers: cfg.Readers}}
	for range feedredis.ArchiveShards {
		p.decs = append(p.decs, &decoder{batch: cfg.Batch, m: m, log: cfg.Logger,
			changes: cfg.Changes, owed: map[string]bool{}, upserted: map[string]bool{}})
	}
	return p
}

// lastPassTimeout bounds the last pass of a stopping pipeline (Run): when
// ctx ends (the node stops: its requests are done by then) it drains the
// held shards once more, so what was written since the last pass — a trip
// that ended just before Ctrl-C — is archived now rather than left in the
// streams, where an embedded Redis (make run) would lose it with the
// process. It is made only after a pass that went through (not one cut
// short or failed: a crash or an unreachable store); a failure is logged,
// and the events wait in the streams for another node.
const lastPassTimeout = 3 * time.Second

// Run archives until ctx ends, then makes a last pass (lastPassTimeout)
// and releases its leases. A failed pass (archive or Redis unavailable)
// releases the leases too, so a node that can reach both takes over, and
// is retried after a growing pause: the events wait in the streams,
// nothing is lost while they are retained.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.leases.releaseAll()
	wait := time.Duration(0)
	for {
		start := time.Now()
		err := p.pass(ctx)
		if err != nil && ctx.Err() == nil {
			p.m.errors.Inc()
			wait = min(max(2*wait, time.Second), p.cfg.MaxBackoff)
			p.cfg.Logger.Warn("archive: pipeline pass failed; retrying", "err", err, "retry_in", wait)
			p.leases.releaseAll()
		} else {
			wait = 0
			p.m.pass.Observe(time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			if err == nil { // the last pass (lastPassTimeout)
				lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lastPassTimeout)
				if err := p.pass(lctx); err != nil {
					p.m.errors.Inc()
					p.cfg.Logger.Warn("archive: the last pass before stopping failed; the events wait in the streams", "err", err)
				}
				cancel()
			}
			return nil
		case <-time.After(max(wait, p.cfg.Interval)):
		}
	}
}

// pass takes or renews leases when due, then drains every held shard,
// Config.Shards at a time (their topics, cursors and archive keys are
// disjoint). The backlog gauge is then the age of the oldest event it read
// but could not archive (0 after a pass that archived everything it read).
func (p *Pipeline) pass(ctx context.Context) (err error) {
	for _, d := range p.decs {
		d.oldest = 0
	}
	defer func() {
		oldest := uint64(0)
		for _, d := range p.decs {
			if d.oldest != 0 && (oldest == 0 || d.oldest < oldest) {
				oldest = d.oldest
			}
		}
		if err == nil || oldest == 0 {
			p.m.backlog.Set(0)
			return
		}
		p.m.backlog.Set(max(time.Since(time.UnixMilli(int64(oldest))).Seconds(), 0))
	}()
	if err := p.leases.renew(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.Shards)
	for shard := range feedredis.ArchiveShards {
		if !p.leases.holds(shard) {
			continue
		}
		g.Go(func() error {
			if err := p.drainShard(gctx, shard); err != nil {
				return fmt.Errorf("archive: shard %d: %w", shard, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// errReply: a script's reply is not in the expected shape.
var errReply = errors.New("archive: unexpected redis reply")
