package webhookriver_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/webhook/webhookriver"
	"github.com/hextrack/hextrack/webhook/webhooksql"
)

// nodeEnv names the archive a child process runs a delivery node on
// (TestNodeKilledMidDelivery).
const nodeEnv = "HEXTRACK_TEST_WEBHOOK_NODE"

func TestMain(m *testing.M) {
	if u := os.Getenv(nodeEnv); u != "" {
		runNode(u) // until killed
		return
	}
	os.Exit(m.Run())
}

// runNode is a delivery node over the archive at u: it routes (its lease
// lasts 1 s) and delivers with a 10 s timeout, until its process is
// killed.
func runNode(u string) {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, u)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(2)
	}
	store := webhooksql.New(s.DB(), s.Dialect())
	r, err := webhookriver.Open(ctx, u, store, webhook.NewSender(webhook.Policy{Dev: true}, 10*time.Second),
		webhookriver.Config{RetryBase: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Interval: 20 * time.Millisecond,
			Sweep: 300 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond, LeaseTTL: time.Second,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(2)
	}
	_ = r.Run(ctx)
}

// TestNodeKilledMidDelivery: a node (a child process) is killed with
// SIGKILL while deliveries are in flight (the receiver holds each event's
// first request); another node takes the routing over after the lease,
// River rescues the jobs left running, and the receiver ends with every
// event, each trip's in order.
func TestNodeKilledMidDelivery(t *testing.T) {
	forEachStore(t, func(t *testing.T, u string, s *sqlstore.Store) {
		store := webhooksql.New(s.DB(), s.Dialect())
		svc := &webhook.Service{Store: store, Policy: webhook.Policy{Dev: true}}
		rec := newReceiver(t, func(_, _ string, n int) int {
			if n == 1 {
				return 0 // held until the sender goes away
			}
			return 200
		})
		rec.stall = 30 * time.Second
		u2 := rec.srv.URL + "/hooks"
		ep, err := svc.Create(context.Background(), webhook.Input{URL: &u2})
		if err != nil {
			t.Fatal(err)
		}
		rec.setSecret(ep.Secret)

		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), nodeEnv+"="+u)
		child.Stderr = logWriter{t}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		t.Cleanup(func() {
			if !killed {
				_ = child.Process.Kill()
				_ = child.Wait()
			}
		})
		e := &env{s: s, store: store}
		rec.expect(e.appendEvents(t, []string{"t_k1", "t_k2", "t_k3"}, 4))
		waitFor(t, "deliveries in flight on the child node", 60*time.Second, func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return rec.stalled >= 3
		})
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		killed = true
		if rec.missing() == 0 {
			t.Fatal("every event was delivered before the kill: nothing was in flight")
		}

		startEnv(t, u, s, webhookriver.Config{RescueAfter: 2 * time.Second, LeaseTTL: time.Second})
		waitFor(t, "every event after the kill", 120*time.Second, func() bool { return rec.missing() == 0 })
		rec.check()
	})
}
