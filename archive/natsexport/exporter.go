package natsexport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed"
)

// Outbox is the archive's side of the export (sqlstore.Store): the events
// not yet exported, oldest ID first, and marking them exported.
type Outbox interface {
	PendingExport(ctx context.Context, limit int) ([]archive.Event, error)
	MarkExported(ctx context.Context, evs []archive.Event) error
}

// Leases is the export's lease in the archive (sqlstore.Store): one node
// exports at a time.
type Leases interface {
	LeaseExport(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseExport(ctx context.Context, name, holder string) error
}

// leaseName names the one export lease of an archive: the outbox's flag is
// one per event, so an archive has one export.
const leaseName = "nats"

// Config tunes an Exporter. Zero values are the defaults.
type Config struct {
	// Stream is the JetStream stream's name. "" means "HEXTRACK".
	Stream string
	// Prefix is the subjects' first token; the stream takes "<Prefix>.>".
	// "" means "hextrack".
	Prefix string
	// Duplicates is the stream's deduplication window (Nats-Msg-Id). It
	// must outlast the longest time between a publish and its repeat by
	// another node: LeaseTTL plus AckWait. 0 means 2m (NATS's default).
	Duplicates time.Duration
	// Batch is how many events one step reads and publishes. 0 means 500.
	Batch int
	// Interval is the pause when nothing was pending. 0 means 200ms.
	Interval time.Duration
	// LeaseTTL is how long the lease lasts without renewal (renewed every
	// LeaseTTL/3); a dead node's export is taken over after it. 0 means 15s.
	LeaseTTL time.Duration
	// AckWait bounds the wait for one publish's acknowledgement. 0 means 10s.
	AckWait time.Duration
	// MaxBackoff bounds the pause after a failed step. 0 means 30s.
	MaxBackoff time.Duration
	// NodeID names this node in the lease. "" means a random ID.
	NodeID string
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = "HEXTRACK"
	}
	if c.Prefix == "" {
		c.Prefix = "hextrack"
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 2 * time.Minute
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Interval <= 0 {
		c.Interval = 200 * time.Millisecond
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
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

// ErrInvalidConfig: a stream name or subject prefix NATS would refuse.
var ErrInvalidConfig = errors.New("nats export: invalid configuration")

// check refuses a stream name or prefix NATS would refuse, at start
// rather than at every publish.
func (c Config) check() error {
	if strings.ContainsAny(c.Stream, ".*>/\\ \t\r\n") || len(c.Stream) > 255 {
		return fmt.Errorf("%w: stream name %q: no '.', '*', '>', '/', '\\' or spaces", ErrInvalidConfig, c.Stream)
	}
	for _, t := range strings.Split(c.Prefix, ".") {
		if t == "" || t == "*" || t == ">" || strings.ContainsAny(t, " \t\r\n") {
			return fmt.Errorf("%w: subject prefix %q: dot-separated tokens, no wildcards or spaces", ErrInvalidConfig, c.Prefix)
		}
	}
	return nil
}

// Exporter publishes the archive's events to a JetStream stream. Run it
// on every node; the lease picks one. See the package doc.
type Exporter struct {
	cfg    Config
	outbox Outbox
	leases Leases
	nc     *nats.Conn
	js     jetstream.JetStream
	m      *metrics
	log    *slog.Logger

	// Run's state (one goroutine).
	held     bool
	renewed  time.Time        // last successful lease renewal
	stream   jetstream.Stream // nil until ensured, and after a failure
	synced   bool             // base and inflight are known (tail read)
	base     uint64           // the stream's last sequence, as we left it
	inflight []archive.Event  // sent, neither acknowledged nor known lost
	failing  error            // the last step's error, to log changes only
}

// Open connects to the NATS server at url (in the background: a server
// that does not answer yet is retried forever) and returns an Exporter
// reading outbox. Close it after Run returned.
func Open(url string, outbox Outbox, leases Leases, cfg Config) (*Exporter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, nats.Name("hextrack-export-"+cfg.NodeID),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		// No reconnect buffer: a publish while disconnected fails at once
		// rather than being sent later, after messages sent since, on the
		// next connection. What one connection sends is stored in order.
		nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, fmt.Errorf("nats export: connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.AckWait),
		jetstream.WithPublishAsyncMaxPending(2*cfg.Batch))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats export: %w", err)
	}
	return &Exporter{cfg: cfg, outbox: outbox, leases: leases, nc: nc, js: js,
		m: newMetrics(cfg.Registerer), log: cfg.Logger}, nil
}

// Close closes the NATS connection.
func (x *Exporter) Close() { x.nc.Close() }

// Run exports until ctx ends, then gives the lease back. Failures are
// logged, counted and retried after a growing pause; it returns nil.
func (x *Exporter) Run(ctx context.Context) error {
	defer x.release()
	var wait, backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		next, stage, err := x.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			x.m.errors.WithLabelValues(stage).Inc()
			x.synced, x.stream = false, nil
			backoff = min(max(2*backoff, x.cfg.Interval), x.cfg.MaxBackoff)
			if x.failing == nil || x.failing.Error() != err.Error() {
				x.log.Warn("nats export: failed; retrying", "stage", stage, "err", err, "retry_in", backoff)
			}
			x.failing, wait = err, backoff
			continue
		}
		if x.failing != nil {
			x.log.Info("nats export: recovered")
			x.failing = nil
		}
		backoff, wait = 0, next
	}
}

