package natsexport_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/natsexport"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

func TestSubject(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   archive.Event
		want string
	}{
		{"trip", archive.Event{Topic: "trip:t_1", TripID: "t_1", Type: "trip.status"}, "hx.trip.status.t_1"},
		{"driver", archive.Event{Topic: "driver:d-9", Type: "offer"}, "hx.offer.driver.d-9"},
		{"driver trip event", archive.Event{Topic: "driver:d1", Type: "trip.cancelled"}, "hx.trip.cancelled.driver.d1"},
		{"no kind", archive.Event{Topic: "ops", Type: "ops.alert"}, "hx.ops.alert._.ops"},
		{"bad bytes", archive.Event{Topic: "zone:a.b*c>d", Type: "x..y"}, "hx.x._.y.zone.a_b_c_d"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := natsexport.Subject("hx", c.ev); got != c.want {
				t.Fatalf("Subject = %q, want %q", got, c.want)
			}
		})
	}
	ev := archive.Event{Topic: "trip:t_1", ID: "1800000000000-3"}
	if got := natsexport.MsgID(ev); got != "trip:t_1/1800000000000-3" {
		t.Fatalf("MsgID = %q", got)
	}
}

// TestExportOnce: every archived event ends in the stream once, in each
// topic's order, as its envelope; events archived later, with a new node
// taking over, follow.
func TestExportOnce(t *testing.T) {
	u := natsURL(t)
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ts := newTestStream(t, u)
		first := makeEvents(0, 1200)
		mustAppend(t, s, first)
		r := startExporter(t, u, s, ts, natsexport.Config{Batch: 100})
		waitExported(t, s)
		r.stop()
		checkOnce(t, readStream(t, u, ts.name), first, ts.prefix)

		more := makeEvents(1200, 300)
		mustAppend(t, s, more)
		mustAppend(t, s, first[:50]) // a redelivery to the archive: not exported again
		startExporter(t, u, s, ts, natsexport.Config{Batch: 64})
		waitExported(t, s)
		checkOnce(t, readStream(t, u, ts.name), append(first, more...), ts.prefix)

		js, nc := mustJS(t, u)
		defer nc.Close()
		st, err := js.Stream(context.Background(), ts.name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.CachedInfo().Config; cfg.Duplicates != 2*time.Minute || len(cfg.Subjects) != 1 || cfg.Subjects[0] != ts.prefix+".>" {
			t.Fatalf("stream config: duplicates %v, subjects %v", cfg.Duplicates, cfg.Subjects)
		}
	})
}

// TestDuplicateAfterCrash: a node that published a batch and died before
// marking it leaves the events pending; the next node publishes them again
// and the stream drops them by Nats-Msg-Id.
func TestDuplicateAfterCrash(t *testing.T) {
	u := natsURL(t)
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ts := newTestStream(t, u)
		evs := makeEvents(0, 400)
		mustAppend(t, s, evs)

		// The dead node's publishes: the first 150 pending events, stored
		// with their message IDs, never marked.
		js, nc := mustJS(t, u)
		defer nc.Close()
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: ts.name, Subjects: []string{ts.prefix + ".>"},
			Duplicates: 2 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingExport(ctx, 150)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range pending {
			msg := &nats.Msg{Subject: natsexport.Subject(ts.prefix, ev), Header: nats.Header{},
				Data: fmt.Appendf(nil, `{"id":%q,"type":%q,"topic":%q,"ts":%q,"data":%s}`,
					ev.ID, ev.Type, ev.Topic, ev.TS.Format(time.RFC3339Nano), ev.Data)}
			if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(natsexport.MsgID(ev))); err != nil {
				t.Fatal(err)
			}
		}
		// Another message, so that the crashed batch is not the tail: the
		// next node cannot tell from the tail that it was stored.
		if _, err := js.Publish(ctx, ts.prefix+".other", []byte("{}")); err != nil {
			t.Fatal(err)
		}

		startExporter(t, u, s, ts, natsexport.Config{Batch: 100})
		waitExported(t, s)
		got := readStream(t, u, ts.name)
		if len(got) != len(evs)+1 || got[150].Subject != ts.prefix+".other" {
			t.Fatalf("stream holds %d messages, want %d (the events and the other one)", len(got), len(evs)+1)
		}
		checkOnce(t, append(got[:150:150], got[151:]...), evs, ts.prefix)
	})
}

