package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/trip"
)

// testNATS is the machine's NATS server (JetStream on), or
// HEXTRACK_TEST_NATS_URL; unreachable skips, or fails under CI=true.
func testNATS(tb testing.TB) (string, jetstream.JetStream) {
	tb.Helper()
	u := os.Getenv("HEXTRACK_TEST_NATS_URL")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("NATS is required in CI (HEXTRACK_TEST_NATS_URL or %s): %v", u, err)
		}
		tb.Skipf("NATS unreachable: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return u, js
}

// TestTripEventsReachNATS: with --nats-url, a trip's durable events reach
// the JetStream stream through the archive, each once, on
// <prefix>.<type>.<trip id>, as the feed's envelope.
func TestTripEventsReachNATS(t *testing.T) {
	u, js := testNATS(t)
	var r [5]byte
	_, _ = rand.Read(r[:])
	stream, prefix := "HXE2E_"+strings.ToUpper(hex.EncodeToString(r[:])), "hxe2e_"+hex.EncodeToString(r[:])
	t.Cleanup(func() {
		if err := js.DeleteStream(context.Background(), stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", stream, err)
		}
	})
	m, _ := runMainWith(t, Config{DataDir: filepath.Join(t.TempDir(), "state"), NATSURL: u, NATSStream: stream, NATSPrefix: prefix})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	tok, err := anon.DevToken(ctx, "rider", "r_nats", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := anon.WithToken(tok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	topic := trip.Topic(id)

	deadline := time.Now().Add(20 * time.Second)
	for {
		var evs []archive.Event
		if s := m.Archive(); s != nil {
			if evs, err = s.Events(ctx, archive.EventQuery{Topic: topic, Limit: 100}); err != nil {
				t.Fatal(err)
			}
		}
		st, serr := js.Stream(ctx, stream)
		// Equal counts (the stream holds nothing but the trip's events),
		// then each message is its event: once, in order.
		if len(evs) > 0 && serr == nil && st.CachedInfo().State.Msgs == uint64(len(evs)) {
			for i, ev := range evs {
				msg, err := st.GetMsg(ctx, uint64(i+1))
				if err != nil {
					t.Fatal(err)
				}
				var env struct{ ID, Type, Topic string }
				if err := json.Unmarshal(msg.Data, &env); err != nil {
					t.Fatal(err)
				}
				wantSubj := prefix + "." + ev.Type + "." + id
				if msg.Subject != wantSubj || env.ID != ev.ID || env.Topic != topic || env.Type != ev.Type ||
					msg.Header.Get(jetstream.MsgIDHeader) != topic+"/"+ev.ID {
					t.Fatalf("message %d: %s %+v (id %q), want %s for %+v", i+1, msg.Subject, env,
						msg.Header.Get(jetstream.MsgIDHeader), wantSubj, ev)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			var n uint64
			if serr == nil {
				n = st.CachedInfo().State.Msgs
			}
			t.Fatalf("after 20s: %d events archived, %d messages in the stream (%v)", len(evs), n, serr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNATSExportNeedsArchive: --nats-url without an archive fails at start.
func TestNATSExportNeedsArchive(t *testing.T) {
	m := NewMain(Config{Addr: "127.0.0.1:0", Dev: true, LogLevel: "warn", NATSURL: "nats://127.0.0.1:4222"}, os.Stderr)
	err := m.Run(context.Background())
	_ = m.Close()
	if !errors.Is(err, errNATSNoArchive) {
		t.Fatalf("Run = %v, want errNATSNoArchive", err)
	}
}
