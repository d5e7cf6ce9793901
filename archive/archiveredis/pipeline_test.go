package archiveredis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/archiveredis"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/redistest"
)

// env is one test's Redis (own prefix), feed publisher (marking for the
// archive) and SQLite archive.
type env struct {
	t      *testing.T
	rdb    *redis.Client
	prefix string
	feed   *feedredis.Broker
	store  *sqlstore.Store
	url    string
}

const grace = 150 * time.Millisecond

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "archive.db"))
}

// newEnvAt is newEnv with the archive at url (a SQLite file or a
// PostgreSQL URL).
func newEnvAt(t *testing.T, url string) *env {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	b := feedredis.New(rdb, feedredis.Config{ArchiveMarks: true, Prefix: prefix, ArchiveGrace: grace,
		PositionCheck: -1, Logger: quiet(t)})
	t.Cleanup(func() { _ = b.Close() })
	s, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open archive: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &env{t: t, rdb: rdb, prefix: prefix, feed: b, store: s, url: url}
}

func quiet(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// topic returns a new trip topic whose keys are deleted at cleanup.
func (e *env) topic() string { return e.topicIn(-1) }

// topicIn is topic in the dirty index's shard (-1: any).
func (e *env) topicIn(shard int) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	topic := "trip:pt_" + hex.EncodeToString(b[:])
	for shard >= 0 && feedredis.DirtyShard(topic) != shard {
		_, _ = rand.Read(b[:])
		topic = "trip:pt_" + hex.EncodeToString(b[:])
	}
	e.t.Cleanup(func() {
		e.rdb.Del(context.Background(), feed.StreamKey(e.prefix, topic), feedredis.ArchivedKey(e.prefix, topic))
	})
	return topic
}

// publish publishes n durable events to topic and returns their IDs.
func (e *env) publish(topic string, n int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := e.feed.Publish(context.Background(), feed.Publication{Topic: topic, Type: "trip.status",
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			e.t.Fatalf("publish: %v", err)
		}
		ids[i] = id
	}
	return ids
}

func (e *env) pipeline(arch archiveredis.Archive, node string, reg prometheus.Registerer, mod ...func(*archiveredis.Config)) *archiveredis.Pipeline {
	cfg := archiveredis.Config{Prefix: e.prefix, NodeID: node, Interval: 10 * time.Millisecond,
		LeaseTTL: 600 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Registerer: reg, Logger: quiet(e.t)}
	for _, f := range mod {
		f(&cfg)
	}
	return archiveredis.New(e.rdb, arch, cfg)
}