// TestNATSCutMidExport: the connection to NATS is cut (a proxy closes it
// and refuses new ones) again and again while events are archived and
// exported; acks are lost with messages stored. The stream ends holding
// every archived event once.
func TestNATSCutMidExport(t *testing.T) {
	u := natsURL(t)
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ts := newTestStream(t, u)
		p := newProxy(t, u[len("nats://"):])
		startExporter(t, p.URL(), s, ts, natsexport.Config{Batch: 50, AckWait: time.Second})
		var all []archive.Event
		for range 6 {
			evs := makeEvents(len(all), 400)
			mustAppend(t, s, evs)
			all = append(all, evs...)
			waitStreamed(t, u, ts.name, len(all)-300) // mid-export
			p.cut()
			more := makeEvents(len(all), 50) // archived while NATS is away
			mustAppend(t, s, more)
			all = append(all, more...)
			time.Sleep(300 * time.Millisecond)
			p.restore()
		}
		waitExported(t, s)
		checkOnce(t, readStream(t, u, ts.name), all, ts.prefix)
	})
}

// TestNATSRestartMidExport: a private nats-server (JetStream on, its own
// store) is killed and started again while events are exported.
func TestNATSRestartMidExport(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("no nats-server on PATH (TestNATSCutMidExport covers the outage through a proxy)")
	}
	srv := startPrivateNATS(t, bin)
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ts := newTestStream(t, srv.url)
		startExporter(t, srv.url, s, ts, natsexport.Config{Batch: 50, AckWait: time.Second})
		var all []archive.Event
		for range 3 {
			evs := makeEvents(len(all), 500)
			mustAppend(t, s, evs)
			all = append(all, evs...)
			waitStreamed(t, srv.url, ts.name, len(all)-400)
			srv.kill(t)
			more := makeEvents(len(all), 50)
			mustAppend(t, s, more)
			all = append(all, more...)
			srv.start(t)
		}
		waitExported(t, s)
		checkOnce(t, readStream(t, srv.url, ts.name), all, ts.prefix)
	})
}