// step takes or renews the lease, and while held publishes one batch; it
// returns the pause before the next step.
func (x *Exporter) step(ctx context.Context) (time.Duration, string, error) {
	if err := x.lease(ctx); err != nil {
		return 0, stageLease, err
	}
	if !x.held {
		return x.cfg.LeaseTTL / 3, "", nil
	}
	if !x.synced {
		if stage, err := x.sync(ctx); err != nil {
			return 0, stage, err
		}
	}
	evs, err := x.outbox.PendingExport(ctx, x.cfg.Batch)
	if err != nil {
		return 0, stageArchive, err
	}
	if len(evs) == 0 {
		return x.cfg.Interval, "", nil
	}
	x.inflight = evs
	acked, perr := x.publish(ctx, evs)
	if acked > 0 {
		if err := x.outbox.MarkExported(ctx, evs[:acked]); err != nil {
			// Stored but not marked: the next sync finds them at the tail.
			return 0, stageArchive, err
		}
		x.inflight = evs[acked:]
	}
	if errors.Is(perr, errAfterDuplicate) {
		x.synced = false
		return 0, "", nil
	}
	if perr != nil {
		return 0, stagePublish, perr
	}
	x.inflight = nil
	if len(evs) == x.cfg.Batch {
		return 0, "", nil
	}
	return x.cfg.Interval, "", nil
}

// lease takes the lease, or renews it every LeaseTTL/3.
func (x *Exporter) lease(ctx context.Context) error {
	if x.held && time.Since(x.renewed) < x.cfg.LeaseTTL/3 {
		return nil
	}
	now := time.Now()
	ok, err := x.leases.LeaseExport(ctx, leaseName, x.cfg.NodeID, x.cfg.LeaseTTL)
	if err != nil {
		if x.held && time.Since(x.renewed) >= x.cfg.LeaseTTL {
			x.setHeld(false) // it has expired: another node may hold it
		}
		return err
	}
	if ok {
		x.renewed = now
	}
	x.setHeld(ok)
	return nil
}

func (x *Exporter) setHeld(held bool) {
	if held == x.held {
		return
	}
	x.held, x.synced, x.stream, x.inflight = held, false, nil, nil
	if held {
		x.m.held.Set(1)
		x.log.Info("nats export: lease taken: exporting", "node", x.cfg.NodeID, "stream", x.cfg.Stream)
		return
	}
	x.m.held.Set(0)
	x.log.Info("nats export: lease lost", "node", x.cfg.NodeID)
}

// release gives the lease back at the end of Run.
func (x *Exporter) release() {
	if !x.held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := x.leases.ReleaseExport(ctx, leaseName, x.cfg.NodeID); err != nil {
		x.log.Warn("nats export: release lease", "err", err)
	}
	x.setHeld(false)
}