// run runs p until the returned stop is called (or the test ends).
func run(t *testing.T, p *archiveredis.Pipeline) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// archived returns the IDs the archive holds for topic, in order.
func (e *env) archived(topic string) []string {
	e.t.Helper()
	evs, err := e.store.Events(context.Background(), archive.EventQuery{Topic: topic, Limit: 1000})
	if err != nil {
		e.t.Fatalf("archive events: %v", err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

// waitArchived waits until topic's archived IDs are want, and fails
// the test with a diff after timeout.
func (e *env) waitArchived(topic string, want []string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := e.archived(topic)
		if equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("topic %s: archived %d events, want %d\n got %v\nwant %v", topic, len(got), len(want), got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// dirty counts the topics in the dirty index.
func (e *env) dirty() int64 {
	var n int64
	for s := range feedredis.ArchiveShards {
		n += e.rdb.ZCard(context.Background(), feedredis.DirtyKey(e.prefix, s)).Val()
	}
	return n
}

func (e *env) waitClean(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for e.dirty() != 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("dirty index still holds %d topics", e.dirty())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestArchivesEveryEventOncePerTopicInOrder(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	stop := run(t, e.pipeline(e.store, "n1", reg, func(c *archiveredis.Config) { c.Batch = 4 }))
	topics := make([]string, 35) // one shard, more than one round's worth (32)
	for i := range topics {
		topics[i] = e.topicIn(3)
	}
	want := map[string][]string{}
	for range 2 { // interleaved
		for _, tp := range topics {
			want[tp] = append(want[tp], e.publish(tp, 3)...)
		}
	}
	for _, tp := range topics {
		e.waitArchived(tp, want[tp], 10*time.Second)
	}
	e.waitClean(5 * time.Second)
	stop()
	if n := value(t, reg, "hextrack_archive_events_total"); n != 210 {
		t.Fatalf("hextrack_archive_events_total = %v, want 210", n)
	}
	if n := value(t, reg, "hextrack_archive_gaps_total"); n != 0 {
		t.Fatalf("gaps = %v, want 0", n)
	}
}

// value reads the counter or gauge registered under name.
func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if g := mf.GetMetric()[0].GetGauge(); g != nil {
				return g.GetValue()
			}
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// A consumer killed between the archive write and the cursor advance: the
// next one re-reads that batch, the archive absorbs it, the count equals
// the stream's.
func TestCrashBetweenWriteAndCursorArchivesOnce(t *testing.T) {
	e := newEnv(t)
	tp := e.topic()
	want := e.publish(tp, 35)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := e.pipeline(e.store, "killed", nil, func(c *archiveredis.Config) { c.Batch = 10 })
	archiveredis.SetAfterAppend(a, cancel)
	if err := a.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := e.archived(tp); !equal(got, want[:10]) {
		t.Fatalf("after the crash the archive holds %v, want the first batch", got)
	}
	if c := e.rdb.Get(context.Background(), feedredis.ArchivedKey(e.prefix, tp)).Val(); c != "" {
		t.Fatalf("cursor advanced to %q by the killed consumer", c)
	}
	for s := range feedredis.ArchiveShards { // killed: its leases stay until they expire
		e.rdb.Set(context.Background(), e.prefix+fmt.Sprintf("archive:lease:{s%d}", s), "killed", 300*time.Millisecond)
	}

	reg := prometheus.NewRegistry()
	run(t, e.pipeline(e.store, "next", reg, func(c *archiveredis.Config) { c.Batch = 10 }))
	e.waitArchived(tp, want, 10*time.Second)
	e.waitClean(5 * time.Second)
	if n := value(t, reg, "hextrack_archive_events_total"); n != 25 {
		t.Fatalf("new events written by the second consumer = %v, want 25 (10 were redeliveries)", n)
	}
}

// Two nodes drain while publishers run; a dead node's leases (held by
// "ghost") are taken over once they expire.
func TestTwoNodesWithLeasesLoseNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for s := range feedredis.ArchiveShards {
		e.rdb.Set(ctx, e.prefix+fmt.Sprintf("archive:lease:{s%d}", s), "ghost", 300*time.Millisecond)
	}
	run(t, e.pipeline(e.store, "a", nil, func(c *archiveredis.Config) { c.Batch = 3 }))
	stopB := run(t, e.pipeline(e.store, "b", nil, func(c *archiveredis.Config) { c.Batch = 3 }))
	topics := make([]string, 8)
	want := make([][]string, len(topics))
	var wg sync.WaitGroup
	for i := range topics {
		topics[i] = e.topic()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				want[i] = append(want[i], e.publish(topics[i], 5)...)
				time.Sleep(20 * time.Millisecond)
			}
		}()
		if i == len(topics)/2 {
			stopB() // b leaves while events are being published
		}
	}
	wg.Wait()
	for i, tp := range topics {
		e.waitArchived(tp, want[i], 10*time.Second)
	}
	e.waitClean(5 * time.Second)
}

// flaky is an archive that can be down.
type flaky struct {
	archiveredis.Archive
	down atomic.Bool
}

var errDown = errors.New("archive down")

func (f *flaky) AppendEvents(ctx context.Context, evs []archive.Event) (int64, error) {
	if f.down.Load() {
		return 0, errDown
	}
	return f.Archive.AppendEvents(ctx, evs)
}

func TestArchiveDownThenBackCatchesUp(t *testing.T) {
	e := newEnv(t)
	arch := &flaky{Archive: e.store}
	arch.down.Store(true)
	reg := prometheus.NewRegistry()
	run(t, e.pipeline(arch, "n1", reg))
	tp := e.topic()
	want := e.publish(tp, 20)
	deadline := time.Now().Add(5 * time.Second)
	for value(t, reg, "hextrack_archive_pipeline_errors_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no failed pass while the archive is down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.archived(tp); len(got) != 0 {
		t.Fatalf("archived %d events while down", len(got))
	}
	if b := value(t, reg, "hextrack_archive_backlog_seconds"); b <= 0 {
		t.Fatalf("backlog %v while the archive is down, want > 0", b)
	}
	want = append(want, e.publish(tp, 20)...)
	arch.down.Store(false)
	e.waitArchived(tp, want, 10*time.Second)
	e.waitClean(5 * time.Second)
	time.Sleep(50 * time.Millisecond) // a pass after the catch-up
	if b := value(t, reg, "hextrack_archive_backlog_seconds"); b != 0 {
		t.Fatalf("backlog %v after the catch-up, want 0", b)
	}
}

// A publish marked while a consumer drains its topic keeps the topic
// dirty: the consumer's removal sees the raised score.
func TestConcurrentPublishKeepsTopicDirty(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tp := e.topic()
	first := e.publish(tp, 1)
	time.Sleep(grace + 20*time.Millisecond) // the first mark's deadline has passed
	p := e.pipeline(e.store, "n1", nil)
	var second []string
	archiveredis.SetAfterAppend(p, func() {
		if second == nil {
			second = e.publish(tp, 1) // after the stream was read, before the removal
		}
	})
	if err := archiveredis.Pass(ctx, p); err != nil {
		t.Fatalf("pass: %v", err)
	}
	if got := e.archived(tp); !equal(got, first) {
		t.Fatalf("archived %v, want %v", got, first)
	}
	key := feedredis.DirtyKey(e.prefix, feedredis.DirtyShard(tp))
	if err := e.rdb.ZScore(ctx, key, tp).Err(); err != nil {
		t.Fatalf("topic dropped from the dirty index despite a concurrent publish: %v", err)
	}
	time.Sleep(grace + 20*time.Millisecond)
	for range 2 {
		if err := archiveredis.Pass(ctx, p); err != nil {
			t.Fatalf("pass: %v", err)
		}
	}
	if got := e.archived(tp); !equal(got, append(first, second...)) {
		t.Fatalf("archived %v, want %v", got, append(first, second...))
	}
	if n := e.dirty(); n != 0 {
		t.Fatalf("dirty index holds %d topics after the topic was drained", n)
	}
}

// A stream trimmed past the cursor: what remains is archived and the gap
// counted.
func TestTrimmedStreamCountsGap(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	p := e.pipeline(e.store, "n1", reg)
	tp := e.topic()
	want := e.publish(tp, 3)
	if err := archiveredis.Pass(ctx, p); err != nil {
		t.Fatal(err)
	}
	more := e.publish(tp, 10)
	e.rdb.XTrimMaxLen(ctx, feed.StreamKey(e.prefix, tp), 4)
	if err := archiveredis.Pass(ctx, p); err != nil {
		t.Fatal(err)
	}
	want = append(want, more[6:]...)
	if got := e.archived(tp); !equal(got, want) {
		t.Fatalf("archived %v, want %v", got, want)
	}
	if n := value(t, reg, "hextrack_archive_gaps_total"); n != 1 {
		t.Fatalf("gaps = %v, want 1", n)
	}
}

// tripRecords serves a fixed record at a version that grows per read.
type tripRecords struct{ version atomic.Int64 }

func (r *tripRecords) TripRecord(_ context.Context, id string) (archive.Trip, error) {
	now := time.Now()
	return archive.Trip{ID: id, Kind: "ride", RiderID: "r1", Status: "requested", Version: r.version.Add(1),
		CreatedAt: now, UpdatedAt: now}, nil
}

func TestTripRecordUpserted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	recs := &tripRecords{}
	p := e.pipeline(e.store, "n1", nil, func(c *archiveredis.Config) { c.Trips = recs })
	tp := e.topic()
	e.publish(tp, 2)
	if err := archiveredis.Pass(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, id, _ := feed.ParseTopic(tp)
	got, err := e.store.Trip(ctx, id)
	if err != nil {
		t.Fatalf("trip record: %v", err)
	}
	if got.Version != 1 || got.RiderID != "r1" {
		t.Fatalf("trip record = %+v", got)
	}
}

// A trip's record is read again only when its events may have changed it:
// not for chat messages, but after a full read that held a change (owed),
// and on a process's first read of the trip (what an earlier one owed is
// not known).
func TestTripRecordReadOnlyWhenChanged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	recs := &tripRecords{}
	changes := func(typ string) bool { return typ != "trip.message" }
	mod := func(c *archiveredis.Config) { c.Trips, c.Changes, c.Batch = recs, changes, 4 }
	tp := e.topic()
	_, id, _ := feed.ParseTopic(tp)
	publish := func(typ string, n int) {
		for i := range n {
			if _, err := e.feed.Publish(ctx, feed.Publication{Topic: tp, Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	step := func(p *archiveredis.Pipeline, what string, wantReads int64) {
		t.Helper()
		if err := archiveredis.Pass(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got := recs.version.Load(); got != wantReads {
			t.Fatalf("%s: %d record reads, want %d", what, got, wantReads)
		}
		rec, err := e.store.Trip(ctx, id)
		if err != nil || rec.Version != wantReads {
			t.Fatalf("%s: archived record %+v, %v; want version %d", what, rec, err, wantReads)
		}
	}
	p := e.pipeline(e.store, "n1", nil, mod)
	publish("trip.status", 2)
	step(p, "a status change", 1)
	publish("trip.message", 3)
	step(p, "chat messages only", 1)
	publish("trip.status", 1)
	step(p, "another status change", 2)
	publish("trip.status", 4)  // a full read (Batch 4) …
	publish("trip.message", 2) // … then messages only: the change is owed
	step(p, "a change in a full read", 3)
	time.Sleep(700 * time.Millisecond) // n1's leases (600ms) run out: it died
	p2 := e.pipeline(e.store, "n2", nil, mod)
	publish("trip.message", 1)
	step(p2, "the next node's first read", 4)
	publish("trip.message", 1)
	step(p2, "its second", 4)
}

// TestStopArchivesWhatCameLast: events published after the pipeline's
// last regular pass are archived when it stops (its last pass), not left
// in the streams (make run's embedded Redis would lose them with the
// process).
func TestStopArchivesWhatCameLast(t *testing.T) {
	e := newEnv(t)
	// One pass at the start, the next an hour later: only the last pass
	// can archive what follows the first.
	stop := run(t, e.pipeline(e.store, "n1", nil, func(c *archiveredis.Config) { c.Interval = time.Hour }))
	first := e.topic()
	want := e.publish(first, 1)
	e.waitArchived(first, want, 10*time.Second) // the first pass took the lease
	// A new round of the same topic and a new topic, after the first pass.
	want = append(want, e.publish(first, 2)...)
	second := e.topic()
	want2 := e.publish(second, 3)
	if got := e.archived(second); len(got) != 0 {
		t.Fatalf("archived before the stop: %v", got)
	}
	stop()
	e.waitArchived(first, want, 0)
	e.waitArchived(second, want2, 0)
}
