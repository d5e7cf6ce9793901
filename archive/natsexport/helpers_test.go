package natsexport_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/natsexport"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

// defaultNATS is the machine's NATS server (JetStream on);
// HEXTRACK_TEST_NATS_URL overrides it.
const defaultNATS = "nats://127.0.0.1:4222"

// defaultPG is the machine's PostgreSQL; HEXTRACK_TEST_DATABASE_URL
// overrides it (as in archive/sqlstore's tests).
const defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// missing skips the test, or fails it under CI=true: CI must test against
// the real service.
func missing(tb testing.TB, what string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is required in CI: %v", what, err)
	}
	tb.Skipf("%s unreachable: %v", what, err)
}

// natsURL is the test NATS server's URL, checked to answer.
func natsURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("HEXTRACK_TEST_NATS_URL")
	if u == "" {
		u = defaultNATS
	}
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
	if err != nil {
		missing(tb, "NATS (HEXTRACK_TEST_NATS_URL or "+defaultNATS+")", err)
	}
	nc.Close()
	return u
}

// testStream is a stream name and subject prefix of the test's own; the
// stream is deleted when the test ends.
type testStream struct {
	name, prefix string
}

func newTestStream(tb testing.TB, natsURL string) testStream {
	tb.Helper()
	r := randHex(5)
	s := testStream{name: "HXTEST_" + strings.ToUpper(r), prefix: "hxtest_" + r}
	tb.Cleanup(func() {
		js, nc := mustJS(tb, natsURL)
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, s.name); err != nil && err != jetstream.ErrStreamNotFound {
			tb.Errorf("delete stream %s: %v", s.name, err)
		}
	})
	return s
}

func mustJS(tb testing.TB, u string) (jetstream.JetStream, *nats.Conn) {
	tb.Helper()
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		tb.Fatalf("connect %s: %v", u, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js, nc
}

// stored is one message of the stream.
type stored struct {
	Seq     uint64
	Subject string
	MsgID   string
	Event   struct {
		ID    string          `json:"id"`
		Type  string          `json:"type"`
		Topic string          `json:"topic"`
		TS    time.Time       `json:"ts"`
		Data  json.RawMessage `json:"data"`
	}
}

// readStream returns every message of stream, in stream order.
func readStream(tb testing.TB, u, stream string) []stored {
	tb.Helper()
	js, nc := mustJS(tb, u)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("message %d: %v", seq, err)
		}
		st := stored{Seq: seq, Subject: m.Subject, MsgID: m.Header.Get(jetstream.MsgIDHeader)}
		if err := json.Unmarshal(m.Data, &st.Event); err != nil {
			tb.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, st)
	}
	return out
}

// backends are the archives every export test runs against.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "archive.db") }},
	{"postgres", pgURL},
}

func forEachStore(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, err := sqlstore.Open(context.Background(), b.url(t))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}
}

// pgURL creates a schema of the test's own in the test PostgreSQL, drops
// it at the end, and returns a URL whose search_path is that schema.
func pgURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("HEXTRACK_TEST_DATABASE_URL")
	if base == "" {
		base = defaultPG
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		missing(tb, "PostgreSQL (HEXTRACK_TEST_DATABASE_URL or "+defaultPG+")", err)
	}
	schema := "hx_test_" + randHex(6)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

var t0 = time.Date(2026, 12, 7, 8, 0, 0, 123456000, time.UTC)

// makeEvents makes n events spread over trip topics, driver topics and
// "ops", IDs from first on (a topic's IDs increase).
func makeEvents(first, n int) []archive.Event {
	evs := make([]archive.Event, n)
	for i := range evs {
		k := first + i
		ev := archive.Event{
			ID:   fmt.Sprintf("%d-%d", 1_800_000_000_000+k/7, k%7),
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, k)),
			TS:   t0.Add(time.Duration(k) * time.Millisecond),
		}
		switch k % 7 {
		case 5:
			ev.Topic, ev.Type = fmt.Sprintf("driver:d%d", k%3), "offer"
		case 6:
			ev.Topic, ev.Type = "ops", "ops.alert"
		default:
			trip := fmt.Sprintf("t_%d", k%5)
			ev.Topic, ev.Type, ev.TripID = "trip:"+trip, "trip.status", trip
		}
		evs[i] = ev
	}
	return evs
}

func mustAppend(tb testing.TB, s *sqlstore.Store, evs []archive.Event) {
	tb.Helper()
	for len(evs) > 0 {
		n := min(len(evs), 200)
		if _, err := s.AppendEvents(context.Background(), evs[:n]); err != nil {
			tb.Fatalf("AppendEvents: %v", err)
		}
		evs = evs[n:]
	}
}

// logWriter sends the exporter's log lines to the test's log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// runner runs an Exporter until stopped.
type runner struct {
	x      *natsexport.Exporter
	cancel context.CancelFunc
	done   chan struct{}
}

func startExporter(tb testing.TB, u string, s *sqlstore.Store, ts testStream, cfg natsexport.Config) *runner {
	tb.Helper()
	cfg.Stream, cfg.Prefix = ts.name, ts.prefix
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 300 * time.Millisecond
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logWriter{tb}, nil))
	x, err := natsexport.Open(u, s, s, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{x: x, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = x.Run(ctx) }()
	tb.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
	r.x.Close()
}

// waitExported waits until the archive has no pending event (failing the
// test after a minute rather than hanging).
func waitExported(tb testing.TB, s *sqlstore.Store) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := s.PendingExport(context.Background(), 1)
		if err == nil && len(p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("events still pending after a minute (%d, %v)", len(p), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOnce checks that the stream holds each of want exactly once, each
// topic's events in order, each as its envelope on its subject.
func checkOnce(tb testing.TB, got []stored, want []archive.Event, prefix string) {
	tb.Helper()
	byID := make(map[string]archive.Event, len(want))
	for _, ev := range want {
		byID[natsexport.MsgID(ev)] = ev
	}
	seen := make(map[string]uint64, len(got))
	last := map[string]archive.EventID{}
	for _, m := range got {
		if s, dup := seen[m.MsgID]; dup {
			tb.Fatalf("%s stored twice: at %d and %d", m.MsgID, s, m.Seq)
		}
		seen[m.MsgID] = m.Seq
		ev, ok := byID[m.MsgID]
		if !ok {
			tb.Fatalf("message %d: %s is not an archived event", m.Seq, m.MsgID)
		}
		if m.Subject != natsexport.Subject(prefix, ev) || m.Event.ID != ev.ID || m.Event.Topic != ev.Topic ||
			m.Event.Type != ev.Type || !m.Event.TS.Equal(ev.TS) || string(m.Event.Data) != string(ev.Data) {
			tb.Fatalf("message %d = %+v on %s; want %+v", m.Seq, m.Event, m.Subject, ev)
		}
		id, _ := archive.ParseEventID(ev.ID)
		if p, ok := last[ev.Topic]; ok && (id.Ms < p.Ms || id.Ms == p.Ms && id.Seq <= p.Seq) {
			tb.Fatalf("message %d: %s after %s: topic out of order", m.Seq, ev.ID, p)
		}
		last[ev.Topic] = id
	}
	if len(seen) != len(want) {
		var lost []string
		for id := range byID {
			if _, ok := seen[id]; !ok {
				lost = append(lost, id)
			}
		}
		tb.Fatalf("stream holds %d of %d events; missing e.g. %v", len(seen), len(want), lost[:min(5, len(lost))])
	}
}

// proxy is a TCP proxy to a NATS server that a test can cut (every
// connection closed, new ones refused) and restore.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	tb.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

// cut closes every connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