// waitStreamed waits until stream holds at least n messages.
func waitStreamed(tb testing.TB, u, stream string, n int) {
	tb.Helper()
	js, nc := mustJS(tb, u)
	defer nc.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := js.Stream(ctx, stream)
		if err == nil && st.CachedInfo().State.Msgs >= uint64(n) {
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			tb.Fatalf("stream %s never reached %d messages (%v)", stream, n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// privateNATS is a nats-server of the test's own, on a fixed port and
// store directory so that a restart finds its stream again.
type privateNATS struct {
	bin, dir, url string
	port          int
	cmd           *exec.Cmd
}

func startPrivateNATS(t *testing.T, bin string) *privateNATS {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := &privateNATS{bin: bin, dir: t.TempDir(), port: port, url: "nats://127.0.0.1:" + strconv.Itoa(port)}
	n.start(t)
	t.Cleanup(func() { n.kill(t) })
	return n
}

func (n *privateNATS) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir)
	n.cmd.Stdout, n.cmd.Stderr = nil, nil
	if f, err := os.Create(filepath.Join(n.dir, "log")); err == nil {
		n.cmd.Stderr = f
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(n.url, nats.Timeout(time.Second))
		if err == nil {
			js, _ := jetstream.New(nc)
			_, err = js.AccountInfo(context.Background())
			nc.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("private nats-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server at once (SIGKILL), as a crash would.
func (n *privateNATS) kill(t *testing.T) {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	n.cmd = nil
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, c := range []natsexport.Config{
		{Stream: "A.B"}, {Stream: "A B"}, {Stream: "A>"}, {Prefix: "a..b"}, {Prefix: "a.*"}, {Prefix: "a b"}, {Prefix: ">"},
	} {
		t.Run(c.Stream+"|"+c.Prefix, func(t *testing.T) {
			// No server is dialled before the configuration is checked.
			if _, err := natsexport.Open("nats://127.0.0.1:1", nil, nil, c); !errors.Is(err, natsexport.ErrInvalidConfig) {
				t.Fatalf("Open(%+v) = %v, want ErrInvalidConfig", c, err)
			}
		})
	}
}

// crashAfter is an archive through which an exporter "dies" once it has
// published its n-th batch: that batch is never marked, the lease is
// neither renewed nor given back.
type crashAfter struct {
	*sqlstore.Store
	n       atomic.Int32
	crashed atomic.Bool
}

var errCrashed = errors.New("node crashed")

func (c *crashAfter) MarkExported(ctx context.Context, evs []archive.Event) error {
	if c.crashed.Load() || c.n.Add(-1) <= 0 {
		c.crashed.Store(true)
		return errCrashed
	}
	return c.Store.MarkExported(ctx, evs)
}

func (c *crashAfter) PendingExport(ctx context.Context, limit int) ([]archive.Event, error) {
	if c.crashed.Load() {
		return nil, errCrashed
	}
	return c.Store.PendingExport(ctx, limit)
}

func (c *crashAfter) LeaseExport(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if c.crashed.Load() {
		return false, errCrashed
	}
	return c.Store.LeaseExport(ctx, name, holder, ttl)
}

func (c *crashAfter) ReleaseExport(ctx context.Context, name, holder string) error {
	if c.crashed.Load() {
		return errCrashed
	}
	return c.Store.ReleaseExport(ctx, name, holder)
}

// TestTakeoverAfterCrash: two nodes run exporters; the one exporting dies
// between publishing a batch and marking it; the other takes the lease
// over when it expires and publishes the batch again, which the stream
// drops by Nats-Msg-Id: every event once.
func TestTakeoverAfterCrash(t *testing.T) {
	u := natsURL(t)
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ts := newTestStream(t, u)
		evs := makeEvents(0, 1000)
		mustAppend(t, s, evs)
		a := &crashAfter{Store: s}
		a.n.Store(4) // dies on its 4th batch
		ttl := 600 * time.Millisecond
		xa, err := natsexport.Open(u, a, a, natsexport.Config{Stream: ts.name, Prefix: ts.prefix, Batch: 100,
			LeaseTTL: ttl, Interval: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logWriter{t}, nil)), NodeID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = xa.Run(ctx) }()
		defer func() { cancel(); <-done; xa.Close() }()
		for !a.crashed.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if got := len(readStream(t, u, ts.name)); got != 400 {
			t.Fatalf("the dead node left %d messages, want 400 (4 batches, the last unmarked)", got)
		}
		if p, _ := s.PendingExport(context.Background(), 1000); len(p) != 700 {
			t.Fatalf("%d events pending after the crash, want 700", len(p))
		}
		startExporter(t, u, s, ts, natsexport.Config{Batch: 100, LeaseTTL: ttl, NodeID: "b"})
		waitExported(t, s)
		checkOnce(t, readStream(t, u, ts.name), evs, ts.prefix)
	})
}

// TestNATSDownAtStart: an exporter whose NATS server does not answer at
// start keeps trying; the events archived meanwhile are exported once it
// answers.
func TestNATSDownAtStart(t *testing.T) {
	u := natsURL(t)
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ts := newTestStream(t, u)
		p := newProxy(t, u[len("nats://"):])
		p.cut()
		evs := makeEvents(0, 300)
		mustAppend(t, s, evs)
		startExporter(t, p.URL(), s, ts, natsexport.Config{Batch: 100})
		time.Sleep(500 * time.Millisecond) // a few failed attempts
		if pending, err := s.PendingExport(context.Background(), 1000); err != nil || len(pending) != len(evs) {
			t.Fatalf("%d events pending while NATS is away (%v), want all %d", len(pending), err, len(evs))
		}
		p.restore()
		waitExported(t, s)
		checkOnce(t, readStream(t, u, ts.name), evs, ts.prefix)
	})
}