// sync makes sure the stream exists, then reads its tail: the events of
// the last batch that it stored although their acks were lost are marked
// exported, and the next publish expects the tail's sequence.
func (x *Exporter) sync(ctx context.Context) (string, error) {
	if x.stream == nil {
		s, err := x.ensureStream(ctx)
		if err != nil {
			return stageStream, err
		}
		x.stream = s
	}
	info, err := x.stream.Info(ctx)
	if err != nil {
		return stageStream, fmt.Errorf("stream %s: info: %w", x.cfg.Stream, err)
	}
	last, tail := info.State.LastSeq, ""
	if last > 0 {
		msg, err := x.stream.GetMsg(ctx, last)
		switch {
		case err == nil:
			tail = msg.Header.Get(jetstream.MsgIDHeader)
		case !errors.Is(err, jetstream.ErrMsgNotFound): // deleted or purged: no tail
			return stageStream, fmt.Errorf("stream %s: last message: %w", x.cfg.Stream, err)
		}
	}
	if i := slices.IndexFunc(x.inflight, func(ev archive.Event) bool { return MsgID(ev) == tail }); i >= 0 {
		if err := x.outbox.MarkExported(ctx, x.inflight[:i+1]); err != nil {
			return stageArchive, err
		}
		x.log.Info("nats export: events stored before their acks were lost, marked", "events", i+1)
	}
	x.inflight, x.base, x.synced = nil, last, true
	return "", nil
}

// ensureStream creates the stream, or adds the export's subjects to it and
// sets its duplicates window (at most its MaxAge), keeping the rest of an
// existing stream's configuration as its operator set it.
func (x *Exporter) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	subj := x.cfg.Prefix + ".>"
	s, err := x.js.Stream(ctx, x.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = x.js.CreateStream(ctx, jetstream.StreamConfig{Name: x.cfg.Stream, Subjects: []string{subj},
			Description: "hextrack's durable events (archive/natsexport)", Storage: jetstream.FileStorage,
			Duplicates: x.cfg.Duplicates})
		if err != nil {
			return nil, fmt.Errorf("stream %s: create: %w", x.cfg.Stream, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", x.cfg.Stream, err)
	}
	cfg := s.CachedInfo().Config
	dup := x.cfg.Duplicates
	if cfg.MaxAge > 0 && dup > cfg.MaxAge {
		dup = cfg.MaxAge
	}
	if slices.Contains(cfg.Subjects, subj) && cfg.Duplicates == dup {
		return s, nil
	}
	if !slices.Contains(cfg.Subjects, subj) {
		cfg.Subjects = append(cfg.Subjects, subj)
	}
	cfg.Duplicates = dup
	if s, err = x.js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("stream %s: update: %w", x.cfg.Stream, err)
	}
	return s, nil
}

// publish sends evs asynchronously, each expecting the stream's last
// sequence to be the one before it (so the stream can only ever hold a
// prefix of what was sent), then waits for the acks in order. It returns
// how many of evs, from the first, the stream acknowledged.
func (x *Exporter) publish(ctx context.Context, evs []archive.Event) (int, error) {
	futs := make([]jetstream.PubAckFuture, 0, len(evs))
	var sendErr error
	dup := false
	for i := range evs {
		msg, err := x.message(evs[i])
		if err != nil {
			sendErr = err
			break
		}
		f, err := x.js.PublishMsgAsync(msg, jetstream.WithMsgID(MsgID(evs[i])),
			jetstream.WithExpectLastSequence(x.base+uint64(i)), jetstream.WithRetryAttempts(0))
		if err != nil {
			sendErr = fmt.Errorf("publish %s: %w", MsgID(evs[i]), err)
			break
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dup = true
			} else {
				x.base = ack.Sequence
				x.m.events.Inc()
			}
			x.m.lag.Observe(time.Since(evs[i].TS).Seconds())
		case err := <-f.Err():
			if dup {
				// A duplicate did not advance the stream, so what follows
				// expected a sequence one too far: sync and send it again.
				return i, errAfterDuplicate
			}
			return i, fmt.Errorf("publish %s: %w", MsgID(evs[i]), err)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	return len(futs), sendErr
}

// errAfterDuplicate: a batch held events the stream already had (a node
// died before marking them) and the rest must be sent again; not a failure.
var errAfterDuplicate = errors.New("nats export: duplicates acknowledged; resending the rest")

// message is ev as a NATS message: the feed's envelope (feed.Event's JSON,
// what SSE and the webhooks send) on Subject.
func (x *Exporter) message(ev archive.Event) (*nats.Msg, error) {
	data := ev.Data
	if data == nil {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(feed.Event{ID: ev.ID, Type: ev.Type, Topic: ev.Topic, TS: ev.TS, Data: data})
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", MsgID(ev), err)
	}
	return &nats.Msg{Subject: Subject(x.cfg.Prefix, ev), Data: b, Header: nats.Header{}}, nil
}
